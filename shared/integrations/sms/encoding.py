"""SMS text encoding: GSM 03.38 (7-bit) or UCS-2, and segment counts (160/153, 70/67)."""

from __future__ import annotations

import math
import unicodedata

from shared.integrations.sms import Encoding

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")


def detect(text: str) -> Encoding:
    """gsm7 when every character is in the GSM 03.38 basic or extension table, else ucs2."""
    for ch in text:
        if ch not in GSM7_BASIC and ch not in GSM7_EXTENSION:
            return "ucs2"
    return "gsm7"


def units(text: str, encoding: Encoding) -> int:
    """Septets (extension characters count twice) or UTF-16 code units."""
    if encoding == "gsm7":
        return sum(2 if ch in GSM7_EXTENSION else 1 for ch in text)
    return len(text.encode("utf-16-le")) // 2


def segments(text: str, encoding: Encoding) -> int:
    n = units(text, encoding)
    single, multi = (160, 153) if encoding == "gsm7" else (70, 67)
    if n <= single:
        return 1
    return math.ceil(n / multi)


def strip_diacritics(text: str) -> str:
    """Vietnamese without diacritics (`Hồ sơ đã được tiếp nhận` -> `Ho so da duoc tiep nhan`)."""
    text = text.replace("đ", "d").replace("Đ", "D")
    decomposed = unicodedata.normalize("NFD", text)
    return unicodedata.normalize("NFC", "".join(ch for ch in decomposed if not unicodedata.combining(ch)))
