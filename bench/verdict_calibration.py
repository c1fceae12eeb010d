"""How often a seed-group verdict calls a winner between equals, and how often it finds a real gap.

    python bench/verdict_calibration.py [--sims 200] [--test 1000] [--resamples 300]

Simulated runs on a binary task: every seed's accuracy is drawn around a side's mean with the given
seed spread, and each test example is right with that probability. Two rules on the same draws:
- tunescope's (`core.compare.difference`): paired bootstrap variance over test examples plus each
  side's between-seed variance of its mean, t with Welch–Satterthwaite degrees of freedom;
- "resample seeds": a bootstrap that draws test examples and seeds with replacement (the rule before
  trust fix 2), which understates the spread of two or three seeds.
A "win" is an interval without zero and p < 0.05, so 5 % is the nominal false-win rate. Prints the
false-win rate on equal sides and the power on a true accuracy gap, with the ratio of the two rules.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.compare import _resampled_scores, difference  # noqa: E402


def side(rng: np.random.Generator, y: np.ndarray, seeds: int, mean: float, spread: float) -> np.ndarray:
    accs = np.clip(mean + rng.normal(0, spread, seeds), 0.5, 0.99)
    return np.array([np.where(rng.random(len(y)) < a, y, 1 - y) for a in accs])


def resample_seeds_wins(y: np.ndarray, pa: np.ndarray, pb: np.ndarray, resamples: int, seed: int) -> bool:
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(y), (resamples, len(y)))
    sa = np.stack([_resampled_scores(y, p, idx, 2, "accuracy") for p in pa], 1)
    sb = np.stack([_resampled_scores(y, p, idx, 2, "accuracy") for p in pb], 1)
    rows = np.arange(resamples)[:, None]
    d = (sa[rows, rng.integers(0, len(pa), sa.shape)].mean(1) - sb[rows, rng.integers(0, len(pb), sb.shape)].mean(1))
    obs = (pa == y).mean() - (pb == y).mean()
    lo, hi = np.quantile(d, [0.025, 0.975])
    p = ((np.abs(d - d.mean()) >= abs(obs)).sum() + 1) / (resamples + 1)
    return bool((lo > 0 or hi < 0) and p < 0.05)


def ours_wins(y: np.ndarray, pa: np.ndarray, pb: np.ndarray, resamples: int, seed: int) -> bool:
    r = difference(y, pa, pb, 2, "accuracy", resamples=resamples, seed=seed)
    return bool(r["p_value"] is not None and r["p_value"] < 0.05 and (r["low"] > 0 or r["high"] < 0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sims", type=int, default=200)
    ap.add_argument("--test", type=int, default=1000, help="test examples")
    ap.add_argument("--resamples", type=int, default=300)
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    print(f"{a.sims} simulated comparisons per row, {a.test} test examples, {a.resamples} resamples")
    print(f"{'case':<34} {'seeds':>5} {'tunescope':>10} {'resample seeds':>15} {'ratio':>6}")
    for gap, spread in ((0.0, 0.05), (0.0, 0.10), (0.05, 0.02)):
        for seeds in (2, 3, 5):
            ours = theirs = 0
            for i in range(a.sims):
                y = rng.integers(0, 2, a.test)
                pa, pb = side(rng, y, seeds, 0.8 + gap, spread), side(rng, y, seeds, 0.8, spread)
                ours += ours_wins(y, pa, pb, a.resamples, i)
                theirs += resample_seeds_wins(y, pa, pb, a.resamples, i)
            what = f"{'equal' if gap == 0 else f'gap {gap}'}, seed sd {spread}"
            what += " (false wins)" if gap == 0 else " (power)"
            ratio = f"{ours / theirs:.2f}" if theirs else "–"
            print(f"{what:<34} {seeds:>5} {ours / a.sims:>10.1%} {theirs / a.sims:>15.1%} {ratio:>6}")
    print(f"{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
