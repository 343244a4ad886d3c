"""The auto-router: `model: "auto"` classified, scored and turned into a chain."""
