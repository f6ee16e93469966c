"""Static frontend (static/) and its local dev server."""
