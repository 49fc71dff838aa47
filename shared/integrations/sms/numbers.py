"""Vietnamese mobile numbers: normalise any written form to `84xxxxxxxxx` and find the carrier by prefix."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files

import yaml

_SEPARATORS = re.compile(r"[\s.\-()/]")


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


@lru_cache(maxsize=1)
def _table() -> _Table:
    data = yaml.safe_load(files("shared.integrations.sms").joinpath("carriers.yaml").read_text())
    prefixes = {p: carrier for carrier, plist in data["carriers"].items() for p in plist}
    return _Table(prefixes, {str(k): str(v) for k, v in data["old_prefixes"].items()})


def normalise(raw: str) -> Msisdn:
    """`0912 345 678`, `+84912345678`, `84912345678`, old `01xx` numbers -> Msisdn('84912345678', ...)."""
    digits = _SEPARATORS.sub("", raw or "")
    if digits.startswith("+"):
        digits = digits[1:]
    if digits.startswith("0084"):
        digits = digits[2:]
    if not digits:
        raise InvalidNumber("number is empty")
    if not digits.isdigit():
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
    carrier = table.prefixes.get(national[:4]) or table.prefixes.get(national[:3])
    if carrier is None:
        raise InvalidNumber(f"prefix {national[:3]} is not a Vietnamese mobile prefix")
    return Msisdn("84" + national[1:], carrier)
