"""Deploy-time schema upgrade of the Metaflow metadata service (its migration port)."""
