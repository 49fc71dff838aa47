"""Vietnamese mobile numbers: normalise any written form to `84xxxxxxxxx` and find the carrier by prefix.

Which numbers are mobile numbers comes from libphonenumber (`phonenumbers`' VN metadata: its mobile
national-number pattern, compiled once), so a range libphonenumber knows is never refused here;
`carriers.yaml` only names the carrier of each prefix and lists the few blocks allocated to a carrier
beyond the ranges libphonenumber has (`beyond_libphonenumber`). tests/test_numbers.py walks every prefix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files

import yaml
from phonenumbers import PhoneMetadata

_SEPARATORS = re.compile(r"[\s.\-()/]")
_ASCII_DIGITS = re.compile(r"[0-9]+")


class InvalidNumber(ValueError):
    """Not a Vietnamese mobile number; the message says why (without echoing the number)."""


@dataclass(frozen=True, slots=True)
class Msisdn:
    e164: str  # 84xxxxxxxxx (no plus)
    carrier: str


@dataclass(frozen=True, slots=True)
class _Table:
    prefixes: dict[str, str]  # national prefix (leading 0) -> carrier, longest first when matching
    old: dict[str, str]
    mobile: re.Pattern[str]  # libphonenumber's VN mobile pattern (national significant number, no leading 0)
    beyond: frozenset[str]  # 3-digit national blocks accepted beyond libphonenumber's ranges


UNKNOWN_CARRIER = "unknown"  # a libphonenumber mobile range whose carrier neither source names (e.g. 095)


@lru_cache(maxsize=1)
def _table() -> _Table:
    data = yaml.safe_load(files("shared.integrations.sms").joinpath("carriers.yaml").read_text())
    prefixes = {p: carrier for carrier, plist in data["carriers"].items() for p in plist}
    metadata = PhoneMetadata.metadata_for_region("VN")
    assert metadata is not None and metadata.mobile is not None and metadata.mobile.national_number_pattern
    return _Table(prefixes, {str(k): str(v) for k, v in data["old_prefixes"].items()},
                  re.compile(metadata.mobile.national_number_pattern),
                  frozenset(str(p) for p in data.get("beyond_libphonenumber") or ()))


def carrier_of(national: str) -> str:
    """The carrier named for a 10-digit national number's longest listed prefix (5, 4 or 3 digits)."""
    prefixes = _table().prefixes
    return (prefixes.get(national[:5]) or prefixes.get(national[:4]) or prefixes.get(national[:3])
            or UNKNOWN_CARRIER)


def normalise(raw: str) -> Msisdn:
    """`0912 345 678`, `+84912345678`, `84912345678`, old `01xx` numbers -> Msisdn('84912345678', ...)."""
    digits = _SEPARATORS.sub("", raw or "")
    if digits.startswith("+"):
        digits = digits[1:]
    if digits.startswith("0084"):
        digits = digits[2:]
    if not digits:
        raise InvalidNumber("number is empty")
    if not _ASCII_DIGITS.fullmatch(digits):  # str.isdigit takes full-width and Arabic-Indic digits
        raise InvalidNumber("number contains characters other than digits, spaces, dots, dashes or a leading +")
    if digits.startswith("84") and len(digits) in (11, 12):
        national = "0" + digits[2:]
    elif digits.startswith("0"):
        national = digits
    else:
        raise InvalidNumber("number must start with 0, 84 or +84")
    table = _table()
    if len(national) == 11 and national[:4] in table.old:
        national = table.old[national[:4]] + national[4:]
    if len(national) != 10:
        raise InvalidNumber(f"a Vietnamese mobile number has 10 digits in national form, got {len(national)}")
    if not (table.mobile.fullmatch(national[1:]) or national[:3] in table.beyond):
        raise InvalidNumber(f"prefix {national[:4]} is not a Vietnamese mobile prefix")
    return Msisdn("84" + national[1:], carrier_of(national))
