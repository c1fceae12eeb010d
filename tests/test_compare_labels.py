"""Short run labels, mixed selections and share-link parsing for the Compare page (core.compare_labels)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from run_factory import write_fake_run

from core import compare, compare_labels
from core.runs import Run


def _frame(runs_dir: Path, ids: list[str]) -> pd.DataFrame:
    return pd.DataFrame([compare.run_row(Run(runs_dir / i)) for i in ids])


def test_experiment_short_labels_drop_what_all_share() -> None:
    short = compare_labels.experiment_short_labels(["reviews · minilm · head", "reviews · minilm · full"])
    assert short == {"reviews · minilm · head": "head", "reviews · minilm · full": "full"}
    assert compare_labels.experiment_short_labels(["reviews · minilm · lora"]) == {"reviews · minilm · lora": "lora"}
    mixed = compare_labels.experiment_short_labels(["news · bert · full", "reviews · bert · full"])
    assert mixed == {"news · bert · full": "news", "reviews · bert · full": "reviews"}


def test_short_labels_name_method_and_seed_and_colour_by_experiment(fake_runs: Path) -> None:
    ids = sorted(p.name for p in fake_runs.iterdir())
    labels = compare_labels.short_labels(_frame(fake_runs, ids))
    assert {s.text for s in labels.values()} == {"head · s1", "head · s2", "full · s1", "full · s2"}
    by_exp: dict[int, set[str]] = {}
    for s in labels.values():
        by_exp.setdefault(s.index, set()).add(s.text.split(" · ")[0])
    assert sorted(map(sorted, by_exp.values())) == [["full"], ["head"]]  # one colour index per experiment


def test_a_repeated_seed_still_gets_a_unique_label(home: Path) -> None:
    for name in ("run-aaaaaa", "run-bbbbbb"):
        write_fake_run(home / "runs", name, method="full", seed=1)
    labels = compare_labels.short_labels(_frame(home / "runs", ["run-aaaaaa", "run-bbbbbb"]))
    assert sorted(s.text for s in labels.values()) == ["full · s1 (aaaaaa)", "full · s1 (bbbbbb)"]


def test_mixing_note_names_tasks_or_datasets() -> None:
    same = pd.DataFrame({"task": ["text", "text"], "dataset": ["reviews", "reviews"]})
    assert compare_labels.mixing_note(same) is None
    data = compare_labels.mixing_note(pd.DataFrame({"task": ["text", "text"], "dataset": ["news", "reviews"]}))
    assert data and "different datasets (news, reviews)" in data
    task = compare_labels.mixing_note(pd.DataFrame({"task": ["image", "text"], "dataset": ["a", "b"]}))
    assert task and "different tasks (image and text)" in task


def test_parse_selection_keeps_order_and_names_unknown_ids() -> None:
    known = ["a", "b", "c"]
    assert compare_labels.parse_selection("b, a,,ghost,b", known) == (["b", "a"], ["ghost"])
    assert compare_labels.parse_selection(["a,b", "c"], known) == (["a", "b", "c"], [])
    assert compare_labels.parse_selection(None, known) == ([], [])
    assert compare_labels.parse_selection("", known) == ([], [])
    huge = ",".join(f"x{i}" for i in range(1000))
    assert len(compare_labels.parse_selection(huge, known)[1]) == compare_labels.MAX_SELECTION


def test_share_url_round_trips() -> None:
    url = compare_labels.share_url("http://localhost:8501/compare", "groups", ["abc123:1f2e", "def456"])
    assert url == "http://localhost:8501/compare?groups=abc123:1f2e,def456"
    value = url.split("groups=", 1)[1]
    assert compare_labels.parse_selection(value, ["abc123:1f2e", "def456"]) == (["abc123:1f2e", "def456"], [])
    assert compare_labels.share_url("/compare", "runs", []) == "/compare"
    assert compare_labels.share_url("/compare", "runs", ["a b&c"]) == "/compare?runs=a%20b%26c"
