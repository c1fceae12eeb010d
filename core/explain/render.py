"""Explanations as HTML and images, from plain arrays (torch-free: the dashboard and the CLI use it).

Every piece of user text is escaped with `html.escape` before it meets markup; colours and numbers
are the only things formatted into attributes. A token such as `<script>` renders as text.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from typing import Any

import numpy as np

from core.explain.catalog import get_method

# Diverging colours: evidence for the class in green, against it in red (readable for most
# colour-vision deficiencies when paired with the sign in the tooltip).
_POS = (26, 152, 80)
_NEG = (215, 48, 39)


def _rgba(score: float, peak: float) -> str:
    if peak <= 0:
        return "rgba(0,0,0,0)"
    a = min(1.0, abs(score) / peak)
    r, g, b = _POS if score >= 0 else _NEG
    return f"rgba({r},{g},{b},{0.08 + 0.62 * a:.3f})"


def highlighted_text(text: str, spans: Sequence[tuple[int, int]], scores: Sequence[float],
                     words: Sequence[str] | None = None) -> str:
    """The original text with each word's background coloured by its score; gaps kept verbatim.

    Falls back to space-joined `words` when spans are unknown (slow tokenizers)."""
    scores = np.asarray(scores, dtype=np.float64)
    peak = float(np.abs(scores).max()) if scores.size else 0.0
    parts: list[str] = []
    pos = 0
    known = spans and all(s >= 0 for s, _ in spans)
    for i, score in enumerate(scores):
        if known:
            s, e = spans[i]
            parts.append(html.escape(text[pos:s]))
            word, pos = text[s:e], e
        else:
            word = (words or [""] * len(scores))[i]
            parts.append(" " if i else "")
        parts.append(f'<span class="ts-w" style="background:{_rgba(float(score), peak)}" '
                     f'title="{html.escape(word, quote=True)}: {float(score):+.4f}">{html.escape(word)}</span>')
    if known:
        parts.append(html.escape(text[pos:]))
    return ('<div class="ts-text" style="line-height:2;font-size:1.05rem;white-space:pre-wrap">'
            + "".join(parts) + "</div>")


def legend_html() -> str:
    return ('<div style="font-size:.85rem;margin:.25rem 0">'
            f'<span style="background:rgba{(*_POS, 0.6)};padding:0 .4rem">supports the class</span> '
            f'<span style="background:rgba{(*_NEG, 0.6)};padding:0 .4rem">speaks against it</span> '
            "· stronger colour, larger effect · hover a word for its score</div>")


def sanity_word(passed: bool | None) -> str:
    """How a sanity-check result reads: `passed` is None when the check did not apply (flat map)."""
    return {True: "passed", False: "failed"}.get(passed, "not applicable")


def top_words(words: Sequence[str], scores: Sequence[float], k: int = 5) -> list[tuple[str, float]]:
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")[:k]
    return [(words[i], float(scores[i])) for i in order]


def _colormap(values: np.ndarray) -> np.ndarray:
    """[-1, 1] → RGB: red (against) through transparent to green (for)."""
    v = np.clip(values, -1, 1)[..., None]
    pos = np.array(_POS, dtype=np.float64)
    neg = np.array(_NEG, dtype=np.float64)
    return np.where(v >= 0, pos, neg)


def overlay(image: np.ndarray, heatmap: np.ndarray, alpha: float = 0.6) -> np.ndarray:
    """The image with the heatmap blended over it (signed: green for, red against), uint8 RGB."""
    h = np.asarray(heatmap, dtype=np.float64)
    peak = np.abs(h).max()
    norm = h / peak if peak > 0 else h
    weight = (alpha * np.abs(norm))[..., None]
    gray = image.astype(np.float64).mean(axis=-1, keepdims=True) * 0.5 + image * 0.5
    out = gray * (1 - weight) + _colormap(norm) * weight
    return np.clip(out, 0, 255).astype(np.uint8)


def png_data_uri(rgb: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(rgb, dtype=np.uint8)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


COMPLETENESS_HELP = ("Integrated Gradients and DeepLift are complete: their scores should add up to how much the "
                     "class score changes between the baseline and this input. The number is how far off the sum "
                     "is; close to 0 is good.")


def _faithfulness_html(f: dict[str, Any] | None) -> str:
    if not f:
        return ""
    return (f'<p><b>Faithfulness: {html.escape(str(f.get("badge", "")))}</b> '
            f'(score {float(f.get("score", 0)):+.3f}). {html.escape(str(f.get("summary", "")))}</p>')


def record_html(rec: dict[str, Any]) -> str:
    """One explanation record (as `Explanation.to_dict()`) as an HTML fragment."""
    info = get_method(rec["method"])
    head = (f"<h2>{html.escape(info.label)}</h2><p>Run <code>{html.escape(str(rec['run_id']))}</code> · "
            f"predicted <b>{html.escape(str(rec['predicted_label']))}</b> "
            f"({max(rec['probabilities']):.1%}) · explaining class <b>{html.escape(str(rec['target_label']))}</b>"
            f" · {float(rec['seconds']):.2f} s on {html.escape(str(rec['device']))}")
    if rec.get("delta") is not None:
        head += (f' · <span title="{html.escape(COMPLETENESS_HELP)}">scores add up to the score change within '
                 f"{float(rec['delta']):.2e}</span>")
    head += "</p>"
    if rec["task"] == "text":
        body = legend_html() + highlighted_text(rec["text"], [tuple(s) for s in rec.get("word_spans") or []],
                                                rec["word_scores"], rec.get("words"))
        if rec.get("truncated"):
            body += (f"<p><i>Only the first tokens of {int(rec['n_tokens'])} were explained (the model's or the "
                     "view's token limit).</i></p>")
    else:
        img = overlay(np.asarray(rec["image"], dtype=np.uint8), np.asarray(rec["heatmap"], dtype=np.float64))
        body = (f'<img alt="attribution overlay" width="320" src="{png_data_uri(img)}">'
                '<p style="font-size:.85rem">Green: supports the class; red: against it.</p>')
    teach = f"<p><i>{html.escape(info.summary)} Caveat: {html.escape(info.caveat)}</i></p>"
    return f"<section>{head}{body}{_faithfulness_html(rec.get('faithfulness'))}{teach}</section>"


def page_html(title: str, sections: Sequence[str]) -> str:
    """A self-contained HTML page (no scripts, no external files)."""
    return ("<!doctype html><html><head><meta charset='utf-8'><title>" + html.escape(title) + "</title>"
            "<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
            "section{border-top:1px solid #ddd;padding:.5rem 0}code{background:#f4f4f4}</style></head><body>"
            f"<h1>{html.escape(title)}</h1>" + "".join(sections) + "</body></html>")
