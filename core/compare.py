"""Comparing runs: tables across runs, seed-group summaries with confidence intervals, per-class
differences and a plain-language verdict that never claims more than the interval supports.

Pure numpy/pandas/scipy over the files of finished runs; nothing here loads a model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.errors import RunError
from core.runs import Run, resolve_run

METRICS = ("accuracy", "macro_f1", "weighted_f1", "ece")
METRIC_NAMES = {"accuracy": "accuracy", "macro_f1": "macro-F1", "weighted_f1": "weighted-F1", "ece": "ECE"}
LOWER_IS_BETTER = {"ece", "loss"}
GROUP_KEYS = ("dataset", "model", "method")


def t_interval(values: Sequence[float], confidence: float = 0.95) -> dict[str, Any]:
    """Mean, sample std and the half-width of a t-distribution confidence interval.

    With one value there is no interval (half_width None); with two it is honest but very wide, and
    `note` says so."""
    from scipy import stats

    x = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    n = len(x)
    if n == 0:
        return {"n": 0, "mean": None, "std": None, "half_width": None, "note": "no finished runs"}
    mean = float(x.mean())
    if n == 1:
        return {"n": 1, "mean": mean, "std": None, "half_width": None,
                "note": "one run: no interval; train more seeds to see the spread"}
    std = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * std / math.sqrt(n))
    note = "fewer than 3 seeds: the interval is wide and rough" if n < 3 else ""
    return {"n": n, "mean": mean, "std": std, "half_width": half, "note": note}


def format_ci(summary: dict[str, Any], digits: int = 3) -> str:
    if summary.get("mean") is None:
        return "–"
    if summary.get("half_width") is None:
        return f"{summary['mean']:.{digits}f}"
    return f"{summary['mean']:.{digits}f} ± {summary['half_width']:.{digits}f}"


def run_row(run: Run) -> dict[str, Any]:
    """One flat row of what a comparison needs from a finished run (metrics and cost)."""
    s, c = run.summary(), run.config()
    test = s.get("test") or {}
    return {
        "run_id": run.id, "path": str(run.path), "state": (run.status() or {}).get("state", "unknown"),
        "dataset": (s.get("dataset") or {}).get("name") or c.get("dataset_name"),
        "model": s.get("model") or c.get("model_name"),
        "method": s.get("method") or (c.get("train") or {}).get("method"),
        "seed": s.get("seed", (c.get("train") or {}).get("seed")),
        **{m: test.get(m) for m in METRICS},
        "trainable_params": s.get("trainable_params"), "total_params": s.get("total_params"),
        "train_seconds": s.get("train_seconds"), "samples_per_second": s.get("train_samples_per_second"),
        "peak_memory_mb": s.get("peak_memory_mb"), "device": s.get("device"),
    }


def runs_frame(runs: Sequence[str | Path], runs_dir: Path | None = None) -> pd.DataFrame:
    rows = [run_row(resolve_run(r, runs_dir)) for r in runs]
    return pd.DataFrame(rows)


def group_table(frame: pd.DataFrame, by: Sequence[str] = GROUP_KEYS, confidence: float = 0.95) -> pd.DataFrame:
    """One row per group (e.g. dataset × model × method across seeds): n, and mean ± CI per metric,
    plus mean cost. Columns `<metric>` hold display strings, `<metric>_mean`/`_hw` the numbers."""
    if frame.empty:
        return pd.DataFrame()
    out = []
    for key, g in frame.groupby(list(by), dropna=False, sort=False):
        row: dict[str, Any] = dict(zip(by, key if isinstance(key, tuple) else (key,), strict=True))
        row["runs"] = len(g)
        for m in METRICS:
            ci = t_interval(g[m].dropna().tolist(), confidence)
            row[m] = format_ci(ci)
            row[f"{m}_mean"], row[f"{m}_hw"], row[f"{m}_sd"] = ci["mean"], ci["half_width"], ci["std"]
        for c in ("trainable_params", "train_seconds", "samples_per_second", "peak_memory_mb"):
            vals = pd.to_numeric(g[c], errors="coerce").dropna()
            row[c] = float(vals.mean()) if len(vals) else None
        row["note"] = t_interval(g["macro_f1"].dropna().tolist())["note"]
        out.append(row)
    return pd.DataFrame(out)


def per_class_f1(run: Run) -> dict[str, float]:
    per = ((run.summary().get("test") or {}).get("per_class")) or {}
    return {label: float(v["f1"]) for label, v in per.items()}


def per_class_diff(a: Sequence[Run], b: Sequence[Run]) -> pd.DataFrame:
    """Per-class F1 of group A and group B (means over their runs) and A − B."""
    def mean_f1(runs: Sequence[Run]) -> pd.Series:
        return pd.DataFrame([per_class_f1(r) for r in runs]).mean(axis=0)

    fa, fb = mean_f1(a), mean_f1(b)
    df = pd.DataFrame({"class": fa.index.astype(str), "f1_a": fa.values})
    df = df.merge(pd.DataFrame({"class": fb.index.astype(str), "f1_b": fb.values}), on="class", how="outer")
    df["diff"] = df["f1_a"] - df["f1_b"]
    return df.sort_values("diff").reset_index(drop=True)


def _macro_f1(y: np.ndarray, p: np.ndarray, k: int) -> float:
    cm = np.bincount(y * k + p, minlength=k * k).reshape(k, k)
    tp = np.diag(cm).astype(float)
    denom = cm.sum(0) + cm.sum(1)
    f1 = np.divide(2 * tp, denom, out=np.zeros(k), where=denom > 0)
    return float(f1.mean())


def _score(y: np.ndarray, p: np.ndarray, k: int, metric: str) -> float:
    return float((y == p).mean()) if metric == "accuracy" else _macro_f1(y, p, k)


def paired_predictions(a: Run, b: Run) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both runs' test predictions, checked to be on the same examples in the same order."""
    pa, pb = a.predictions(), b.predictions()
    if len(pa) != len(pb) or not (pa["input"].astype(str).values == pb["input"].astype(str).values).all():
        raise RunError(f"Runs {a.id} and {b.id} were not scored on the same test examples (different data or "
                       "split seed); compare them by their seed-group intervals instead.")
    return pa, pb


