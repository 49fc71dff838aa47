"""Strict e-mail address parsing: one canonical form, decided before the suppression check and sending.

Only the plain `local@domain` form is taken (RFC 5321 dot-atom local part, a DNS host name with a
top-level label): no display names, comments, quoted local parts, source routes, trailing commas or
whitespace, so what is checked against the suppression list is exactly what the MTA is given. The canonical
form lower-cases the domain (the local part is case-sensitive by the RFC; the suppression digest folds it)."""

from __future__ import annotations

import re

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_LOCAL = re.compile(rf"{_ATEXT}+(?:\.{_ATEXT}+)*")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN = re.compile(rf"(?:{_LABEL}\.)+(?:[A-Za-z]{{2,63}}|xn--[A-Za-z0-9-]{{1,59}})")


class InvalidAddress(ValueError):
    """Not a plain `local@domain` address (the message never echoes it)."""


def canonical(address: str) -> str:
    """`Citizen@Example.VN` -> `Citizen@example.vn`; InvalidAddress for anything but local@domain."""
    if not isinstance(address, str) or len(address) > 254 or address.count("@") != 1:
        raise InvalidAddress("not a single local@domain address")
    local, domain = address.split("@")
    if len(local) > 64 or not _LOCAL.fullmatch(local):
        raise InvalidAddress("the local part is not a plain dot-atom")
    if len(domain) > 253 or not _DOMAIN.fullmatch(domain):
        raise InvalidAddress("the domain is not a host name")
    return f"{local}@{domain.lower()}"
