"""Plotly figures for the Explain page, from plain numpy arrays and dicts (no Streamlit, no torch)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.markup import escape_plot_text as esc
from dashboard.charts import PALETTE, base_figure

DIVERGING = [[0.0, "#d73027"], [0.5, "#f7f7f7"], [1.0, "#1a9850"]]


def _symmetric(z: np.ndarray) -> float:
    peak = float(np.abs(z).max()) if z.size else 0.0
    return peak or 1.0


ONE_COLOUR = [[0.0, "rgba(255,255,255,0)"], [1.0, "#e66101"]]


def greyscale(image: np.ndarray) -> np.ndarray:
    """An RGB uint8 image as grey RGB (luma), so the heatmap's colours are the only colours shown."""
    rgb = np.asarray(image, dtype=np.float64)
    if rgb.ndim == 2:
        rgb = rgb[..., None]
    luma = rgb[..., :3] @ np.array([0.299, 0.587, 0.114])[: rgb.shape[-1]] if rgb.shape[-1] >= 3 else rgb[..., 0]
    return np.repeat(np.clip(np.rint(luma), 0, 255).astype(np.uint8)[..., None], 3, axis=-1)


def image_overlay(image: np.ndarray, heatmap: np.ndarray, title: str, opacity: float = 0.55, *,
                  signed: bool = True, class_name: str | None = None) -> go.Figure:
    """The model's view of the image in grey with the heatmap on top. A signed map gets a diverging
    scale centred on zero, its colour bar reading "supports <class>" / "speaks against"; an unsigned
    map (Saliency, GradCAM) one colour from "no effect" to "most important"."""
    h = np.asarray(heatmap, dtype=np.float64)
    peak = _symmetric(h)
    s = h.shape[0]
    fig = base_figure(esc(title), height=380, xaxis={"visible": False}, yaxis={"visible": False, "scaleanchor": "x"})
    fig.add_trace(go.Image(z=greyscale(image), hoverinfo="skip"))
    if signed:
        scale, low = DIVERGING, -peak
        ticks = ["speaks against", "0", esc(f"supports {class_name}" if class_name else "supports the class")]
        tickvals = [-peak, 0.0, peak]
    else:
        scale, low = ONE_COLOUR, 0.0
        h = np.abs(h)
        ticks, tickvals = ["no effect", "most important"], [0.0, peak]
    fig.add_trace(go.Heatmap(z=h, x=np.arange(s), y=np.arange(s), colorscale=scale, zmin=low, zmax=peak,
                             opacity=opacity, colorbar={"thickness": 12, "tickvals": tickvals, "ticktext": ticks},
                             hovertemplate="x %{x}, y %{y}: %{z:.3g}<extra></extra>"))
    return fig


def word_bars(words: Sequence[str], scores: Sequence[float], title: str, top: int = 20) -> go.Figure:
    s = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-np.abs(s), kind="stable")[:top][::-1]
    fig = base_figure(esc(title), height=max(220, 22 * len(order) + 80), xaxis_title="score")
    fig.add_trace(go.Bar(x=s[order], y=[f"{i}: {esc(words[i])}" for i in order], orientation="h",
                         marker_color=[PALETTE[2] if s[i] >= 0 else PALETTE[3] for i in order],
                         hovertemplate="%{y}: %{x:.4f}<extra></extra>"))
    return fig