def mcnemar_table(correct_a: Sequence[bool], correct_b: Sequence[bool]) -> np.ndarray:
    """2 × 2 counts: rows A right / wrong, columns B right / wrong."""
    ca, cb = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    return np.array([[int((ca & cb).sum()), int((ca & ~cb).sum())],
                     [int((~ca & cb).sum()), int((~ca & ~cb).sum())]])


def mcnemar_exact(table: np.ndarray) -> dict[str, Any]:
    """Exact (binomial) McNemar test on the discordant pairs of a paired 2 × 2 table.

    Effect sizes: the accuracy difference A − B and the odds ratio of the discordant pairs (with a
    0.5 correction when one of them is zero)."""
    from scipy.stats import binomtest

    t = np.asarray(table, dtype=int)
    only_a, only_b = int(t[0, 1]), int(t[1, 0])  # A right & B wrong; A wrong & B right
    n = int(t.sum())
    discordant = only_a + only_b
    p = 1.0 if discordant == 0 else float(binomtest(min(only_a, only_b), discordant, 0.5).pvalue)
    odds = (only_a + 0.5) / (only_b + 0.5) if 0 in (only_a, only_b) else only_a / only_b
    return {"test": "exact McNemar", "only_a_right": only_a, "only_b_right": only_b, "n": n,
            "diff": (only_a - only_b) / n if n else 0.0, "odds_ratio": float(odds), "p_value": min(1.0, p)}


