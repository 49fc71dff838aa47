"""State: Redis (or an embedded server), key namespacing."""
