"""Idempotency, shared circuit breakers, rate limits, retry and failover — backed by Redis."""
