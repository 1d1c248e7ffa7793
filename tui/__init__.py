"""The Textual console (it talks to the engine only through the client seam)."""
