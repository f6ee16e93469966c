"""Local development and test helpers (not deployed)."""
