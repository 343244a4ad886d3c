"""The HTTP layer and data plane of the LLM gateway."""
