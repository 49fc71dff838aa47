"""Tracing, metrics and structured logs (PII redacted)."""
