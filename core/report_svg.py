"""Tiny inline-SVG and HTML charts for the stakeholder report: no scripts and no external files, so
the report opens offline, prints to PDF as it looks, and carries no code. Every label is escaped."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

import numpy as np

COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


def _e(x: object) -> str:
    return html.escape(str(x), quote=True)


DASHES = ("", "6 3", "2 2", "8 3 2 3", "1 3")


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About `n` round ticks (steps of 1, 2, 2.5 or 5 × 10^k) covering [lo, hi]."""
    if not (np.isfinite(lo) and np.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(1, n - 1)
    mag = 10 ** np.floor(np.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw * 0.999)
    start = np.floor(lo / step + 1e-9) * step
    ticks, t = [], start
    while t <= hi + step * 1e-6:
        ticks.append(round(float(t), 10))
        t += step
    return ticks


def tick_text(t: float, ticks: Sequence[float]) -> str:
    """A tick label with as few decimals as its step needs (0.25 → 2 decimals; 20 → none)."""
    step = abs(ticks[1] - ticks[0]) if len(ticks) > 1 else 1.0
    decimals = next((d for d in range(7) if abs(round(step, d) - step) < 1e-9 * max(1.0, step)), 6)
    text = f"{t:,.{decimals}f}"
    return "0" if text in ("-0", "-0.0", "-0.00") else text


def line_chart(series: Mapping[str, tuple[Sequence[float], Sequence[float]]], title: str, x_label: str,
               y_label: str, width: int = 560, height: int = 230, y_range: tuple[float, float] | None = None,
               diagonal: bool = False, styles: Mapping[str, tuple[str, str]] | None = None,
               x_range: tuple[float, float] | None = None) -> str:
    """Lines (x, y) per named series with round axis ticks and a legend below the plot that wraps
    (it never covers a line). `styles` gives a series its (colour, dash pattern), e.g. one colour per
    experiment and one dash per seed; without it each series gets the next colour."""
    pts = [(float(x), float(y)) for xs, ys in series.values() for x, y in zip(xs, ys, strict=False)
           if y is not None and np.isfinite(y)]
    if not pts:
        return f"<p><i>{_e(title)}: no data.</i></p>"
    names = list(series)
    per_row = max(1, (width - 60) // 120)
    legend_rows = (len(names) + per_row - 1) // per_row
    left, right, top, bottom = 52, 12, 26, 40
    plot_h = height - top - bottom
    height = height + 16 * legend_rows
    xs_all, ys_all = [p[0] for p in pts], [p[1] for p in pts]

    def axis(lo: float, hi: float, fixed: tuple[float, float] | None) -> tuple[float, float, list[float]]:
        if fixed:
            return fixed[0], fixed[1], nice_ticks(*fixed)
        if hi == lo:  # one value: centred, with its own tick
            return lo - 0.5, hi + 0.5, [lo]
        ticks = nice_ticks(lo, hi)
        return min(ticks[0], lo), max(ticks[-1], hi), ticks

    x0, x1, xt = axis(min(xs_all), max(xs_all), x_range)
    y0, y1, yt = axis(min(ys_all), max(ys_all), y_range)
    w, h = width - left - right, plot_h

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * w

    def py(y: float) -> float:
        return top + h - (y - y0) / (y1 - y0) * h

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
           f'aria-label="{_e(title)}" style="font:11px sans-serif">',
           f'<text x="{left}" y="16" font-weight="bold">{_e(title)}</text>',
           f'<rect x="{left}" y="{top}" width="{w}" height="{h}" fill="none" stroke="#ccc"/>']
    for t in yt:
        if y0 - 1e-9 <= t <= y1 + 1e-9:
            out.append(f'<line x1="{left}" x2="{left + w}" y1="{py(t):.1f}" y2="{py(t):.1f}" stroke="#eee"/>'
                       f'<text x="{left - 4}" y="{py(t) + 4:.1f}" text-anchor="end">{tick_text(t, yt)}</text>')
    for t in xt:
        if x0 - 1e-9 <= t <= x1 + 1e-9:
            out.append(f'<text x="{px(t):.1f}" y="{top + h + 14}" text-anchor="middle">{tick_text(t, xt)}</text>')
    out.append(f'<text x="{left + w / 2}" y="{top + h + 30}" text-anchor="middle">{_e(x_label)}</text>')
    out.append(f'<text x="12" y="{top + h / 2}" transform="rotate(-90 12 {top + h / 2})" '
               f'text-anchor="middle">{_e(y_label)}</text>')
    if diagonal:
        out.append(f'<line x1="{px(x0):.1f}" y1="{py(y0):.1f}" x2="{px(x1):.1f}" y2="{py(y1):.1f}" '
                   'stroke="#999" stroke-dasharray="4 3"/>')
    for i, (name, (xs, ys)) in enumerate(series.items()):
        colour, dash = (styles or {}).get(name, (COLOURS[i % len(COLOURS)], ""))
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        pairs = [(px(float(x)), py(float(y))) for x, y in zip(xs, ys, strict=False)
                 if y is not None and np.isfinite(y)]
        if pairs:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in pairs)
            out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.8"{dash_attr}/>')
            out += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.2" fill="{colour}"/>' for x, y in pairs[:60]]
        lx = left + 120 * (i % per_row)
        ly = top + h + 44 + 16 * (i // per_row)
        out.append(f'<line x1="{lx}" x2="{lx + 22}" y1="{ly - 4}" y2="{ly - 4}" stroke="{colour}" '
                   f'stroke-width="2.2"{dash_attr}/><text x="{lx + 27}" y="{ly}">{_e(name[:16])}</text>')
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
