"""``make deploy`` / ``make destroy``: one command per use, every step idempotent."""
