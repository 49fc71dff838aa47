"""UPU S10 item identifiers (`EB123456785VN`): 2 service letters, 8 serial digits, a check digit, the
2-letter country. Check digit: weights 8 6 4 2 3 5 9 7, C = 11 - (sum mod 11); 10 -> 0, 11 -> 5."""

from __future__ import annotations

import re

_WEIGHTS = (8, 6, 4, 2, 3, 5, 9, 7)
_FORMAT = re.compile(r"^([A-Z]{2})(\d{8})(\d)([A-Z]{2})$")


def check_digit(serial: str) -> int:
    if len(serial) != 8 or not serial.isdigit():
        raise ValueError("an S10 serial number is 8 digits")
    c = 11 - sum(int(d) * w for d, w in zip(serial, _WEIGHTS, strict=True)) % 11
    return 0 if c == 10 else 5 if c == 11 else c


def make(service: str, serial: int, country: str = "VN") -> str:
    """The S10 identifier for a service indicator (e.g. `EB`), a serial number and a country."""
    digits = f"{serial:08d}"
    return f"{service.upper()}{digits}{check_digit(digits)}{country.upper()}"


def is_valid(item: str, country: str | None = "VN") -> bool:
    m = _FORMAT.match(item or "")
    if m is None or (country is not None and m.group(4) != country):
        return False
    return int(m.group(3)) == check_digit(m.group(2))


def problem(item: str, country: str | None = "VN") -> str | None:
    """Why `item` is not a valid S10 identifier (None when it is)."""
    m = _FORMAT.match(item or "")
    if m is None:
        return "not of the form AA12345678DCC (2 letters, 8 digits, check digit, 2-letter country)"
    if country is not None and m.group(4) != country:
        return f"country {m.group(4)} is not {country}"
    expected = check_digit(m.group(2))
    if int(m.group(3)) != expected:
        return f"check digit {m.group(3)} should be {expected}"
    return None
