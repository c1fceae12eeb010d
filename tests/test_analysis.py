"""Error analysis over a run's predictions: hand-made frames with known answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from run_factory import write_fake_run

from core import analysis
from core.runs import Run


def frame() -> pd.DataFrame:
    return pd.DataFrame({
        "input": ["a b", "a b c d", "one", "x y z w v u", "p q", "long text here now ok"],
        "label": ["pos", "pos", "neg", "neg", "pos", "neg"], "label_id": [1, 1, 0, 0, 1, 0],
        "pred": ["pos", "neg", "neg", "pos", "neg", "neg"], "pred_id": [1, 0, 0, 1, 0, 0],
        "confidence": [0.95, 0.6, 0.85, 0.7, 0.55, 0.99],
        "correct": [True, False, True, False, False, True],
        "prob_neg": [0.05, 0.6, 0.85, 0.3, 0.55, 0.99], "prob_pos": [0.95, 0.4, 0.15, 0.7, 0.45, 0.01],
    })


def test_cell_examples_are_that_cell_most_confident_first():
    cell = analysis.cell_examples(frame(), "pos", "neg")
    assert cell["example"].tolist() == [1, 4] and cell["confidence"].tolist() == [0.6, 0.55]
    assert {"prob_neg", "prob_pos"} <= set(cell.columns)
    assert analysis.cell_examples(frame(), "neg", "neg")["example"].tolist() == [5, 2]


def test_calibration_and_confidence_histogram():
    cal = analysis.calibration(frame(), bins=2)
    assert cal["n"] == 6 and cal["accuracy"] == pytest.approx(0.5)
    low, high = cal["bins"]
    assert low["count"] == 0 and high["count"] == 6  # every confidence is above 0.5
    # By hand: one occupied bin, mean confidence 4.64 / 6, accuracy 0.5.
    assert cal["ece"] == pytest.approx(4.64 / 6 - 0.5)
    assert high["confidence"] == pytest.approx(4.64 / 6) and high["accuracy"] == pytest.approx(0.5)
    hist = analysis.confidence_histogram(frame(), bins=2)
    assert hist["right"].sum() == 3 and hist["wrong"].sum() == 3


def test_error_breakdown_by_class_length_and_size():
    by_class = analysis.error_breakdown(frame(), "class").set_index("class")
    assert by_class.loc["pos", "errors"] == 2 and by_class.loc["pos", "error_rate"] == pytest.approx(2 / 3)
    by_len = analysis.error_breakdown(frame(), "length", bins=2)
    assert by_len["n"].sum() == 6 and len(by_len) == 2
    by_size = analysis.error_breakdown(frame(), "image_size", bins=2, image_sizes=[28, 28, 64, 64, 224, 224])
    assert by_size["n"].sum() == 6 and by_size["errors"].sum() == 3
    with pytest.raises(ValueError, match="Unknown breakdown"):
        analysis.error_breakdown(frame(), "colour")


def test_disagreements_name_who_was_right(tmp_path: Path):
    a = Run(write_fake_run(tmp_path, "a", accuracy=0.9, seed=1))
    b = Run(write_fake_run(tmp_path, "b", accuracy=0.5, seed=2))
    d = analysis.disagreements(a, b)
    pa, pb = a.predictions(), b.predictions()
    assert len(d) == int((pa["pred_id"] != pb["pred_id"]).sum())
    assert set(d["right"]) <= {"a", "b", "neither"}
    row = d.iloc[0]
    assert row["a"] != row["b"] and pa.loc[row["example"], "input"] == row["input"]
    assert np.all((d["right"] == "a") == pa.loc[d["example"], "correct"].to_numpy())


def test_one_ece_everywhere_the_reliability_diagram_agrees_with_the_summary() -> None:
    # Trust fixes, item 9: the summary binned ECE in 15, the reliability diagram and report in 10.
    from core.metrics import ECE_BINS, classification_report

    rng = np.random.default_rng(4)
    conf = rng.uniform(0.5, 1.0, 200)
    y = rng.integers(0, 2, 200)
    pred = np.where(rng.random(200) < conf, y, 1 - y)
    probs = np.where(pred[:, None] == np.arange(2), conf[:, None], 1 - conf[:, None])
    preds = pd.DataFrame({"label_id": y, "pred_id": pred, "confidence": conf, "correct": pred == y,
                          "prob_a": probs[:, 0], "prob_b": probs[:, 1]})
    cal = analysis.calibration(preds)
    assert len(cal["bins"]) == ECE_BINS
    assert cal["ece"] == pytest.approx(classification_report(probs, y, ["a", "b"])["ece"])


def test_length_bins_are_in_numeric_order_and_never_overlap() -> None:
    # Seen: "13–22, 23–31, 2–13, 32–39 words" (sorted as text, 13 in two bins).
    lengths = [2, 5, 9, 13, 13, 17, 22, 23, 26, 31, 33, 36, 39]
    preds = pd.DataFrame({"input": [" ".join(["w"] * n) for n in lengths], "label": "a", "pred": "a",
                          "correct": [True] * len(lengths)})
    out = analysis.error_breakdown(preds, "length", bins=4)
    ranges = [tuple(int(x) for x in label.split()[0].split("–")) for label in out["length"]]
    assert ranges == sorted(ranges) and ranges[0][0] == 2 and ranges[-1][1] == 39
    for (_, hi), (lo, _) in zip(ranges, ranges[1:], strict=False):
        assert lo == hi + 1  # each whole number in exactly one bin
    for (lo, hi), n in zip(ranges, out["n"], strict=True):
        assert n == sum(lo <= x <= hi for x in lengths)
    sizes = analysis.error_breakdown(preds, "image_size", bins=3, image_sizes=[28, 28, 64, 64, 96, 128, 224, 224,
                                                                              300, 300, 512, 512, 512])
    assert list(sizes["image_size"])[0].startswith("28–") and sizes["n"].sum() == len(lengths)
