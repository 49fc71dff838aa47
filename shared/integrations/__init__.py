"""One package per external system; one protocol per kind, one module per provider."""