def mcnemar(a: Run, b: Run) -> dict[str, Any]:
    """Exact McNemar test of A's and B's accuracy on the same test examples."""
    pa, pb = paired_predictions(a, b)
    return mcnemar_exact(mcnemar_table(pa["correct"].to_numpy(bool), pb["correct"].to_numpy(bool)))


def paired_bootstrap(a: Run, b: Run, metric: str = "macro_f1", resamples: int = 2000, seed: int = 0,
                     confidence: float = 0.95) -> dict[str, Any]:
    """Difference A − B of accuracy or macro-F1 on the same test examples, with a percentile
    bootstrap interval over examples (pairs resampled together) and a two-sided p-value (the share
    of resampled differences, centred on zero, at least as far from zero as the observed one)."""
    pa, pb = paired_predictions(a, b)
    labels = sorted(set(pa["label_id"]) | set(pa["pred_id"]) | set(pb["pred_id"]))
    # Macro-F1 averages over every class of the run, as the summary's does, not only the ones seen.
    k = max(int(max(labels)) + 1, sum(c.startswith("prob_") for c in pa.columns))
    y = pa["label_id"].to_numpy(int)
    xa, xb = pa["pred_id"].to_numpy(int), pb["pred_id"].to_numpy(int)
    rng = np.random.default_rng(seed)
    n = len(y)
    diffs = np.empty(resamples)
    for i in range(resamples):
        idx = rng.integers(0, n, n)
        diffs[i] = _score(y[idx], xa[idx], k, metric) - _score(y[idx], xb[idx], k, metric)
    lo, hi = np.quantile(diffs, [(1 - confidence) / 2, (1 + confidence) / 2])
    diff = _score(y, xa, k, metric) - _score(y, xb, k, metric)
    # +1 in numerator and denominator: a p-value from resamples is never exactly zero.
    p = (int((np.abs(diffs - diffs.mean()) >= abs(diff) - 1e-12).sum()) + 1) / (resamples + 1)
    return {"diff": diff, "low": float(lo), "high": float(hi), "method": "paired bootstrap over test examples",
            "n": n, "p_value": min(1.0, float(p)), "std": float(diffs.std(ddof=1)), "metric": metric,
            "resamples": resamples}


