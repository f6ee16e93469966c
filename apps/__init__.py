"""Producer/consumer platform applications (producer API, consumer worker, migration)."""
