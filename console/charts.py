"""Server-rendered SVG charts (no JavaScript): a multi-series line chart and a stacked bar chart."""

from __future__ import annotations

from html import escape

PALETTE = ("#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df", "#bf3989", "#0a7ea4", "#57606a")


def line_chart(series: dict[str, list[float]], labels: list[str], *, width: int = 900, height: int = 220,
               title: str = "") -> str:
    pad_l, pad_b, pad_t = 44, 24, 18
    n = max((len(v) for v in series.values()), default=0)
    top = max((max(v) for v in series.values() if v), default=0) or 1
    w, h = width - pad_l - 8, height - pad_b - pad_t
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{escape(title)}" class="chart" '
             f'viewBox="0 0 {width} {height}" width="100%">',
             f'<line x1="{pad_l}" y1="{pad_t + h}" x2="{pad_l + w}" y2="{pad_t + h}" stroke="#999"/>',
             f'<text x="{pad_l - 6}" y="{pad_t + 4}" text-anchor="end" font-size="11">{top:g}</text>',
             f'<text x="{pad_l - 6}" y="{pad_t + h}" text-anchor="end" font-size="11">0</text>']
    for i, (name, values) in enumerate(series.items()):
        if not values:
            continue
        pts = " ".join(f"{pad_l + (j * w / max(1, n - 1)):.1f},{pad_t + h - (v / top) * h:.1f}"
                       for j, v in enumerate(values))
        color = PALETTE[i % len(PALETTE)]
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.6" points="{pts}">'
                     f"<title>{escape(name)}</title></polyline>")
        parts.append(f'<text x="{pad_l + 8 + 90 * i}" y="12" font-size="11" fill="{color}">■ {escape(name)}</text>')
    for j in (0, n // 2, n - 1) if n > 2 else ():
        parts.append(f'<text x="{pad_l + j * w / max(1, n - 1):.1f}" y="{height - 6}" font-size="10" '
                     f'text-anchor="middle">{escape(labels[j])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(stacks: dict[str, dict[str, float]], *, width: int = 900, height: int = 220, title: str = "") -> str:
    """`stacks`: label (x) -> {series: value}, stacked per label."""
    names = sorted({s for v in stacks.values() for s in v})
    pad_l, pad_b, pad_t = 64, 24, 18
    top = max((sum(v.values()) for v in stacks.values()), default=0) or 1
    w, h = width - pad_l - 8, height - pad_b - pad_t
    bw = w / max(1, len(stacks))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{escape(title)}" class="chart" '
             f'viewBox="0 0 {width} {height}" width="100%">',
             f'<text x="{pad_l - 6}" y="{pad_t + 4}" text-anchor="end" font-size="11">{top:,.0f}</text>']
    for i, (label, values) in enumerate(stacks.items()):
        y = float(pad_t + h)
        for name in names:
            v = values.get(name, 0)
            if v <= 0:
                continue
            bh = v / top * h
            y -= bh
            color = PALETTE[names.index(name) % len(PALETTE)]
            parts.append(f'<rect x="{pad_l + i * bw + 2:.1f}" y="{y:.1f}" width="{max(1, bw - 4):.1f}" '
                         f'height="{bh:.1f}" fill="{color}"><title>{escape(label)} {escape(name)}: {v:,.0f}'
                         f"</title></rect>")
        parts.append(f'<text x="{pad_l + i * bw + bw / 2:.1f}" y="{height - 6}" font-size="10" '
                     f'text-anchor="middle">{escape(label[-4:-2] + "/" + label[-2:] if len(label) == 8 else label)}'
                     f"</text>")
    for k, name in enumerate(names):
        color = PALETTE[k % len(PALETTE)]
        parts.append(f'<text x="{pad_l + 8 + 90 * k}" y="12" font-size="11" fill="{color}">■ {escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)
