"""The pytest plugin of plumvoice-async (registered through the ``pytest11`` entry point)."""
