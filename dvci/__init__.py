"""dvci: the command-line tool (dev stack, emit, dlq, breaker, sandbox)."""
