"""Tiny inline-SVG and HTML charts for the stakeholder report: no scripts and no external files, so
the report opens offline, prints to PDF as it looks, and carries no code. Every label is escaped."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

import numpy as np

COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


def _e(x: object) -> str:
    return html.escape(str(x), quote=True)


def line_chart(series: Mapping[str, tuple[Sequence[float], Sequence[float]]], title: str, x_label: str,
               y_label: str, width: int = 560, height: int = 230, y_range: tuple[float, float] | None = None,
               diagonal: bool = False) -> str:
    """Lines (x, y) per named series with axes, ticks and a legend."""
    pts = [(float(x), float(y)) for xs, ys in series.values() for x, y in zip(xs, ys, strict=False)
           if y is not None and np.isfinite(y)]
    if not pts:
        return f"<p><i>{_e(title)}: no data.</i></p>"
    left, right, top, bottom = 52, 12, 26, 40
    xs_all, ys_all = [p[0] for p in pts], [p[1] for p in pts]
    x0, x1 = min(xs_all), max(xs_all)
    y0, y1 = y_range or (min(ys_all), max(ys_all))
    if x1 == x0:
        x1 = x0 + 1
    if y1 == y0:
        y1 = y0 + 1
    w, h = width - left - right, height - top - bottom

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * w

    def py(y: float) -> float:
        return top + h - (y - y0) / (y1 - y0) * h

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
           f'aria-label="{_e(title)}" style="font:11px sans-serif">',
           f'<text x="{left}" y="16" font-weight="bold">{_e(title)}</text>',
           f'<rect x="{left}" y="{top}" width="{w}" height="{h}" fill="none" stroke="#ccc"/>']
    for t in np.linspace(y0, y1, 5):
        out.append(f'<line x1="{left}" x2="{left + w}" y1="{py(t):.1f}" y2="{py(t):.1f}" stroke="#eee"/>'
                   f'<text x="{left - 4}" y="{py(t) + 4:.1f}" text-anchor="end">{t:.2f}</text>')
    for t in np.linspace(x0, x1, 5):
        out.append(f'<text x="{px(t):.1f}" y="{top + h + 14}" text-anchor="middle">{t:.3g}</text>')
    out.append(f'<text x="{left + w / 2}" y="{height - 6}" text-anchor="middle">{_e(x_label)}</text>')
    out.append(f'<text x="12" y="{top + h / 2}" transform="rotate(-90 12 {top + h / 2})" '
               f'text-anchor="middle">{_e(y_label)}</text>')
    if diagonal:
        out.append(f'<line x1="{px(x0):.1f}" y1="{py(y0):.1f}" x2="{px(x1):.1f}" y2="{py(y1):.1f}" '
                   'stroke="#999" stroke-dasharray="4 3"/>')
    for i, (name, (xs, ys)) in enumerate(series.items()):
        colour = COLOURS[i % len(COLOURS)]
        pairs = [(px(float(x)), py(float(y))) for x, y in zip(xs, ys, strict=False)
                 if y is not None and np.isfinite(y)]
        if not pairs:
            continue
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in pairs)
        out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.8"/>')
        out += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.2" fill="{colour}"/>' for x, y in pairs[:60]]
        out.append(f'<rect x="{left + 8 + 130 * i}" y="{top + 6}" width="10" height="10" fill="{colour}"/>'
                   f'<text x="{left + 22 + 130 * i}" y="{top + 15}">{_e(name[:20])}</text>')
    out.append("</svg>")
    return "".join(out)


def confusion_table(cm: Sequence[Sequence[int]], labels: Sequence[str]) -> str:
    """Rows: true class; columns: predicted; cell shade by the row's share."""
    m = np.asarray(cm, dtype=float)
    share = m / np.clip(m.sum(axis=1, keepdims=True), 1, None)
    head = "".join(f"<th>{_e(lab)}</th>" for lab in labels)
    rows = []
    for i, lab in enumerate(labels):
        cells = "".join(
            f'<td style="background:rgba(31,119,180,{0.08 + 0.8 * share[i, j]:.2f});'
            f'color:{"#fff" if share[i, j] > 0.6 else "#000"}">{int(m[i, j])}</td>' for j in range(len(labels)))
        rows.append(f"<tr><th>{_e(lab)}</th>{cells}</tr>")
    return (f'<table class="cm"><tr><th>true \\ predicted</th>{head}</tr>{"".join(rows)}</table>')


def share_bars(counts: Mapping[str, int]) -> str:
    """Horizontal bars as a table (class balance)."""
    total = max(1, sum(counts.values()))
    rows = "".join(f'<tr><td>{_e(k)}</td><td>{v}</td><td><div style="background:#1f77b4;height:10px;'
                   f'width:{200 * v / total:.0f}px"></div></td></tr>' for k, v in counts.items())
    return f'<table class="bars">{rows}</table>'
