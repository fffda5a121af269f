"""One thin module per API resource: validate and build a spec (pure), send it, return the model."""
