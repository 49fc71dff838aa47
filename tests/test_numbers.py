"""numbers.py against libphonenumber: every Vietnamese mobile range it knows is accepted, with its carrier."""

from __future__ import annotations

import phonenumbers
import pytest
from phonenumbers import PhoneNumberType, carrier

from shared.integrations.sms.numbers import UNKNOWN_CARRIER, InvalidNumber, _table, normalise

# libphonenumber's carrier names -> ours
NAMES = {"Viettel": "viettel", "Vinaphone": "vinaphone", "MobiFone": "mobifone", "Vietnamobile": "vietnamobile",
         "G-Mobile": "gmobile", "Indochina Telecom": "itelecom", "Reddi": "reddi"}
# MVNOs libphonenumber names by their host network
HOSTED = {"itelecom": "vinaphone"}
SUFFIXES = ("000000", "123456", "999999")  # 4-digit national prefix + 6 digits = 10 digits


def _libphonenumber(national: str) -> tuple[bool, str]:
    n = phonenumbers.parse(national, "VN")
    mobile = phonenumbers.is_valid_number(n) and phonenumbers.number_type(n) == PhoneNumberType.MOBILE
    return mobile, carrier.name_for_number(n, "en") if mobile else ""


def _ours(national: str) -> str | None:
    try:
        m = normalise(national)
    except InvalidNumber:
        return None
    assert m.e164 == "84" + national[1:]
    return m.carrier


def test_every_libphonenumber_mobile_range_is_accepted_with_its_carrier():
    beyond = _table().beyond
    accepted = 0
    disagreements = []
    for head in range(10, 100):
        for digit in range(10):
            prefix = f"0{head}{digit}"  # 4 digits of a 10-digit national number
            for suffix in SUFFIXES:
                national = prefix + suffix
                valid, name = _libphonenumber(national)
                ours = _ours(national)
                if valid:
                    accepted += 1
                    if ours is None:
                        disagreements.append(f"{prefix}: mobile for libphonenumber, refused here")
                    elif name and NAMES.get(name, name) not in (ours, HOSTED.get(ours)):
                        disagreements.append(f"{prefix}: libphonenumber says {name}, carriers.yaml {ours}")
                elif ours is not None and national[:3] not in beyond:
                    disagreements.append(f"{prefix}: not mobile for libphonenumber, accepted here as {ours}")
    assert not disagreements, disagreements[:20]
    assert accepted > 1000  # the walk did cover the ranges (about 380 prefixes x 3 numbers)


def test_the_reported_defect_gmobile_099():
    assert normalise("0991234567").carrier == "gmobile"
    assert normalise("+84 99 123 4567").e164 == "84991234567"
    with pytest.raises(InvalidNumber, match="prefix 0992"):
        normalise("0992123456")  # libphonenumber has no 0992 range


def test_blocks_beyond_libphonenumber_are_the_declared_ones_and_keep_their_carrier():
    assert _table().beyond == {"052", "055", "089"}
    assert (normalise("0521234567").carrier, normalise("0551234567").carrier, normalise("0891234567").carrier) == \
        ("vietnamobile", "reddi", "mobifone")


def test_a_range_no_source_names_is_accepted_as_unknown_carrier():
    valid, name = _libphonenumber("0951234567")
    assert valid and not name
    assert normalise("0951234567").carrier == UNKNOWN_CARRIER


@pytest.mark.parametrize("raw", ["0212345678", "0241234567", "0800123456", "0101234567"])
def test_fixed_lines_and_unallocated_prefixes_are_refused(raw):
    assert not _libphonenumber(raw)[0]
    with pytest.raises(InvalidNumber, match="not a Vietnamese mobile prefix"):
        normalise(raw)
