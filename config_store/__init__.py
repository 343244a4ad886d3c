"""Configuration: entities, the store protocol, its backends and the in-memory snapshot."""
