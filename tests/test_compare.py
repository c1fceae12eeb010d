"""core.compare against scipy and hand-made cases."""

from __future__ import annotations

import json
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


# -- experiments: the whole config except the seed (trust fixes, item 1) --------------------------


def test_runs_with_different_settings_are_different_experiments_never_pooled(tmp_path: Path) -> None:
    # Seen: two full runs at lr 1e-4 and 5e-5 shown as one group "2 runs, 0.831 ± 0.644".
    fast = write_fake_run(tmp_path, "20260101-full-a", accuracy=0.9, method="full", seed=0, lr=1e-4)
    slow = write_fake_run(tmp_path, "20260101-full-b", accuracy=0.6, method="full", seed=1, lr=5e-5)
    table = compare.group_table(compare.runs_frame([str(fast), str(slow)]))
    assert len(table) == 2 and list(table["seeds"]) == [1, 1]
    labels = sorted(table["experiment"])
    assert labels == ["reviews · minilm · full · lr 0.0001", "reviews · minilm · full · lr 5e-05"]
    diff = compare.settings_diff([Run(fast)], [Run(slow)])
    assert diff.to_dict("records")[0] == {"setting": "lr", "A": "0.0001", "B": "5e-05"}
    assert {"setting": "seeds", "A": "0", "B": "1"} in diff.to_dict("records")


def test_bookkeeping_settings_and_a_typed_default_do_not_split_an_experiment(tmp_path: Path) -> None:
    a = write_fake_run(tmp_path, "a", seed=1, train={"device": "cpu", "log_every": 5, "lr": None}, lr=1e-4)
    b = write_fake_run(tmp_path, "b", seed=2, train={"device": "cuda", "log_every": 50, "lr": 1e-4}, lr=1e-4)
    c = write_fake_run(tmp_path, "c", seed=3, train={"batch_size": 64})
    frame = compare.runs_frame([str(a), str(b), str(c)])
    exps = compare.experiments(frame)
    assert [sorted(e.runs) for e in exps] == [["a", "b"], ["c"]]
    assert exps[1].label.endswith("batch 64")


def test_repeated_seeds_count_once_and_say_so(tmp_path: Path) -> None:
    # Seen: three identical seed-0 "Train the demo" runs vs a real 3-seed LoRA group gave
    # "head beats lora … 3 vs 3 seeds, Welch t test p = 0.010".
    head = [Run(write_fake_run(tmp_path, f"2026010{i}-head", accuracy=0.8, method="head", seed=0)) for i in range(3)]
    lora = [Run(write_fake_run(tmp_path, f"lora-{i}", accuracy=acc, method="lora", seed=i))
            for i, acc in enumerate((0.7, 0.8, 0.75))]
    table = compare.group_table(compare.runs_frame([str(r.path) for r in head + lora]))
    row = table[table["method"] == "head"].iloc[0]
    assert (row["runs"], row["seeds"]) == (3, 1)
    assert "seed 0 ran 3 times: each seed counted once" in row["note"]
    exp = next(e for e in compare.experiments(compare.runs_frame([str(r.path) for r in head])))
    assert exp.seeds == ("20260102-head",)  # the newest run of the seed
    v = compare.verdict(head, lora, "accuracy", "head", "lora")
    assert "1 vs 3 seeds" in v.text and "head seed 0 ran 3 times, counted once" in v.text
    assert "Welch" not in v.text


def _runs_with(tmp_path: Path, name: str, method: str, corrects: list[np.ndarray]) -> list[Run]:
    return [Run(write_fake_run(tmp_path, f"{name}-{i}", method=method, seed=i, correct=c, n_test=len(c)))
            for i, c in enumerate(corrects)]


