"""Comparing runs: experiments (runs that share every setting but the seed), their summaries with
confidence intervals over seeds, per-class differences, what differs between two experiments, and a
plain-language verdict that never claims more than its interval supports.

Pure numpy/pandas/scipy over the files of finished runs; nothing here loads a model.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.config import TrainConfig
from core.errors import RunError
from core.runs import Run, resolve_run

METRICS = ("accuracy", "macro_f1", "weighted_f1", "ece")
METRIC_NAMES = {"accuracy": "accuracy", "macro_f1": "macro-F1", "weighted_f1": "weighted-F1", "ece": "ECE"}
LOWER_IS_BETTER = {"ece", "loss"}


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


# Settings that never change what a run learns: where it ran, how often it logged or saved, how big
# its evaluation batches were. Everything else (and the seed) defines an experiment.
BOOKKEEPING = {"train": ("seed", "device", "log_every", "checkpoint_every", "eval_batch_size")}
# TrainConfig's own defaults, for runs whose config left a field out.
_TRAIN_DEFAULTS = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
# Names a reader knows, for the settings a Compare label or a diff shows.
SETTING_NAMES = {"train.lr": "lr", "train.epochs": "epochs", "train.batch": "batch",
                 "data.max_samples": "max samples", "model.image_size": "image size", "model.max_length": "max length",
                 "train.lora_r": "LoRA r", "train.lora_alpha": "LoRA alpha", "train.topk_layers": "top-k layers",
                 "data.split_seed": "split seed"}


def experiment_settings(run: Run) -> dict[str, Any]:
    """Everything that shapes a run's result except its seed, flattened to `section.field` keys, with
    the values the run actually used (a default learning rate or epoch count resolved), so a run
    that left lr empty and one that typed the same default are one experiment."""
    c, s = run.config(), run.summary()
    out: dict[str, Any] = {}
    for section in ("data", "model", "train"):
        skip = BOOKKEEPING.get(section, ())
        for k, v in (c.get(section) or {}).items():
            if k not in skip:
                out[f"{section}.{k}"] = v
    resolved = c.get("resolved") or {}
    for key, value in (("train.lr", resolved.get("lr") or s.get("lr")), ("train.epochs", s.get("epochs")),
                       ("model.image_size", resolved.get("image_size")), ("model.pooling", resolved.get("pooling")),
                       ("train.precision", resolved.get("precision"))):
        if value is not None:
            out[key] = value
    # The optimiser sees batch × accumulation examples per step (weighted by examples, so 16 × 2 gives
    # the gradient of 32 × 1); a worker that halves the batch after running out of memory and doubles
    # the accumulation has not started another experiment.
    size, accum = out.pop("train.batch_size", None), out.pop("train.grad_accum", None)
    if size is not None or accum is not None:
        out["train.batch"] = int(size or _TRAIN_DEFAULTS["batch_size"]) * int(accum or _TRAIN_DEFAULTS["grad_accum"])
    out["task"] = s.get("task") or c.get("task")
    out["model.name"] = s.get("model") or c.get("model_name") or out.get("model.name")
    out["dataset"] = (s.get("dataset") or {}).get("name") or c.get("dataset_name")
    return out


def dataset_fingerprint(run: Run) -> str | None:
    """The content fingerprint of the data a run was trained and tested on (None for runs saved
    before runs recorded one)."""
    return (run.summary().get("dataset") or {}).get("fingerprint")


def experiment_key(settings: dict[str, Any]) -> str:
    import hashlib
    import json

    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:12]


def run_row(run: Run) -> dict[str, Any]:
    """One flat row of what a comparison needs from a finished run (metrics, cost, and the
    experiment it belongs to: the whole training config except the seed)."""
    s, c = run.summary(), run.config()
    test = s.get("test") or {}
    settings = experiment_settings(run)
    return {
        "run_id": run.id, "path": str(run.path), "state": (run.status() or {}).get("state", "unknown"),
        "dataset": (s.get("dataset") or {}).get("name") or c.get("dataset_name"),
        "model": s.get("model") or c.get("model_name"),
        "method": s.get("method") or (c.get("train") or {}).get("method"),
        "seed": s.get("seed", (c.get("train") or {}).get("seed")),
        "task": s.get("task") or c.get("task"),
        "experiment": experiment_key(settings), "fingerprint": dataset_fingerprint(run),
        **{m: test.get(m) for m in METRICS},
        "trainable_params": s.get("trainable_params"), "total_params": s.get("total_params"),
        "train_seconds": s.get("train_seconds"), "samples_per_second": s.get("train_samples_per_second"),
        "peak_memory_mb": s.get("peak_memory_mb"), "device": s.get("device"),
    }


def runs_frame(runs: Sequence[str | Path], runs_dir: Path | None = None) -> pd.DataFrame:
    rows = [run_row(resolve_run(r, runs_dir)) for r in runs]
    return pd.DataFrame(rows)


def _fmt_setting(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return "auto" if value is None else str(value)


def differing_settings(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(setting, value in A, value in B) for every setting the two experiments do not share."""
    keys = sorted(set(a) | set(b))
    return [(k, a.get(k), b.get(k)) for k in keys if a.get(k) != b.get(k)]