def welch_interval(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> dict[str, Any]:
    """Difference of means A − B across seeds with a Welch t interval."""
    from scipy import stats

    xa, xb = np.asarray(a, float), np.asarray(b, float)
    va, vb = xa.var(ddof=1) / len(xa), xb.var(ddof=1) / len(xb)
    diff = float(xa.mean() - xb.mean())
    se = math.sqrt(va + vb)
    if se == 0:  # identical scores within each group: no spread, so no test can say anything
        return {"diff": diff, "low": diff, "high": diff, "method": "Welch t interval (no spread across seeds)",
                "n": (len(xa), len(xb)), "p_value": None, "cohens_d": None}
    dof = (va + vb) ** 2 / ((va ** 2 / (len(xa) - 1)) + (vb ** 2 / (len(xb) - 1)))
    half = float(stats.t.ppf(0.5 + confidence / 2, dof) * se)
    p = float(2 * stats.t.sf(abs(diff) / se, dof))
    pooled = math.sqrt((xa.var(ddof=1) + xb.var(ddof=1)) / 2)
    return {"diff": diff, "low": diff - half, "high": diff + half, "method": "Welch t interval across seeds",
            "n": (len(xa), len(xb)), "p_value": p, "cohens_d": diff / pooled if pooled > 0 else None}


@dataclass(frozen=True)
class Verdict:
    text: str
    significant: bool
    diff: float
    low: float
    high: float
    method: str
    p_value: float | None = None
    tests: tuple[dict[str, Any], ...] = ()


def paired_tests(a: Run, b: Run, confidence: float = 0.95) -> list[dict[str, Any]]:
    """Both paired tests of two runs on the same test set: exact McNemar on accuracy and a paired
    bootstrap on macro-F1."""
    return [{**mcnemar(a, b), "metric": "accuracy"},
            {**paired_bootstrap(a, b, "macro_f1", confidence=confidence), "test": "paired bootstrap"}]


def verdict(a: Sequence[Run], b: Sequence[Run], metric: str = "macro_f1", name_a: str = "A", name_b: str = "B",
            confidence: float = 0.95) -> Verdict:
    """'A beats B on macro-F1 by x ± y (p = …)' only when the interval of A − B excludes zero and
    the test's p-value is below 1 − confidence; otherwise says the difference is within noise.

    Seed groups (≥ 2 runs a side): Welch across seeds. One run a side: a paired bootstrap over the
    shared test examples for the interval, with the exact McNemar test deciding for accuracy."""
    if not a or not b:
        raise RunError("Pick at least one finished run on each side to compare.")
    label = METRIC_NAMES.get(metric, metric)
    alpha = 1 - confidence
    tests: tuple[dict[str, Any], ...] = ()
    tested = metric
    if len(a) >= 2 and len(b) >= 2:
        va = [run_row(r)[metric] for r in a]
        vb = [run_row(r)[metric] for r in b]
        if any(v is None for v in va + vb):
            raise RunError("Some of the picked runs have no test metrics yet (unfinished or failed).")
        res = welch_interval(va, vb, confidence)
        p = res["p_value"]
        basis = (f"{len(a)} vs {len(b)} seeds, Welch t test {fmt_p(p)}" if p is not None else
                 f"{len(a)} vs {len(b)} seeds with identical scores within each side: no spread, so no test")
    else:
        tested = metric if metric in ("accuracy", "macro_f1") else "macro_f1"
        # One side has a single run: pair it with the other side's median run (said in the verdict).
        ra, rb = _median_run(a, tested), _median_run(b, tested)
        tests = tuple(paired_tests(ra, rb, confidence))
        # The macro-F1 bootstrap is one of the paired tests already; only accuracy needs its own interval.
        res = tests[1] if tested == "macro_f1" else paired_bootstrap(ra, rb, tested, confidence=confidence)
        which = "one run each" if len(a) == 1 and len(b) == 1 else f"runs {ra.id} vs {rb.id} (the median of each side)"
        if tested == "accuracy":
            p = tests[0]["p_value"]
            basis = f"{which}, {res['n']} paired test examples, exact McNemar {fmt_p(p)}"
        else:
            p = res["p_value"]
            basis = f"{which}, {res['n']} paired test examples, paired bootstrap {fmt_p(p)}"
        label = METRIC_NAMES.get(tested, tested)
    diff, low, high = res["diff"], res["low"], res["high"]
    pm = (high - low) / 2
    pct = int(round(confidence * 100))
    better_a = diff > 0 if tested not in LOWER_IS_BETTER else diff < 0
    significant = (low > 0 or high < 0) and p is not None and p < alpha
    if significant:
        winner, loser = (name_a, name_b) if better_a else (name_b, name_a)
        text = (f"{winner} beats {loser} on {label} by {abs(diff):.3f} ± {pm:.3f} "
                f"({pct} % interval {low:+.3f} to {high:+.3f}; {basis}).")
    else:
        text = (f"No clear difference on {label}: {name_a} − {name_b} = {diff:+.3f}; the {pct} % interval "
                f"({low:+.3f} to {high:+.3f}) includes zero or the test is not significant ({basis}). Treat them "
                "as tied, or add seeds.")
    return Verdict(text=text, significant=significant, diff=diff, low=low, high=high, method=res["method"],
                   p_value=p, tests=tests)


def _median_run(runs: Sequence[Run], metric: str) -> Run:
    if len(runs) == 1:
        return runs[0]
    scored = sorted(runs, key=lambda r: run_row(r)[metric] or 0.0)
    return scored[(len(scored) - 1) // 2]


def fmt_p(p: float | None) -> str:
    if p is None:
        return "p = –"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"
