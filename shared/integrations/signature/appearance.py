"""Visible signatures: Vietnamese text ("Ký bởi: …", "Ngày ký: …") in an embedded TrueType font that has
every Vietnamese glyph (DejaVu Sans, Debian's fonts-dejavu-core; DVCI_SIGN_FONT), subset into the PDF."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

VN = ZoneInfo("Asia/Ho_Chi_Minh")
DEFAULT_LINES = ("Ký bởi: %(signer)s", "Ngày ký: %(ngay_ky)s")


@dataclass(frozen=True, slots=True)
class Appearance:
    page: int = -1  # -1: the last page
    box: tuple[int, int, int, int] = (360, 40, 570, 110)
    text: str | None = None  # extra lines (reason, office) under the two standard lines


def escape(text: str) -> str:
    return text.replace("%", "%%")


@lru_cache(maxsize=4)
def _font(path: str) -> Any:
    from pyhanko.pdf_utils.font.opentype import GlyphAccumulatorFactory

    return GlyphAccumulatorFactory(path, font_size=9)


def stamp_style(font_path: str, appearance: Appearance) -> Any:
    from pyhanko.pdf_utils.text import TextBoxStyle
    from pyhanko.stamp import TextStampStyle

    lines = list(DEFAULT_LINES)
    if appearance.text:
        lines += [escape(line) for line in appearance.text.splitlines() if line.strip()]
    return TextStampStyle(stamp_text="\n".join(lines), border_width=1,
                          text_box_style=TextBoxStyle(font=_font(font_path), font_size=9))


def text_params(at: dt.datetime | None = None) -> dict[str, str]:
    at = (at or dt.datetime.now(dt.UTC)).astimezone(VN)
    return {"ngay_ky": at.strftime("%d/%m/%Y %H:%M:%S (GMT+7)")}
