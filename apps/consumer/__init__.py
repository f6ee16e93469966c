"""Consumer: moves values from the Redis Streams queue into MySQL, exactly once."""