def test_group_verdict_accounts_for_test_set_noise_and_agrees_with_the_paired_tests(tmp_path: Path) -> None:
    # Seen on 60 test examples, 3 vs 3 seeds, a 2-example gap: groups said "full beats head … p = 0.013"
    # while McNemar on the same runs said "No clear difference … p = 0.815".
    base = np.zeros(60, bool)
    base[:46] = True
    full, head = [], []
    for shift in range(3):  # seeds differ a little, always by the same 2-example gap
        f = np.roll(base, shift)
        f[50 + shift] = f[55] = True
        full.append(f)
        head.append(np.roll(base, shift))
    a, b = _runs_with(tmp_path, "full", "full", full), _runs_with(tmp_path, "head", "head", head)
    group = compare.verdict(a, b, "accuracy", "full", "head")
    assert not group.significant and group.text.startswith("No clear difference")
    assert group.low < 0 < group.high
    assert "t test over seeds and test examples" in group.text
    for ra, rb in zip(a, b, strict=True):  # never opposite to the paired tests of the same runs
        single = compare.verdict([ra], [rb], "accuracy", "full", "head")
        assert not single.significant


def test_tiny_test_set_makes_no_claim_and_a_large_consistent_gap_does(tmp_path: Path) -> None:
    # 8 test examples: B misses 2 that A gets, in every seed. No spread between seeds at all, which
    # a test across seed means alone would call certain; the test set is far too small for a claim.
    a = _runs_with(tmp_path, "tiny-a", "full", [np.ones(8, bool)] * 3)
    b = _runs_with(tmp_path, "tiny-b", "head", [np.r_[np.ones(6, bool), np.zeros(2, bool)]] * 3)
    for metric in ("accuracy", "macro_f1"):
        v = compare.verdict(a, b, metric, "A", "B")
        assert not v.significant and v.p_value > 0.05, v.text
    rng = np.random.default_rng(3)
    good = _runs_with(tmp_path, "big-a", "full", [rng.random(400) < 0.92 for _ in range(3)])
    bad = _runs_with(tmp_path, "big-b", "head", [rng.random(400) < 0.70 for _ in range(3)])
    v = compare.verdict(bad, good, "macro_f1", "bad", "good")
    assert v.significant and v.text.startswith("good beats bad on macro-F1 by")
    assert "bad − good = -" in v.text  # one sign convention, stated: A − B
    assert v.high < 0 and v.p_value < 0.01


def test_one_run_a_side_is_the_paired_percentile_bootstrap() -> None:
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 80)
    pa, pb = np.where(rng.random(80) < 0.85, y, 1 - y), np.where(rng.random(80) < 0.7, y, 1 - y)
    res = compare.difference(y, pa, pb, 2, "accuracy", resamples=400, seed=7)
    # the same resamples drawn by hand, one at a time
    draw = np.random.default_rng(7)
    idx = draw.integers(0, 80, (400, 80))
    by_hand = np.array([(pa[i] == y[i]).mean() - (pb[i] == y[i]).mean() for i in idx])
    assert res["method"] == "paired bootstrap over test examples" and res["seeds"] == (1, 1)
    assert res["diff"] == pytest.approx((pa == y).mean() - (pb == y).mean())
    assert (res["low"], res["high"]) == pytest.approx(tuple(np.quantile(by_hand, [0.025, 0.975])))


@pytest.mark.parametrize("seeds", [2, 3])
def test_seed_groups_rarely_call_a_winner_between_equals(seeds: int) -> None:
    # Calibration where seeds differ a lot (sd 0.1 in accuracy) and the test set is large: resampling
    # two or three seeds understated their spread, and 18-33 % of equal pairs were called a win.
    rng = np.random.default_rng(seeds)

    def side(y: np.ndarray) -> np.ndarray:
        return np.array([np.where(rng.random(len(y)) < np.clip(0.8 + rng.normal(0, 0.1), 0.5, 0.99), y, 1 - y)
                         for _ in range(seeds)])

    sims, wins = 200, 0
    for i in range(sims):
        y = rng.integers(0, 2, 1000)
        r = compare.difference(y, side(y), side(y), 2, "accuracy", resamples=200, seed=i)
        wins += bool(r["p_value"] < 0.05 and (r["low"] > 0 or r["high"] < 0))
    assert wins / sims <= 0.10  # nominal 5 %; 200 draws leave room for chance


