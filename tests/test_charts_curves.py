"""Curves that don't exaggerate (dashboard.charts): separate loss and score panels, a fixed 0–1 score
axis, markers on short lines, train loss for short runs, Compare colours by experiment."""

from __future__ import annotations

from dashboard import charts


def _rows(steps: int, epochs: int, every: int = 5) -> list[dict]:
    rows = [{"type": "step", "step": s * every, "loss": 1.0 / s} for s in range(1, steps + 1)]
    per = max(1, steps // max(1, epochs)) * every
    rows += [{"type": "epoch", "step": (e + 1) * per, "train_loss": 0.5 / (e + 1), "val_loss": 0.6 / (e + 1),
              "val_accuracy": 0.7 + 0.1 * e, "val_macro_f1": 0.6 + 0.1 * e} for e in range(epochs)]
    return rows


def _trace(fig, name):
    return next(tr for tr in fig.data if tr.name == name)


def test_loss_and_scores_sit_on_separate_panels_without_twin_axes() -> None:
    fig = charts.training_curves(_rows(50, 3))
    layout = fig.to_plotly_json()["layout"]
    assert not any(k.startswith("yaxis") and v.get("overlaying") for k, v in layout.items() if isinstance(v, dict))
    assert _trace(fig, "train loss").yaxis == _trace(fig, "val loss").yaxis == "y"
    assert _trace(fig, "val accuracy").yaxis == _trace(fig, "val macro-F1").yaxis == "y2"
    assert list(fig.layout.yaxis2.range) == [0, 1]
    assert fig.layout.yaxis.range is None  # loss autoscales
    assert fig.layout.xaxis.rangemode == fig.layout.xaxis2.rangemode == "tozero"
    assert _trace(fig, "train loss").mode == "lines"  # 50 points: a plain line
    assert _trace(fig, "val accuracy").mode == "lines+markers"  # 3 points: markers


def test_a_short_run_still_draws_its_train_loss_with_markers() -> None:
    rows = [{"type": "step", "step": 4, "loss": 0.9},
            {"type": "epoch", "step": 2, "train_loss": 1.1, "val_loss": 1.0, "val_accuracy": 0.5,
             "val_macro_f1": 0.4},
            {"type": "epoch", "step": 4, "train_loss": 0.8, "val_loss": 0.9, "val_accuracy": 0.6,
             "val_macro_f1": 0.5}]
    train = _trace(charts.training_curves(rows), "train loss")
    assert list(train.y) == [1.1, 0.8] and train.mode == "lines+markers"
    only_epoch = _trace(charts.training_curves(rows[1:2]), "train loss")
    assert list(only_epoch.y) == [1.1] and "markers" in only_epoch.mode
    assert charts.has_curve(rows[1:2]) and not charts.has_curve([{"type": "resume", "step": 0}])


def test_compare_overlay_colours_by_experiment_with_short_names_and_legend_below() -> None:
    rows = _rows(5, 1)
    curves = {"r-head-1": rows, "r-head-2": rows, "r-full-1": rows}
    names = {"r-head-1": "head · s1", "r-head-2": "head · s2", "r-full-1": "full · s1"}
    groups = {"r-head-1": 0, "r-head-2": 0, "r-full-1": 1}
    fig = charts.curve_overlay(curves, "loss", "step", names=names, groups=groups)
    by = {tr.name: tr for tr in fig.data}
    assert set(by) == {"head · s1", "head · s2", "full · s1"}
    assert by["head · s1"].line.color == by["head · s2"].line.color != by["full · s1"].line.color
    assert by["head · s1"].line.dash != by["head · s2"].line.dash  # seeds of one experiment stay apart
    assert by["head · s1"].mode == "lines+markers"  # 5 points
    legend = fig.layout.legend
    assert legend.orientation == "h" and legend.yanchor == "top" and legend.y < 0  # below the plot
    f1 = charts.curve_overlay(curves, "val_macro_f1", "epoch", names=names, groups=groups)
    assert list(f1.layout.yaxis.range) == [0, 1]
    assert f1.layout.xaxis.rangemode == "tozero"  # one epoch: round ticks from step 0, not 99.5–100.5
    assert charts.curve_overlay(curves, "loss").data[0].name == "r-head-1"  # no names: the run id
