"""Security building blocks shared by every kind: inbound webhook verification (more to come: audit trail,
citizen-data encryption)."""