def settings_diff(a: Sequence[Run], b: Sequence[Run]) -> pd.DataFrame:
    """What differs between two runs or seed groups besides the seed, for the Compare page."""
    sa, sb = experiment_settings(a[0]), experiment_settings(b[0])
    rows = [{"setting": SETTING_NAMES.get(k, k), "A": _fmt_setting(va), "B": _fmt_setting(vb)}
            for k, va, vb in differing_settings(sa, sb)]
    fa, fb = dataset_fingerprint(a[0]), dataset_fingerprint(b[0])
    if fa and fb and fa != fb:
        rows.append({"setting": "dataset contents", "A": fa[:8], "B": fb[:8]})
    seeds_a = sorted({run_row(r)["seed"] for r in a}, key=str)
    seeds_b = sorted({run_row(r)["seed"] for r in b}, key=str)
    if seeds_a != seeds_b:
        rows.append({"setting": "seeds", "A": ", ".join(map(str, seeds_a)), "B": ", ".join(map(str, seeds_b))})
    return pd.DataFrame(rows, columns=["setting", "A", "B"])


@dataclass(frozen=True)
class Experiment:
    """Runs that share every setting but the seed. `runs` are all of them; `seeds` one run per
    distinct seed (the newest), the ones statistics count; `repeated` the seeds that ran more than once."""

    key: str
    label: str
    runs: tuple[str, ...]
    seeds: tuple[str, ...]
    repeated: tuple[tuple[Any, tuple[str, ...]], ...] = ()

    @property
    def note(self) -> str:
        if not self.repeated:
            return ""
        parts = [f"seed {seed} ran {len(ids)} times" for seed, ids in self.repeated]
        return f"{'; '.join(parts)}: each seed counted once"


def experiments(frame: pd.DataFrame) -> list[Experiment]:
    """Group run rows (from `run_row`) into experiments, in order of first appearance. Labels read
    'dataset · model · method', plus the settings that tell apart experiments sharing those three,
    and are unique. Runs of the same settings whose recorded dataset contents differ (a dataset
    deleted and saved again under its name) are separate experiments; runs from before contents
    were recorded join the others."""
    if frame.empty:
        return []
    by_key: dict[str, list[dict[str, Any]]] = {}
    for row in frame.to_dict("records"):
        by_key.setdefault(row["experiment"], []).append(row)
    split: dict[str, list[dict[str, Any]]] = {}
    def fingerprint(row: dict[str, Any]) -> str | None:
        fp = row.get("fingerprint")
        return fp if isinstance(fp, str) else None  # a missing one is NaN in a frame

    for key, rows in by_key.items():
        prints = {fingerprint(r) for r in rows} - {None}
        for row in rows:
            fp = fingerprint(row) if len(prints) > 1 else None
            split.setdefault(f"{key}:{fp[:8]}" if fp else key, []).append(row)
    base = {k: f"{rows[0]['dataset']} · {rows[0]['model']} · {rows[0]['method']}" for k, rows in split.items()}
    settings = {k: experiment_settings(Run(Path(rows[0]["path"]))) for k, rows in split.items()}
    labels: dict[str, str] = {}
    for key in split:
        label = base[key]
        siblings = [k for k in split if k != key and base[k] == label]
        if siblings:
            differ = sorted({d[0] for s in siblings for d in differing_settings(settings[key], settings[s])})
            shown = [f"{SETTING_NAMES.get(d, d.split('.')[-1])} {_fmt_setting(settings[key].get(d))}"
                     for d in differ[:3]]
            if ":" in key:
                shown.append(f"data {key.rsplit(':', 1)[1][:6]}")
            label = f"{label} · {', '.join(shown)}" if shown else label
        labels[key] = label
    counts = Counter(labels.values())
    out = []
    for key, rows in split.items():
        label = labels[key] if counts[labels[key]] == 1 else f"{labels[key]} · {key[:6]}"  # always unique
        per_seed: dict[Any, list[str]] = {}
        for row in sorted(rows, key=lambda r: r["run_id"]):
            per_seed.setdefault(row["seed"], []).append(row["run_id"])
        chosen = tuple(ids[-1] for ids in per_seed.values())  # run ids start with their time: newest last
        repeated = tuple((seed, tuple(ids)) for seed, ids in per_seed.items() if len(ids) > 1)
        out.append(Experiment(key, label, tuple(r["run_id"] for r in rows), chosen, repeated))
    return out


