"""Classes, splits and warnings: the checks every class must pass, the stratified seed-deterministic
subsample and train/validation/test split (or the split a column gives), and the non-fatal
warnings (duplicates, conflicting labels, leakage, imbalance, truncation) a dataset carries.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

from core.data.examples import Examples
from core.data.messages import fmt_names
from core.errors import ConfigError, DataError, SingleClassError, TooFewExamplesError, UnknownLabelError


def check_classes(ex: Examples) -> None:
    counts = Counter(ex.labels)
    column = f" in column '{ex.label_column}'" if ex.label_column else ""
    if len(counts) < 2:
        only = next(iter(counts), "")
        raise SingleClassError(f"'{ex.file}' has only one class ('{only}'){column}; a classifier "
                               f"needs examples of at least two classes.")
    rare = sort_labels({c for c, n in counts.items() if n < 2})
    if rare:
        first = rare[0]
        loc = ex.where(ex.labels.index(first))
        others = f" (so do {fmt_names(rare[1:])})" if len(rare) > 1 else ""
        raise TooFewExamplesError(f"'{ex.file}': class '{first}' has only 1 example, at {loc}{others}; "
                                  f"every class needs at least 2, so add examples or remove it.")


def check_known_labels(ex: Examples, known: list[str]) -> None:
    allowed = set(known)
    unknown = [i for i, label in enumerate(ex.labels) if label not in allowed]
    if unknown:
        first = ex.labels[unknown[0]]
        more = f" ({len(unknown)} rows in all)" if len(unknown) > 1 else ""
        raise UnknownLabelError(f"'{ex.file}' {ex.where(unknown[0])} has label '{first}', which the "
                                f"model does not know{more} (its labels: {fmt_names(known)}); fix "
                                f"the label or remove the row.")


def require_all_splits(ex: Examples, assignment: list[str]) -> None:
    """Training needs examples to learn from, to pick the best epoch on, and to score on."""
    empty = [s for s in ("train", "validation", "test") if s not in assignment]
    if empty:
        raise TooFewExamplesError(
            f"'{ex.file}' has only {len(assignment)} usable examples, too few for a "
            f"{' and '.join(empty)} split; add examples (a few per class at least) or give a split "
            f"column with train, validation and test rows.")


def sort_labels(labels: set[str]) -> list[str]:
    """Numeric labels sort by value, others naturally ("class2" < "class10")."""
    def as_number(s: str) -> float | None:
        try:
            return float(s)
        except ValueError:
            return None
    numbers = {s: as_number(s) for s in labels}
    if all(v is not None and math.isfinite(v) for v in numbers.values()):
        return sorted(labels, key=lambda s: (numbers[s], s))

    def natural(s: str) -> tuple[Any, ...]:
        return tuple((0, int(t), "") if t.isdigit() else (1, 0, t.lower())
                     for t in re.split(r"(\d+)", s)) + ((2, 0, s),)
    return sorted(labels, key=natural)


def _by_class(labels: Sequence[str]) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = defaultdict(list)
    for i, label in enumerate(labels):
        groups[label].append(i)
    return {c: groups[c] for c in sort_labels(set(groups))}


def _apportion(counts: Sequence[int], total: int) -> list[int]:
    """Split `total` across classes in proportion to `counts` (largest remainder, ties by order)."""
    whole = sum(counts)
    if whole == 0 or total <= 0:
        return [0] * len(counts)
    exact = [c * total / whole for c in counts]
    out = [math.floor(x) for x in exact]
    order = sorted(range(len(counts)), key=lambda i: (-(exact[i] - out[i]), i))
    for i in order[: total - sum(out)]:
        out[i] += 1
    return out


def subsample(labels: Sequence[str], n: int, seed: int) -> list[int]:
    """A stratified, seed-deterministic subset of `n` indices keeping >= 2 examples per class."""
    groups = _by_class(labels)
    if n < 2 * len(groups):
        raise ConfigError(f"max_samples={n} is too small for {len(groups)} classes; use at least "
                          f"{2 * len(groups)} so every class keeps two examples.")
    quotas = _apportion([len(g) for g in groups.values()], n)
    for k in range(len(quotas)):
        while quotas[k] < 2:  # a rare class keeps two examples, paid for by the largest quota
            quotas[max(range(len(quotas)), key=lambda j: quotas[j])] -= 1
            quotas[k] += 1
    rng = np.random.default_rng(seed)
    picked: list[int] = []
    for idx, take in zip(groups.values(), quotas, strict=True):
        picked += rng.choice(idx, size=take, replace=False).tolist()
    return sorted(picked)


def stratified_split(labels: Sequence[str], val_fraction: float, test_fraction: float,
                     seed: int) -> list[str]:
    """Split name per example; every class keeps >= 1 training example and, with >= 2, one test."""
    groups = _by_class(labels)
    counts = [len(g) for g in groups.values()]
    total = len(labels)
    tests = _apportion(counts, round(total * test_fraction))
    vals = _apportion(counts, round(total * val_fraction))
    for k, n in enumerate(counts):
        if test_fraction > 0 and n >= 2:
            tests[k] = max(tests[k], 1)  # a class absent from test cannot be scored
        over = tests[k] + vals[k] - (n - 1)
        if over > 0:  # give back validation first: the test set matters more
            back = min(vals[k], over)
            vals[k] -= back
            tests[k] -= over - back
    if val_fraction > 0 and sum(vals) == 0:
        k = max(range(len(counts)), key=lambda j: (counts[j] - tests[j], -j))
        if counts[k] - tests[k] >= 2:
            vals[k] = 1  # an empty validation set would leave nothing to select the best epoch on
    rng = np.random.default_rng(seed)
    out = ["train"] * total
    for idx, t, v in zip(groups.values(), tests, vals, strict=True):
        order = rng.permutation(idx)
        for i in order[:t]:
            out[i] = "test"
        for i in order[t:t + v]:
            out[i] = "validation"
    return out


def splits_from_column(ex: Examples, val_fraction: float, test_fraction: float, seed: int,
                       notes: list[str]) -> list[str]:
    """Use the given splits; carve a missing validation/test split out of train (and say so)."""
    out = list(ex.splits or [])
    train = [i for i, s in enumerate(out) if s == "train"]
    if not train:
        raise DataError(f"'{ex.file}' marks no examples as train in its split column; mark at least "
                        f"one example of each class as train.")
    present = set(out)
    missing = [s for s in ("validation", "test") if s not in present]
    if missing:
        share = {"validation": val_fraction if "validation" in missing else 0.0,
                 "test": test_fraction if "test" in missing else 0.0}
        scale = len(train) / len(out)  # the fractions are of the whole dataset, not of train
        sub = stratified_split([ex.labels[i] for i in train], min(share["validation"] / scale, 0.45),
                               min(share["test"] / scale, 0.45), seed)
        for i, s in zip(train, sub, strict=True):
            out[i] = s
        notes.append(f"'{ex.file}' has no {' or '.join(missing)} examples, so "
                     f"{'they were' if len(missing) > 1 else 'one was'} drawn from train "
                     f"(stratified, seed {seed}).")
    in_train = {ex.labels[i] for i, s in enumerate(out) if s == "train"}
    absent = sort_labels(set(ex.labels) - in_train)
    if absent:
        notes.append(f"Class(es) {fmt_names(absent)} have no training examples in '{ex.file}', so "
                     f"the model cannot learn them; move some of their examples to train.")
    return out


TOKENS_PER_WORD = 1.3  # rough subword tokens per whitespace word for English BPE/WordPiece


def quality_warnings(ex: Examples, assignment: list[str], labels: list[str],
                     max_tokens: int) -> list[str]:
    noun = "text" if ex.task == "text" else "image"
    notes = _duplicate_warnings(ex, assignment, noun)
    counts = Counter(ex.labels)
    if len(counts) >= 2:
        big, small = max(counts, key=counts.get), min(counts, key=counts.get)  # type: ignore[arg-type]
        if counts[big] > 10 * counts[small]:
            notes.append(f"Classes are strongly imbalanced in '{ex.file}': '{big}' has "
                         f"{counts[big]} examples but '{small}' only {counts[small]} "
                         f"({counts[big] / counts[small]:.0f}x); expect weak results on the rare "
                         f"class(es) and watch macro F1.")
    folded: dict[str, list[str]] = defaultdict(list)
    for label in labels:
        folded[label.strip().casefold()].append(label)
    clashes = [v for v in folded.values() if len(v) > 1]
    if clashes:
        notes.append(f"Labels {' / '.join(fmt_names(v) for v in clashes)} in '{ex.file}' differ "
                     f"only in letter case, so they count as separate classes; make them consistent.")
    if ex.task == "text":
        long = sum(1 for t in ex.inputs if len(t.split()) * TOKENS_PER_WORD > max_tokens)
        if long:
            notes.append(f"{long} of {len(ex.inputs)} texts in '{ex.file}' are longer than about "
                         f"{max_tokens} tokens and will be truncated; raise the max length if the "
                         f"end of a text matters.")
    if "validation" not in assignment and any(s != "test" for s in assignment):
        notes.append(f"'{ex.file}' is too small for a validation split, so the best epoch cannot be "
                     f"chosen on held-out data; add more examples.")
    return notes


def _duplicate_warnings(ex: Examples, assignment: list[str], noun: str) -> list[str]:
    notes = []
    first: dict[Hashable, int] = {}
    label_sets: dict[Hashable, set[str]] = defaultdict(set)
    split_sets: dict[Hashable, set[str]] = defaultdict(set)
    repeats: list[int] = []
    for i, key in enumerate(ex.keys):
        if key in first:
            repeats.append(i)
        else:
            first[key] = i
        label_sets[key].add(ex.labels[i])
        split_sets[key].add(assignment[i])
    if repeats:
        i = repeats[0]
        notes.append(f"{len(repeats)} {noun}(s) in '{ex.file}' exactly repeat an earlier one "
                     f"(e.g. {ex.where(i)} repeats {ex.where(first[ex.keys[i]])}); remove "
                     f"duplicates unless they are intended.")
    conflicts = [k for k, s in label_sets.items() if len(s) > 1]
    if conflicts:
        k = conflicts[0]
        notes.append(f"{len(conflicts)} {noun}(s) in '{ex.file}' carry conflicting labels (e.g. "
                     f"{ex.where(first[k])} is labelled both {fmt_names(sort_labels(label_sets[k]), last=' and ')}); "
                     f"fix the labels, since the model cannot learn both.")
    leaked = sum(1 for s in split_sets.values() if len(s) > 1)
    if leaked:
        notes.append(f"{leaked} {noun}(s) in '{ex.file}' appear in more than one split "
                     f"(train/validation/test leakage), which inflates test scores; remove the "
                     f"duplicates.")
    return notes
