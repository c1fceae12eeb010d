"""Naming and sharing a comparison: short run labels ("head · s1") with the experiment each run
belongs to (one colour per experiment on a chart), the note for a selection that mixes tasks or
datasets, and reading and writing the `?runs=` / `?groups=` selection of a share link.

Imports core.compare (experiments) and pandas; nothing here loads a model.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from core.compare import experiments


@dataclass(frozen=True)
class ShortLabel:
    """How one run is named on a crowded chart: `text` ("head · s1"), the `experiment` it belongs to
    (its full label) and that experiment's position (`index`), so every seed of one experiment gets
    the same colour."""

    text: str
    experiment: str
    index: int


def experiment_short_labels(labels: Sequence[str]) -> dict[str, str]:
    """Each experiment label without the ' · ' parts every label shares ("reviews · minilm · head"
    and "reviews · minilm · full" become "head" and "full"). A lone experiment keeps its method (the
    third part); labels that would collide keep their full text."""
    parts = {label: label.split(" · ") for label in labels}
    common = set.intersection(*(set(p) for p in parts.values())) if parts else set()
    out: dict[str, str] = {}
    for label, ps in parts.items():
        kept = [p for p in ps if p not in common]
        out[label] = " · ".join(kept) if kept else (ps[2] if len(ps) > 2 else label)
    counts = Counter(out.values())
    return {label: short if counts[short] == 1 else label for label, short in out.items()}


def short_labels(frame: pd.DataFrame) -> dict[str, ShortLabel]:
    """run id → its short label "<what tells its experiment apart> · s<seed>", for every run row of
    `frame` (from `run_row`). A seed that ran more than once gets the end of its run id as well, so
    the labels are unique."""
    exps = experiments(frame)
    short = experiment_short_labels([e.label for e in exps])
    seeds = dict(zip(frame["run_id"], frame["seed"], strict=True))
    out: dict[str, ShortLabel] = {}
    for i, e in enumerate(exps):
        for rid in e.runs:
            seed = seeds.get(rid)
            tail = f"s{seed}" if seed is not None and seed == seed else rid
            out[rid] = ShortLabel(f"{short[e.label]} · {tail}", e.label, i)
    counts = Counter(s.text for s in out.values())
    return {rid: s if counts[s.text] == 1 else dataclasses.replace(s, text=f"{s.text} ({rid[-6:]})")
            for rid, s in out.items()}


def mixing_note(frame: pd.DataFrame) -> str | None:
    """Why a selection of runs cannot be put on shared charts (None when it can): it mixes tasks or
    datasets."""
    if frame.empty:
        return None

    def values(col: str) -> list[str]:
        return sorted({str(v) for v in frame[col] if v is not None and v == v}) if col in frame else []

    tasks, datasets = values("task"), values("dataset")
    if len(tasks) > 1:
        return (f"These runs solve different tasks ({' and '.join(tasks)}): their scores and curves are not "
                "comparable. Pick runs of one task.")
    if len(datasets) > 1:
        return (f"These runs were trained on different datasets ({', '.join(datasets)}): their scores and "
                "curves are not comparable. Pick runs of one dataset.")
    return None


MAX_SELECTION = 100


def parse_selection(value: str | Sequence[str] | None, known: Sequence[str]) -> tuple[list[str], list[str]]:
    """A `?runs=` or `?groups=` value ("a,b,c", or the list Streamlit gives for a repeated key) split
    into (the known ids, in the order given, each once; the unknown ones). At most `MAX_SELECTION`
    ids are read; blanks are skipped."""
    items = [value] if isinstance(value, str) else list(value or [])
    wanted: list[str] = []
    for item in items:
        for x in str(item).split(","):
            x = x.strip()
            if x and x not in wanted:
                wanted.append(x)
    wanted = wanted[:MAX_SELECTION]
    known_set = set(known)
    return [x for x in wanted if x in known_set], [x for x in wanted if x not in known_set]


def share_url(base: str, key: str, ids: Sequence[str]) -> str:
    """The link that reopens a selection: `base` (the page's URL, without a query) + `?key=a,b`."""
    from urllib.parse import quote

    return f"{base}?{key}={','.join(quote(str(i), safe=':-_.') for i in ids)}" if ids else base
