"""core.compare against scipy and hand-made cases."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from run_factory import write_fake_run
from scipy import stats

from core import compare
from core.errors import RunError
from core.runs import Run


def test_t_interval_matches_scipy() -> None:
    x = [0.81, 0.84, 0.79, 0.86]
    got = compare.t_interval(x)
    lo, hi = stats.t.interval(0.95, len(x) - 1, loc=np.mean(x), scale=stats.sem(x))
    assert got["mean"] == pytest.approx(np.mean(x))
    assert got["half_width"] == pytest.approx((hi - lo) / 2)
    assert got["note"] == ""
    assert compare.t_interval([0.8])["half_width"] is None and "one run" in compare.t_interval([0.8])["note"]
    assert "fewer than 3" in compare.t_interval([0.8, 0.9])["note"]
    assert compare.format_ci(got) == f"{np.mean(x):.3f} ± {(hi - lo) / 2:.3f}"


def test_welch_interval_matches_scipy() -> None:
    a, b = [0.90, 0.88, 0.91], [0.70, 0.74, 0.69, 0.72]
    got = compare.welch_interval(a, b)
    res = stats.ttest_ind(a, b, equal_var=False)
    ci = res.confidence_interval(0.95)
    assert got["diff"] == pytest.approx(np.mean(a) - np.mean(b))
    assert (got["low"], got["high"]) == pytest.approx((ci.low, ci.high))


def test_paired_bootstrap_identical_and_mismatched(tmp_path: Path) -> None:
    a = Run(write_fake_run(tmp_path, "a", accuracy=0.8, seed=1))
    b = Run(write_fake_run(tmp_path, "b", accuracy=0.8, seed=1))
    res = compare.paired_bootstrap(a, b, "accuracy", resamples=200)
    assert res["diff"] == 0 and res["low"] == 0 and res["high"] == 0
    other = Run(write_fake_run(tmp_path, "c", accuracy=0.8, data_seed=5, n_test=61))
    with pytest.raises(RunError, match="same test examples"):
        compare.paired_bootstrap(a, other)


def test_macro_f1_bootstrap_point_matches_report(tmp_path: Path) -> None:
    a = Run(write_fake_run(tmp_path, "a", accuracy=0.9, seed=1, labels=("x", "y", "z")))
    b = Run(write_fake_run(tmp_path, "b", accuracy=0.6, seed=2, labels=("x", "y", "z")))
    res = compare.paired_bootstrap(a, b, "macro_f1", resamples=300)
    expected = a.summary()["test"]["macro_f1"] - b.summary()["test"]["macro_f1"]
    assert res["diff"] == pytest.approx(expected)
    assert res["low"] <= res["diff"] <= res["high"]


def test_verdict_never_claims_a_win_inside_the_interval(tmp_path: Path) -> None:
    a = [Run(write_fake_run(tmp_path, f"a{i}", accuracy=acc, seed=i)) for i, acc in enumerate((0.80, 0.70, 0.90))]
    b = [Run(write_fake_run(tmp_path, f"b{i}", accuracy=acc, seed=i + 10)) for i, acc in enumerate((0.78, 0.85, 0.72))]
    v = compare.verdict(a, b, "accuracy", "A", "B")
    assert v.low < 0 < v.high and not v.significant
    assert "No clear difference" in v.text and "beats" not in v.text
    good = [Run(write_fake_run(tmp_path, f"g{i}", accuracy=0.95, seed=i + 20)) for i in range(3)]
    bad = [Run(write_fake_run(tmp_path, f"h{i}", accuracy=0.55, seed=i + 30)) for i in range(3)]
    v = compare.verdict(bad, good, "accuracy", "bad", "good")
    assert v.significant and v.text.startswith("good beats bad on accuracy by")
    assert v.high < 0


def test_group_table_values(tmp_path: Path) -> None:
    paths = [write_fake_run(tmp_path, f"r{i}", accuracy=acc, method="lora", seed=i)
             for i, acc in enumerate((0.7, 0.8, 0.9))]
    frame = compare.runs_frame([str(p) for p in paths])
    table = compare.group_table(frame)
    assert len(table) == 1 and table.loc[0, "runs"] == 3
    accs = [Run(p).summary()["test"]["accuracy"] for p in paths]
    assert table.loc[0, "accuracy_mean"] == pytest.approx(np.mean(accs))
    assert table.loc[0, "accuracy_hw"] == pytest.approx(
        stats.t.ppf(0.975, 2) * np.std(accs, ddof=1) / math.sqrt(3))
    assert table.loc[0, "trainable_params"] == 10_000_000


def test_exact_mcnemar_on_constructed_tables() -> None:
    # 12 discordant pairs split 10 : 2 → p = 2 · (C(12,0) + C(12,1) + C(12,2)) / 2^12 = 158 / 4096.
    res = compare.mcnemar_exact(np.array([[50, 10], [2, 38]]))
    assert res["p_value"] == pytest.approx(158 / 4096)
    assert res["only_a_right"] == 10 and res["only_b_right"] == 2
    assert res["diff"] == pytest.approx(8 / 100) and res["odds_ratio"] == pytest.approx(5.0)
    assert compare.mcnemar_exact(np.array([[40, 0], [0, 60]]))["p_value"] == 1.0  # no discordant pairs
    assert compare.mcnemar_exact(np.array([[0, 7], [7, 0]]))["p_value"] == pytest.approx(1.0)
    sym = compare.mcnemar_exact(np.array([[5, 3], [9, 5]]))
    assert sym["p_value"] == pytest.approx(stats.binomtest(3, 12, 0.5).pvalue)
    assert compare.mcnemar_exact(np.array([[5, 0], [4, 5]]))["odds_ratio"] == pytest.approx(0.5 / 4.5)


def test_mcnemar_table_from_correctness() -> None:
    t = compare.mcnemar_table([True, True, False, False, True], [True, False, True, False, False])
    assert t.tolist() == [[1, 2], [1, 1]]


def test_welch_p_value_and_effect_size_match_scipy() -> None:
    a, b = [0.90, 0.88, 0.91], [0.70, 0.74, 0.69, 0.72]
    got = compare.welch_interval(a, b)
    assert got["p_value"] == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue)
    pooled = math.sqrt((np.var(a, ddof=1) + np.var(b, ddof=1)) / 2)
    assert got["cohens_d"] == pytest.approx((np.mean(a) - np.mean(b)) / pooled)


def test_bootstrap_p_value_is_one_for_identical_runs_and_small_for_clear_gaps(tmp_path: Path) -> None:
    a = Run(write_fake_run(tmp_path, "a", accuracy=0.8, seed=1))
    same = compare.paired_bootstrap(a, Run(write_fake_run(tmp_path, "b", accuracy=0.8, seed=1)), resamples=300)
    assert same["p_value"] == 1.0
    far = compare.paired_bootstrap(a, Run(write_fake_run(tmp_path, "c", accuracy=0.3, seed=2)), resamples=300)
    assert far["p_value"] < 0.01 and far["low"] > 0


def test_single_run_verdict_reports_both_paired_tests(tmp_path: Path) -> None:
    a = Run(write_fake_run(tmp_path, "a", accuracy=0.9, seed=1))
    b = Run(write_fake_run(tmp_path, "b", accuracy=0.5, seed=2))
    v = compare.verdict([a], [b], "accuracy", "full", "head")
    assert v.significant and "exact McNemar p" in v.text and v.p_value < 0.05
    assert [t["test"] for t in v.tests] == ["exact McNemar", "paired bootstrap"]
    tie = compare.verdict([a], [Run(write_fake_run(tmp_path, "c", accuracy=0.9, seed=1))], "accuracy")
    assert not tie.significant and tie.text.startswith("No clear difference")


def test_single_run_ece_verdict_names_the_better_macro_f1_run(tmp_path: Path) -> None:
    good = Run(write_fake_run(tmp_path, "good", accuracy=0.95, seed=1))
    bad = Run(write_fake_run(tmp_path, "bad", accuracy=0.45, seed=2))
    v = compare.verdict([good], [bad], "ece", "good", "bad")  # falls back to macro-F1, where higher is better
    assert v.significant and v.text.startswith("good beats bad on macro-F1")


def test_a_single_run_against_a_group_uses_the_groups_median_run_and_says_so(tmp_path: Path) -> None:
    group = [Run(write_fake_run(tmp_path, f"g{i}", accuracy=acc, seed=i)) for i, acc in enumerate((0.5, 0.95, 0.9))]
    one = Run(write_fake_run(tmp_path, "one", accuracy=0.5, seed=9))
    v = compare.verdict(group, [one], "accuracy", "group", "one")
    assert "runs g2 vs one (the median of each side)" in v.text  # g0 0.5 < g2 0.9 < g1 0.95


def test_no_spread_across_seeds_is_never_called_a_win(tmp_path: Path) -> None:
    res = compare.welch_interval([0.9, 0.9], [0.8, 0.8])
    assert res["p_value"] is None
    a = [Run(write_fake_run(tmp_path, f"a{i}", accuracy=0.9, seed=1, data_seed=i)) for i in range(2)]
    b = [Run(write_fake_run(tmp_path, f"b{i}", accuracy=0.6, seed=2, data_seed=i)) for i in range(2)]
    for r in a + b:  # identical scores within each side
        s = r.summary()
        s["test"]["macro_f1"] = 0.9 if r.id.startswith("a") else 0.6
        (r.path / "summary.json").write_text(__import__("json").dumps(s))
    v = compare.verdict(a, b, "macro_f1")
    assert not v.significant and "no spread, so no test" in v.text


def test_bootstrap_macro_f1_averages_over_every_class_like_the_summary(tmp_path: Path) -> None:
    a = Run(write_fake_run(tmp_path, "a", accuracy=0.9, seed=1, labels=("x", "y", "z"), n_test=60))
    preds = a.predictions()
    keep = preds[preds["label_id"] != 2]
    keep = keep[keep["pred_id"] != 2]  # class z never seen nor predicted
    keep.to_parquet(a.path / "predictions.parquet", index=False)
    res = compare.paired_bootstrap(a, a, "macro_f1", resamples=50)
    assert res["diff"] == 0
    assert compare._score(keep["label_id"].to_numpy(), keep["pred_id"].to_numpy(), 3, "macro_f1") == \
        pytest.approx(2 / 3 * compare._score(keep["label_id"].to_numpy(), keep["pred_id"].to_numpy(), 2, "macro_f1"))
    assert sum(c.startswith("prob_") for c in keep.columns) == 3