def agreement_heatmap(agreement: Mapping[str, Any]) -> go.Figure:
    names = list(agreement["methods"])
    z = np.asarray(agreement["spearman"], dtype=np.float64)
    fig = base_figure("Method agreement (Spearman rank correlation of |scores|)", height=120 + 40 * len(names))
    signed = agreement.get("signed_spearman") or [[None] * len(names) for _ in names]
    signed_text = [["unsigned" if v is None else f"{v:.2f}" for v in row] for row in signed]
    fig.add_trace(go.Heatmap(z=z, x=names, y=names, zmin=-1, zmax=1, colorscale=DIVERGING,
                             text=np.round(z, 2), texttemplate="%{text}", colorbar={"thickness": 12},
                             customdata=np.dstack([np.asarray(agreement["top_k_overlap"], dtype=object),
                                                   np.asarray(signed_text, dtype=object)]),
                             hovertemplate="%{y} vs %{x}: rho %{z:.2f} on sizes, signed %{customdata[1]}, "
                                           "top-k overlap %{customdata[0]:.0%}<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    return fig


def sanity_curve(result: Mapping[str, Any]) -> go.Figure:
    stages = [s["stage"] for s in result["stages"]]
    rho = [s["spearman"] for s in result["stages"]]
    fig = base_figure("Sanity check: similarity to the original as layers are randomised", height=300,
               xaxis_title="randomised from the top down to", yaxis_title="Spearman", yaxis={"range": [-1, 1]})
    fig.add_trace(go.Scatter(x=["original", *stages], y=[1.0, *rho], mode="lines+markers", name="explanation",
                             line={"color": PALETTE[0]}))
    fig.add_hline(y=float(result["threshold"]), line_dash="dot", line_color=PALETTE[3],
                  annotation_text="pass below", annotation_position="bottom right")
    return fig


def deletion_insertion(f: Mapping[str, Any]) -> go.Figure:
    x = list(f["fractions"])
    fig = base_figure("Deletion and insertion curves", height=280, xaxis_title="share of patches removed / restored",
               yaxis_title="p(class)", yaxis={"range": [0, 1]})
    for key, name, colour, dash in (("deletion_curve", "deletion", PALETTE[3], None),
                                    ("random_deletion_curve", "deletion, random order", PALETTE[3], "dot"),
                                    ("insertion_curve", "insertion", PALETTE[2], None),
                                    ("random_insertion_curve", "insertion, random order", PALETTE[2], "dot")):
        fig.add_trace(go.Scatter(x=x, y=f[key], mode="lines", name=name, line={"color": colour, "dash": dash}))
    return fig


def attention_grid(attentions: np.ndarray, tokens: Sequence[str]) -> go.Figure:
    """Every layer × head as a small heatmap (rows: layers, columns: heads)."""
    layers, heads = attentions.shape[:2]
    fig = make_subplots(rows=layers, cols=heads, horizontal_spacing=0.01, vertical_spacing=0.02,
                        row_titles=[f"L{i + 1}" for i in range(layers)],
                        column_titles=[f"H{j + 1}" for j in range(heads)])
    labels = [f"{i}:{esc(t)}" for i, t in enumerate(tokens)]
    for i in range(layers):
        for j in range(heads):
            fig.add_trace(go.Heatmap(z=attentions[i, j], x=labels, y=labels, coloraxis="coloraxis",
                                     hovertemplate=f"L{i + 1} H{j + 1}: %{{y}} → %{{x}}: %{{z:.2f}}<extra></extra>"),
                          row=i + 1, col=j + 1)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, autorange="reversed")
    fig.update_layout(height=min(1400, 90 * layers + 80), margin={"l": 30, "r": 10, "t": 40, "b": 10},
                      coloraxis={"colorscale": "Blues", "cmin": 0, "cmax": 1}, title="Attention: layers × heads",
                      template="plotly_white")
    return fig


def head_view(matrix: np.ndarray, tokens: Sequence[str], title: str, min_weight: float = 0.05) -> go.Figure:
    """Token → token lines for one layer/head: left column attends to the right; line width and
    opacity follow the weight. Weights below `min_weight` are left out to keep it readable."""
    n = len(tokens)
    tokens = [esc(x) for x in tokens]
    fig = base_figure(esc(title), height=max(300, 22 * n + 80), showlegend=False,
               xaxis={"visible": False, "range": [-0.6, 1.6]}, yaxis={"visible": False, "autorange": "reversed"})
    for i in range(n):
        for j in range(n):
            w = float(matrix[i, j])
            if w < min_weight:
                continue
            fig.add_trace(go.Scatter(x=[0, 1], y=[i, j], mode="lines", hoverinfo="text",
                                     text=f"{tokens[i]} → {tokens[j]}: {w:.2f}",
                                     line={"width": 0.5 + 6 * w, "color": f"rgba(31,119,180,{0.15 + 0.85 * w:.2f})"}))
    fig.add_trace(go.Scatter(x=[0] * n, y=list(range(n)), mode="text", text=list(tokens), textposition="middle left",
                             hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=[1] * n, y=list(range(n)), mode="text", text=list(tokens),
                             textposition="middle right", hoverinfo="skip"))
    return fig


def rollout_bars(tokens: Sequence[str], weights: Sequence[float], row: str = "cls") -> go.Figure:
    """Rollout from the row the classifier reads to every token, titled with which row that is.
    row="cls": the first position's; its share of itself (usually the largest, through the residual
    path) is left out and the rest rescaled to sum to 1. row="mean": the mean over the tokens' rows,
    for a classifier that mean-pools; every token counts there, [CLS] included, so none is left out."""
    if row not in ("cls", "mean"):
        raise ValueError(f"rollout row must be 'cls' or 'mean', got {row!r}.")
    first = 1 if row == "cls" else 0
    w = np.asarray(weights[first:], dtype=np.float64)
    w = w / w.sum() if w.sum() > 0 else w
    title = ("Attention rollout from [CLS], the token the classifier reads: how much it draws on each other "
             "token across all layers" if row == "cls" else
             f"Attention rollout averaged over all {len(tokens)} tokens, as the classifier mean-pools them: "
             "how much the pooled output draws on each token across all layers")
    fig = base_figure(title, height=300, yaxis_title="share")
    fig.add_trace(go.Bar(x=[f"{i + first}:{esc(t)}" for i, t in enumerate(tokens[first:])], y=w,
                         marker_color=PALETTE[0]))
    return fig


def patch_maps(image: np.ndarray, maps: np.ndarray, titles: Sequence[str]) -> go.Figure:
    """Per-layer [CLS] attention (and rollout) on the patch grid, each over the image."""
    k = len(maps)
    fig = make_subplots(rows=1, cols=k, subplot_titles=list(titles), horizontal_spacing=0.02)
    s = image.shape[0]
    for i, m in enumerate(maps):
        g = m.shape[0]
        up = np.kron(m, np.ones((s // g + 1, s // g + 1)))[:s, :s]
        fig.add_trace(go.Image(z=image, hoverinfo="skip"), row=1, col=i + 1)
        fig.add_trace(go.Heatmap(z=up, coloraxis="coloraxis", opacity=0.6, hoverinfo="skip"), row=1, col=i + 1)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(height=260, coloraxis={"colorscale": "Viridis", "showscale": False}, template="plotly_white",
                      margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return fig


def class_maps(classes: Sequence[Mapping[str, Any]]) -> go.Figure:
    """Dataset view for images: each class's mean attribution over its mean image."""
    shown = [c for c in classes if c.get("mean_map")]
    fig = make_subplots(rows=1, cols=max(1, len(shown)), subplot_titles=[f"{esc(c['class'])} (n={c['examples']})"
                                                                         for c in shown])
    for i, c in enumerate(shown):
        gray = np.asarray(c["mean_image"], dtype=np.float64)
        rgb = np.repeat(np.clip(gray, 0, 255).astype(np.uint8)[..., None], 3, axis=-1)
        fig.add_trace(go.Image(z=rgb, hoverinfo="skip"), row=1, col=i + 1)
        fig.add_trace(go.Heatmap(z=np.asarray(c["mean_map"]), coloraxis="coloraxis", opacity=0.6), row=1, col=i + 1)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(height=280, coloraxis={"colorscale": DIVERGING, "cmid": 0}, template="plotly_white",
                      margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return fig
