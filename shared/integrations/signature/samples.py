"""Sample documents for the demo, the bench and tests: a one-page decision (PDF) and its XML form."""

from __future__ import annotations

import io


def sample_pdf(title: str = "QUYET DINH so 123/QD-UBND", pages: int = 1) -> bytes:
    """A small valid PDF (Helvetica text, A4), `pages` pages."""
    from pyhanko.pdf_utils import generic, writer

    w = writer.PdfFileWriter()
    font = w.add_object(generic.DictionaryObject({
        generic.NameObject("/Type"): generic.NameObject("/Font"),
        generic.NameObject("/Subtype"): generic.NameObject("/Type1"),
        generic.NameObject("/BaseFont"): generic.NameObject("/Helvetica")}))
    for n in range(pages):
        text = f"BT /F1 14 Tf 72 760 Td ({title}) Tj 0 -24 Td (Trang {n + 1}) Tj ET".encode("latin-1")
        content = w.add_object(generic.StreamObject(stream_data=text))
        resources = generic.DictionaryObject({generic.NameObject("/Font"): generic.DictionaryObject(
            {generic.NameObject("/F1"): font})})
        w.insert_page(writer.PageObject(contents=content, media_box=[0, 0, 595, 842], resources=resources))
    out = io.BytesIO()
    w.write(out)
    return out.getvalue()


def sample_xml(number: str = "123/QĐ-UBND") -> bytes:
    return ("<?xml version='1.0' encoding='UTF-8'?>\n<QuyetDinh xmlns='urn:vn:gov:dvc:quyetdinh'>"
            f"<So>{number}</So><TrichYeu>Cấp giấy phép xây dựng nhà ở riêng lẻ</TrichYeu>"
            "<CoQuan>Ủy ban nhân dân tỉnh Thử Nghiệm</CoQuan></QuyetDinh>").encode()
