"""DVC Integrations shared library: runtime, reliability, integrations, storage."""
