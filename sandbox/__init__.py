"""Faithful simulators of the external providers, with fault injection and a control API."""
