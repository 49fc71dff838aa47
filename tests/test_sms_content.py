"""Numbers, encodings, segments, diacritics, templates: hand-computed cases."""

from __future__ import annotations

import pytest

from shared.integrations.sms import encoding
from shared.integrations.sms.content import ContentRejected, prepare
from shared.integrations.sms.numbers import InvalidNumber, normalise

CARRIER_PREFIXES = {
    "viettel": ["086", "096", "097", "098", "032", "033", "034", "035", "036", "037", "038", "039"],
    "vinaphone": ["088", "091", "094", "081", "082", "083", "084", "085"],
    "mobifone": ["089", "090", "093", "070", "076", "077", "078", "079"],
    "vietnamobile": ["092", "056", "058", "052"],
    "gmobile": ["0993", "0994", "0995", "0996", "0997", "059"],
    "itelecom": ["087", "0998", "0999"],
    "reddi": ["055"],
}


@pytest.mark.parametrize(("carrier", "prefix"), [(c, p) for c, ps in CARRIER_PREFIXES.items() for p in ps])
def test_every_prefix_in_every_written_form(carrier, prefix):
    national = (prefix + "1234567")[:10]
    for form in (national, "+84" + national[1:], "84" + national[1:], f"{national[:4]} {national[4:7]} {national[7:]}",
                 f"{national[:4]}.{national[4:7]}.{national[7:]}", f"{national[:4]}-{national[4:]}",
                 "0084" + national[1:], f"(+84) {national[1:]}"):
        m = normalise(form)
        assert m.e164 == "84" + national[1:] and m.carrier == carrier, form


@pytest.mark.parametrize(("old", "new", "carrier"), [
    ("01201234567", "84701234567", "mobifone"), ("01211234567", "84791234567", "mobifone"),
    ("01221234567", "84771234567", "mobifone"), ("01261234567", "84761234567", "mobifone"),
    ("01281234567", "84781234567", "mobifone"), ("01231234567", "84831234567", "vinaphone"),
    ("01241234567", "84841234567", "vinaphone"), ("01251234567", "84851234567", "vinaphone"),
    ("01271234567", "84811234567", "vinaphone"), ("01291234567", "84821234567", "vinaphone"),
    ("01621234567", "84321234567", "viettel"), ("01691234567", "84391234567", "viettel"),
    ("01861234567", "84561234567", "vietnamobile"), ("01881234567", "84581234567", "vietnamobile"),
    ("01991234567", "84591234567", "gmobile"), ("+841691234567", "84391234567", "viettel"),
])
def test_old_eleven_digit_numbers_map_to_their_successors(old, new, carrier):
    m = normalise(old)
    assert (m.e164, m.carrier) == (new, carrier)


@pytest.mark.parametrize(("raw", "why"), [
    ("", "empty"), ("12345", "start"), ("0912", "10 digits"), ("091234567890", "10 digits"),
    ("0212345678", "prefix 021"), ("0241234567", "prefix 024"), ("0912a45678", "digits"),
    ("+1 415 555 0100", "start"), ("0800123456", "prefix 080"), ("0992123456", "prefix 0992"),
    ("01301234567", "10 digits"),
])
def test_malformed_numbers_say_why_without_echoing_them(raw, why):
    with pytest.raises(InvalidNumber) as exc:
        normalise(raw)
    assert why in str(exc.value)
    assert not raw or raw not in str(exc.value)


@pytest.mark.parametrize(("text", "enc", "units", "segments"), [
    ("", "gsm7", 0, 1),
    ("a" * 160, "gsm7", 160, 1),
    ("a" * 161, "gsm7", 161, 2),
    ("a" * 306, "gsm7", 306, 2),
    ("a" * 307, "gsm7", 307, 3),
    ("€" * 80, "gsm7", 160, 1),          # extension characters count twice
    ("€" * 81, "gsm7", 162, 2),
    ("[x]" + "a" * 155, "gsm7", 160, 1),
    ("{}" + "a" * 157, "gsm7", 161, 2),
    ("Hồ sơ", "ucs2", 5, 1),
    ("ồ" * 70, "ucs2", 70, 1),
    ("ồ" * 71, "ucs2", 71, 2),
    ("ồ" * 134, "ucs2", 134, 2),
    ("ồ" * 135, "ucs2", 135, 3),
    ("😀" * 35, "ucs2", 70, 1),          # outside the BMP: two UTF-16 units
])
def test_encoding_and_segments(text, enc, units, segments):
    assert encoding.detect(text) == enc
    assert encoding.units(text, enc) == units
    assert encoding.segments(text, enc) == segments


VIETNAMESE = ("aàáảãạăằắẳẵặâầấẩẫậeèéẻẽẹêềếểễệiìíỉĩịoòóỏõọôồốổỗộơờớởỡợuùúủũụưừứửữựyỳýỷỹỵđ")


def test_every_vietnamese_letter_strips_to_gsm7():
    for letter in VIETNAMESE + VIETNAMESE.upper():
        stripped = encoding.strip_diacritics(letter)
        assert len(stripped) == 1 and stripped.isascii() and encoding.detect(stripped) == "gsm7", letter
    assert encoding.strip_diacritics("Đồng Hới, Thừa Thiên Huế") == "Dong Hoi, Thua Thien Hue"
    combining = "Tie\u0302\u0301ng Vie\u0323\u0302t"  # decomposed (combining) forms
    assert encoding.strip_diacritics(combining) == "Tieng Viet"


def test_stripping_is_on_for_transactional_by_default_and_can_be_refused():
    text = "Hồ sơ của ông/bà đã có kết quả"
    p = prepare(text=text, template_id=None, params=None, category="transactional", brandname=None, unsigned=None)
    assert p.text == "Ho so cua ong/ba da co ket qua" and p.encoding == "gsm7"
    kept = prepare(text=text, template_id=None, params=None, category="transactional", brandname=None, unsigned=False)
    assert kept.text == text and kept.encoding == "ucs2"


def test_templates_render_match_and_reject():
    p = prepare(text=None, template_id="otp", params={"code": "123456", "minutes": 5}, category="otp",
                brandname="DVCCSKH", unsigned=None)
    assert p.text == "Ma OTP cua ban la 123456. Het han sau 5 phut." and p.brandname == "DVCCSKH"
    ok = prepare(text="Ho so H29-1 da duoc tiep nhan. Cam on.", template_id=None, params=None,
                 category="transactional", brandname="DVCCSKH", unsigned=None)
    assert ok.segments == 1
    with pytest.raises(ContentRejected, match="matches none"):
        prepare(text="Free text", template_id=None, params=None, category="transactional", brandname="DVCCSKH",
                unsigned=None)
    with pytest.raises(ContentRejected, match="needs parameter"):
        prepare(text=None, template_id="otp", params={"code": "1"}, category="otp", brandname="DVCCSKH", unsigned=None)
    with pytest.raises(ContentRejected, match="no template"):
        prepare(text=None, template_id="nope", params={}, category="otp", brandname="DVCCSKH", unsigned=None)
    with pytest.raises(ContentRejected, match="not registered"):
        prepare(text="x", template_id=None, params=None, category="otp", brandname="NOBODY", unsigned=None)


def test_advertising_is_labelled():
    p = prepare(text="Giam 50% le phi", template_id=None, params=None, category="advertising", brandname=None,
                unsigned=None)
    assert p.text.startswith("[QC] ")
    q = prepare(text="[AD] Offer", template_id=None, params=None, category="advertising", brandname=None,
                unsigned=None)
    assert q.text == "[AD] Offer"