def group_table(frame: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """One row per experiment: its label, runs and distinct seeds, mean ± CI per metric over one run
    per seed, and mean cost. Columns `<metric>` hold display strings, `<metric>_mean`/`_hw`/`_sd`
    the numbers."""
    if frame.empty:
        return pd.DataFrame()
    out = []
    for exp in experiments(frame):
        g = frame[frame["run_id"].isin(exp.seeds)]
        first = g.iloc[0]
        row: dict[str, Any] = {"experiment": exp.label, "key": exp.key, "dataset": first["dataset"],
                               "model": first["model"], "method": first["method"],
                               "runs": len(exp.runs), "seeds": len(exp.seeds)}
        for m in METRICS:
            ci = t_interval(g[m].dropna().tolist(), confidence)
            row[m] = format_ci(ci)
            row[f"{m}_mean"], row[f"{m}_hw"], row[f"{m}_sd"] = ci["mean"], ci["half_width"], ci["std"]
        for c in ("trainable_params", "train_seconds", "samples_per_second", "peak_memory_mb"):
            vals = pd.to_numeric(g[c], errors="coerce").dropna()
            row[c] = float(vals.mean()) if len(vals) else None
        row["note"] = "; ".join(x for x in (t_interval(g["macro_f1"].dropna().tolist())["note"], exp.note) if x)
        out.append(row)
    return pd.DataFrame(out)


def per_class_f1(run: Run) -> dict[str, float]:
    per = ((run.summary().get("test") or {}).get("per_class")) or {}
    return {label: float(v["f1"]) for label, v in per.items()}


def per_class_diff(a: Sequence[Run], b: Sequence[Run]) -> pd.DataFrame:
    """Per-class F1 of group A and group B (means over their runs) and A − B."""
    def mean_f1(runs: Sequence[Run]) -> pd.Series:
        return pd.DataFrame([per_class_f1(r) for r in runs]).mean(axis=0)

    fa, fb = mean_f1(one_run_per_seed(a)[0]), mean_f1(one_run_per_seed(b)[0])
    df = pd.DataFrame({"class": fa.index.astype(str), "f1_a": fa.values})
    df = df.merge(pd.DataFrame({"class": fb.index.astype(str), "f1_b": fb.values}), on="class", how="outer")
    df["diff"] = df["f1_a"] - df["f1_b"]
    return df.sort_values("diff").reset_index(drop=True)


def paired_predictions(a: Run, b: Run) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both runs' test predictions, checked to be on the same examples in the same order."""
    pa, pb = a.predictions(), b.predictions()
    if len(pa) != len(pb) or not (pa["input"].astype(str).values == pb["input"].astype(str).values).all():
        raise RunError(f"Runs {a.id} and {b.id} were not scored on the same test examples (different data or "
                       "split seed), so they cannot be compared example by example.")
    return pa, pb


def not_comparable(a: Sequence[Run], b: Sequence[Run]) -> str | None:
    """Why the runs of A and B cannot be compared (None when they can): a different task, a different
    dataset (by name, and by content fingerprint where runs recorded one)."""
    rows = [run_row(r) for r in [*a, *b]]
    tasks = {r["task"] for r in rows if r["task"]}
    if len(tasks) > 1:
        return (f"A and B solve different tasks ({' and '.join(sorted(tasks))}); their scores are not "
                "comparable, so there is no verdict.")
    names = {str(r["dataset"]) for r in rows}
    if len(names) > 1:
        return (f"A and B were trained on different datasets ({', '.join(sorted(names))}); their scores are not "
                "comparable, so there is no verdict.")
    if len({r["fingerprint"] for r in rows} - {None}) > 1:
        return (f"A and B used different versions of dataset {next(iter(names))}: its contents, the sample of "
                "it (max samples) or its split (split seed, fractions) differ, so they were not tested on the "
                "same examples and there is no verdict.")
    return None


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


def one_run_per_seed(runs: Sequence[Run]) -> tuple[list[Run], list[tuple[Any, int]]]:
    """The newest run of each distinct seed (run ids start with their start time), and the seeds
    that ran more than once with how often: a repeat of a seed is not an independent sample."""
    per_seed: dict[Any, list[Run]] = {}
    for r in sorted(runs, key=lambda r: r.id):
        per_seed.setdefault(run_row(r)["seed"], []).append(r)
    return [rs[-1] for rs in per_seed.values()], [(s, len(rs)) for s, rs in per_seed.items() if len(rs) > 1]


def _prediction_matrix(runs: Sequence[Run], reference: Run) -> tuple[np.ndarray, np.ndarray, int]:
    """True labels, one row of predicted ids per run, and the number of classes; every run checked
    to be scored on `reference`'s test examples in the same order."""
    preds = [paired_predictions(reference, r)[1] for r in runs]
    ref = reference.predictions()
    k = max([int(ref["label_id"].max()) + 1, *(int(p["pred_id"].max()) + 1 for p in preds),
             *(sum(c.startswith("prob_") for c in p.columns) for p in preds)])
    return ref["label_id"].to_numpy(int), np.stack([p["pred_id"].to_numpy(int) for p in preds]), k


def _macro_f1(y: np.ndarray, p: np.ndarray, k: int) -> float:
    return float(_resampled_scores(y, p, np.arange(len(y))[None, :], k, "macro_f1")[0])


def _score(y: np.ndarray, p: np.ndarray, k: int, metric: str) -> float:
    return float((y == p).mean()) if metric == "accuracy" else _macro_f1(y, p, k)


def _resampled_scores(y: np.ndarray, p: np.ndarray, idx: np.ndarray, k: int, metric: str) -> np.ndarray:
    """One run's accuracy or macro-F1 on each row of example indices `idx` (resamples × n), at once."""
    if metric == "accuracy":
        return (y == p)[idx].mean(axis=1)
    r = idx.shape[0]
    # One confusion matrix per resample from a single bincount over offset codes.
    codes = (y * k + p)[idx] + (np.arange(r) * k * k)[:, None]
    cm = np.bincount(codes.ravel(), minlength=r * k * k).reshape(r, k, k).astype(float)
    tp = np.diagonal(cm, axis1=1, axis2=2)
    denom = cm.sum(axis=1) + cm.sum(axis=2)
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    return f1.mean(axis=1)  # macro-F1 averages over every class of the run, as the summary's does


def difference(y: np.ndarray, pa: np.ndarray, pb: np.ndarray, k: int, metric: str = "macro_f1",
               resamples: int = 2000, seed: int = 0, confidence: float = 0.95) -> dict[str, Any]:
    """A − B of the mean accuracy or macro-F1 over each side's seeds (rows of `pa`, `pb`: predicted
    ids on the shared test examples with true ids `y`), with an interval and a two-sided p-value
    that hold both sources of noise. Pure numpy; `verdict` reads runs and calls this.

    One run a side: the paired percentile bootstrap over test examples. Otherwise the variance of
    the difference is the paired bootstrap's over test examples (seeds held fixed) plus each side's
    between-seed variance of its mean (s² / n, the unbiased estimate: resampling two or three seeds
    would understate it), with a t distribution whose degrees of freedom follow Welch–Satterthwaite
    (the test-set part counts as known). A side with a single seed borrows the other side's
    between-seed variance, since one seed says nothing about its own spread."""
    from scipy import stats

    pa, pb = np.atleast_2d(pa), np.atleast_2d(pb)
    n, na, nb = len(y), len(pa), len(pb)
    rng = np.random.default_rng(seed)
    diffs = np.empty(resamples)
    chunk = max(1, min(resamples, 2_000_000 // max(1, n)))  # bounded memory for big test sets
    for start in range(0, resamples, chunk):
        rows = slice(start, min(resamples, start + chunk))
        idx = rng.integers(0, n, (rows.stop - rows.start, n))
        diffs[rows] = (np.mean([_resampled_scores(y, p, idx, k, metric) for p in pa], axis=0)
                       - np.mean([_resampled_scores(y, p, idx, k, metric) for p in pb], axis=0))
    score_a = np.array([_score(y, p, k, metric) for p in pa])
    score_b = np.array([_score(y, p, k, metric) for p in pb])
    diff = float(score_a.mean() - score_b.mean())
    base = {"diff": diff, "n": n, "seeds": (na, nb), "metric": metric, "resamples": resamples}
    if na == 1 and nb == 1:
        lo, hi = np.quantile(diffs, [(1 - confidence) / 2, (1 + confidence) / 2])
        # +1 in numerator and denominator: a p-value from resamples is never exactly zero.
        p_value = (int((np.abs(diffs - diffs.mean()) >= abs(diff) - 1e-12).sum()) + 1) / (resamples + 1)
        return {**base, "low": float(lo), "high": float(hi), "p_value": min(1.0, float(p_value)),
                "std": float(diffs.std(ddof=1)) if resamples > 1 else 0.0,
                "method": "paired bootstrap over test examples"}
    var_test = float(diffs.var(ddof=1)) if resamples > 1 else 0.0
    spread = {side: (float(sc.var(ddof=1)), len(sc) - 1) for side, sc in (("a", score_a), ("b", score_b))
              if len(sc) > 1}
    parts = []  # (variance of this side's mean, its degrees of freedom)
    for side, count in (("a", na), ("b", nb)):
        own = spread.get(side) or spread.get("b" if side == "a" else "a")
        parts.append((own[0] / count, own[1]))
    var = var_test + sum(v for v, _ in parts)
    seed_df = sum(v * v / d for v, d in parts if d > 0 and v > 0)
    dof = float("inf") if seed_df == 0 else var * var / seed_df
    se = math.sqrt(var)
    if se == 0:  # every resample and every seed agree exactly: nothing to test
        return {**base, "low": diff, "high": diff, "p_value": None, "std": 0.0,
                "method": "seeds and test examples (no variation at all)"}
    half = float(stats.t.ppf(0.5 + confidence / 2, dof) * se)
    p_value = float(2 * stats.t.sf(abs(diff) / se, dof))
    return {**base, "low": diff - half, "high": diff + half, "p_value": p_value, "std": se, "dof": dof,
            "test_sd": math.sqrt(var_test), "seed_sd": math.sqrt(sum(v for v, _ in parts)),
            "method": "t interval over seeds and test examples"}


def group_difference(a: Sequence[Run], b: Sequence[Run], metric: str = "macro_f1", resamples: int = 2000,
                     seed: int = 0, confidence: float = 0.95) -> dict[str, Any]:
    """`difference` for the runs of two sides, checked to be scored on the same test examples."""
    if not a or not b:
        raise RunError("Pick at least one finished run on each side to compare.")
    y, pa, k = _prediction_matrix(a, a[0])
    _, pb, kb = _prediction_matrix(b, a[0])
    return difference(y, pa, pb, max(k, kb), metric, resamples, seed, confidence)


def paired_bootstrap(a: Run, b: Run, metric: str = "macro_f1", resamples: int = 2000, seed: int = 0,
                     confidence: float = 0.95) -> dict[str, Any]:
    """Difference A − B of accuracy or macro-F1 on the same test examples, with a percentile
    bootstrap interval over examples (pairs resampled together) and a two-sided p-value."""
    return group_difference([a], [b], metric, resamples, seed, confidence)


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


STATISTICS_NOTE = (
    "How verdicts are decided: all runs of a comparison are scored on the same test examples. For one run "
    "against one run, the difference A − B gets a 95 % interval from a paired bootstrap over those examples "
    "(the exact McNemar test gives the p-value for accuracy). For seed groups, the variance of the difference "
    "of the means over seeds adds the paired bootstrap's variance over test examples to each side's "
    "between-seed variance of its mean (a side with one seed borrows the other side's spread), and the "
    "interval and p-value come from a t distribution with Welch–Satterthwaite degrees of freedom, so both "
    "the noise of a finite test set and the spread between seeds count, and two or three seeds give the wide "
    "interval they deserve. A difference is called a win only when the interval excludes zero and p < 0.05. "
    "Runs that differ in any setting but the seed are separate experiments, and a seed that ran twice counts "
    "once.")


def verdict(a: Sequence[Run], b: Sequence[Run], metric: str = "macro_f1", name_a: str = "A", name_b: str = "B",
            confidence: float = 0.95, resamples: int = 2000) -> Verdict:
    """'A beats B on macro-F1 by x (A − B = …, interval …)' only when the interval of A − B excludes
    zero and the test's p-value is below 1 − confidence; otherwise says the difference is within noise.

    One rule for every case (see STATISTICS_NOTE and `difference`): test-set noise always counts,
    and between-seed spread counts whenever a side has seeds. For one run a side on accuracy the
    exact McNemar test decides, and both paired tests are returned for display. ECE has no paired
    test: it falls back to macro-F1."""
    if not a or not b:
        raise RunError("Pick at least one finished run on each side to compare.")
    reason = not_comparable(a, b)
    if reason:
        raise RunError(reason)
    if any(run_row(r)[m] is None for r in [*a, *b] for m in ("accuracy", "macro_f1")):
        raise RunError("Some of the picked runs have no test metrics yet (unfinished or failed).")
    tested = metric if metric in ("accuracy", "macro_f1") else "macro_f1"
    label = METRIC_NAMES.get(tested, tested)
    alpha = 1 - confidence
    a, rep_a = one_run_per_seed(a)
    b, rep_b = one_run_per_seed(b)
    tests: tuple[dict[str, Any], ...] = ()
    if len(a) == 1 and len(b) == 1:
        tests = tuple(paired_tests(a[0], b[0], confidence))
        # The macro-F1 bootstrap is one of the paired tests already; only accuracy needs its own interval.
        res = tests[1] if tested == "macro_f1" else group_difference(a, b, tested, resamples, confidence=confidence)
        if tested == "accuracy":
            p = tests[0]["p_value"]
            basis = f"one run each, {res['n']} paired test examples, exact McNemar {fmt_p(p)}"
        else:
            p = res["p_value"]
            basis = f"one run each, {res['n']} paired test examples, paired bootstrap {fmt_p(p)}"
    else:
        res = group_difference(a, b, tested, resamples=resamples, confidence=confidence)
        p = res["p_value"]
        basis = (f"{len(a)} vs {len(b)} seed{'s' if len(b) > 1 else ''} on the same {res['n']} test examples, "
                 f"t test over seeds and test examples {fmt_p(p)}")
    repeats = [f"{side} seed {s} ran {n} times, counted once" for side, rep in ((name_a, rep_a), (name_b, rep_b))
               for s, n in rep]
    if repeats:
        basis += "; " + "; ".join(repeats)
    diff, low, high = res["diff"], res["low"], res["high"]
    pct = int(round(confidence * 100))
    better_a = diff > 0 if tested not in LOWER_IS_BETTER else diff < 0
    significant = (low > 0 or high < 0) and p is not None and p < alpha
    stated = f"{name_a} − {name_b} = {diff:+.3f}, {pct} % interval {low:+.3f} to {high:+.3f}"
    if significant:
        winner, loser = (name_a, name_b) if better_a else (name_b, name_a)
        text = f"{winner} beats {loser} on {label} by {abs(diff):.3f} ({stated}; {basis})."
    else:
        text = (f"No clear difference on {label}: {stated}, which includes zero or the test is not significant "
                f"({basis}). Treat them as tied, or add seeds or test examples.")
    return Verdict(text=text, significant=significant, diff=diff, low=low, high=high, method=res["method"],
                   p_value=p, tests=tests)


def fmt_p(p: float | None) -> str:
    if p is None:
        return "p = –"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"