def test_a_single_seed_borrows_the_other_sides_spread() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 500)
    group = np.array([np.where(rng.random(500) < acc, y, 1 - y) for acc in (0.6, 0.8, 0.95)])
    one = np.where(rng.random(500) < 0.8, y, 1 - y)
    r = compare.difference(y, one, group, 2, "accuracy", resamples=300)
    assert r["seed_sd"] ** 2 == pytest.approx(np.var((group == y).mean(axis=1), ddof=1) * (1 / 1 + 1 / 3))
    assert not (r["p_value"] < 0.05)


def test_different_tasks_or_dataset_contents_are_not_comparable(tmp_path: Path) -> None:
    text = Run(write_fake_run(tmp_path, "text", dataset="data", task="text"))
    image = Run(write_fake_run(tmp_path, "image", dataset="data", task="image", seed=2))
    assert "different tasks" in compare.not_comparable([text], [image])
    with pytest.raises(RunError, match="different tasks"):
        compare.verdict([text], [image])
    one = Run(write_fake_run(tmp_path, "one", dataset="data", fingerprint="aaaa"))
    two = Run(write_fake_run(tmp_path, "two", dataset="data", fingerprint="bbbb", seed=3))
    assert "different versions of dataset data" in compare.not_comparable([one], [two])
    assert compare.not_comparable([one], [Run(write_fake_run(tmp_path, "three", fingerprint="aaaa",
                                                             dataset="data", seed=4))]) is None
    # same settings and name, other contents → another experiment; a run from before contents were
    # recorded joins the others rather than splitting an experiment in two
    frame = compare.runs_frame([str(one.path), str(two.path)])
    assert len(compare.experiments(frame)) == 2
    old = Run(write_fake_run(tmp_path, "old", dataset="data", seed=5))
    recorded = Run(write_fake_run(tmp_path, "new", dataset="data", fingerprint="aaaa", seed=6))
    (exp,) = compare.experiments(compare.runs_frame([str(old.path), str(recorded.path)]))
    assert sorted(exp.seeds) == ["new", "old"]


def test_experiment_labels_are_unique_on_a_grid_of_many_settings(tmp_path: Path) -> None:
    grid = [(1e-4, 16, 8, 1), (5e-5, 16, 8, 2), (1e-4, 32, 4, 3), (1e-4, 16, 4, 4)]
    paths = [write_fake_run(tmp_path, f"r{i}", seed=seed, lr=lr, train={"batch_size": b, "lora_r": r, "epochs": 2})
             for i, (lr, b, r, seed) in enumerate(grid)]
    labels = [e.label for e in compare.experiments(compare.runs_frame([str(p) for p in paths]))]
    assert len(labels) == len(set(labels)) == 4, labels


def test_batch_times_accumulation_is_one_setting(tmp_path: Path) -> None:
    # An out-of-memory retry halves the batch and doubles the accumulation: the same gradient.
    a = write_fake_run(tmp_path, "a", seed=1, train={"batch_size": 32, "grad_accum": 1})
    b = write_fake_run(tmp_path, "b", seed=2, train={"batch_size": 16, "grad_accum": 2})
    c = write_fake_run(tmp_path, "c", seed=3, train={"batch_size": 16})
    exps = compare.experiments(compare.runs_frame([str(a), str(b), str(c)]))
    assert [sorted(e.runs) for e in exps] == [["a", "b"], ["c"]] and exps[1].label.endswith("batch 16")


def test_macro_f1_of_many_resamples_at_once_matches_one_at_a_time() -> None:
    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 3, 50), rng.integers(0, 3, 50)
    idx = rng.integers(0, 50, (7, 50))
    batch = compare._resampled_scores(y, p, idx, 3, "macro_f1")
    from core.metrics import classification_report

    for row, got in zip(idx, batch, strict=True):
        probs = np.eye(3)[p[row]]
        assert got == pytest.approx(classification_report(probs, y[row], ["a", "b", "c"])["macro_f1"])
    assert json.dumps(float(batch[0]))
