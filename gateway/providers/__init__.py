"""One module per upstream wire format."""
