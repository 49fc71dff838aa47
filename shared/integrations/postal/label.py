"""A6 shipping label as PDF (reportlab): Code 128 barcode of the tracking number, sender, recipient,
dossier id, service and COD amount. Text is set in DejaVu Sans, embedded (subset) — it has every
Vietnamese glyph; the font comes from the system package `fonts-dejavu-core` (scripts/setup-system.sh)
or `DVCI_POSTAL_LABEL_FONT`. Output is byte-for-byte deterministic for the same shipment (reportlab's
invariant mode), so a re-rendered label is the same object."""

from __future__ import annotations

import io
import os
import threading
from dataclasses import dataclass

from shared.integrations.postal import Place

FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/local/share/fonts/DejaVuSans.ttf",
)
FONT = "DVCI-DejaVuSans"  # one embedded font (a second, bold, face doubles the PDF and its render time)
_lock = threading.Lock()
_registered = False


class FontMissing(RuntimeError):
    pass


def _find(candidates: tuple[str, ...], env: str) -> str:
    override = os.environ.get(env)
    for path in ((override,) if override else ()) + candidates:
        if path and os.path.exists(path):
            return path
    raise FontMissing(f"DejaVu Sans not found ({', '.join(candidates)}); install fonts-dejavu-core "
                      f"(scripts/setup-system.sh) or set {env}")


def register_fonts() -> None:
    global _registered
    if _registered:
        return
    with _lock:
        if _registered:
            return
        from reportlab.pdfbase import pdfmetrics
        from reportlab.pdfbase.ttfonts import TTFont

        pdfmetrics.registerFont(TTFont(FONT, _find(FONT_CANDIDATES, "DVCI_POSTAL_LABEL_FONT")))
        _registered = True


@dataclass(frozen=True, slots=True)
class LabelData:
    carrier: str
    carrier_display: str
    tracking_number: str
    service: str
    dossier_id: str
    sender: Place
    recipient: Place
    cod_vnd: int
    weight_g: int
    contents: str


def _money(vnd: int) -> str:
    return f"{vnd:,}".replace(",", ".") + " đ"


def render(data: LabelData) -> bytes:
    """The label PDF (one A6 page, 105 x 148 mm)."""
    from reportlab.graphics.barcode.code128 import Code128
    from reportlab.lib.pagesizes import A6
    from reportlab.lib.units import mm
    from reportlab.pdfgen.canvas import Canvas

    register_fonts()
    buf = io.BytesIO()
    width, height = A6
    c = Canvas(buf, pagesize=A6, invariant=1, pageCompression=1)
    c.setLineWidth(0.3)

    def bold(size: float) -> None:  # emphasis by stroking the glyph outlines (text render mode 2)
        c.setFont(FONT, size)
        c._code.append("2 Tr")

    def plain(size: float) -> None:
        c.setFont(FONT, size)
        c._code.append("0 Tr")
    c.setTitle(f"{data.carrier_display} {data.tracking_number}")
    c.setAuthor("DVC Integrations")
    margin = 5 * mm
    y = height - margin

    bold(12)
    c.drawString(margin, y - 10, data.carrier_display)
    service = "Chuyển phát nhanh (EMS)" if data.service == "express" else "Bưu kiện thường"
    plain(8)
    c.drawRightString(width - margin, y - 10, f"Dịch vụ: {service}")
    y -= 16

    barcode = Code128(data.tracking_number, barHeight=16 * mm, barWidth=0.36 * mm, humanReadable=False,
                      quiet=True, lquiet=4 * mm, rquiet=4 * mm)
    bx = (width - barcode.width) / 2
    barcode.drawOn(c, bx, y - 16 * mm)
    y -= 16 * mm + 11
    bold(11)
    c.drawCentredString(width / 2, y, data.tracking_number)
    y -= 8
    c.line(margin, y, width - margin, y)

    def block(title: str, p: Place, top: float) -> float:
        bold(8)
        c.drawString(margin, top - 10, title)
        bold(10)
        c.drawString(margin, top - 22, p.name)
        plain(8)
        c.drawString(margin, top - 32, f"ĐT: {p.phone}")
        lines = _wrap(p.one_line(), FONT, 8, width - 2 * margin)
        t = top - 42
        for line in lines[:3]:
            c.drawString(margin, t, line)
            t -= 10
        return t

    y = block("NGƯỜI GỬI", data.sender, y)
    c.line(margin, y + 2, width - margin, y + 2)
    y = block("NGƯỜI NHẬN", data.recipient, y)
    c.line(margin, y + 2, width - margin, y + 2)

    plain(8)
    rows = [("Mã hồ sơ", data.dossier_id), ("Nội dung", data.contents[:60]),
            ("Khối lượng", f"{data.weight_g} g"), ("Thu hộ (COD)", _money(data.cod_vnd) if data.cod_vnd else "Không")]
    for key, value in rows:
        y -= 11
        c.drawString(margin, y, f"{key}:")
        bold(8)
        c.drawString(margin + 24 * mm, y, value)
        plain(8)
    plain(6)
    c.drawString(margin, margin, "Bưu chính công ích — Quyết định 45/2016/QĐ-TTg")
    c.showPage()
    c.save()
    return buf.getvalue()


def _wrap(text: str, font: str, size: float, max_width: float) -> list[str]:
    from reportlab.pdfbase.pdfmetrics import stringWidth

    lines: list[str] = []
    current = ""
    for word in text.split():
        trial = f"{current} {word}".strip()
        if stringWidth(trial, font, size) <= max_width or not current:
            current = trial
        else:
            lines.append(current)
            current = word
    if current:
        lines.append(current)
    return lines
