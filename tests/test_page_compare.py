"""Compare page: group intervals, curves, per-class differences and an honest verdict."""

from __future__ import annotations

from pathlib import Path

from apptest_support import open_app_page
from run_factory import write_fake_run
from streamlit.testing.v1 import AppTest


def _page(runs: str | None = None) -> AppTest:
    return open_app_page("compare", **({"runs": runs} if runs is not None else {}))


def test_needs_two_finished_runs(home: Path) -> None:
    write_fake_run(home / "runs", "only-one")
    at = _page()
    assert "at least two finished runs" in at.info[0].value


def test_groups_intervals_verdict_and_curves(fake_runs: Path) -> None:
    for method, acc in (("head", 0.7), ("full", 0.9)):  # a third seed each: a real interval
        write_fake_run(fake_runs, f"reviews-{method}-s3", accuracy=acc, method=method, seed=3)
    at = _page()
    at.multiselect(key="compare_runs").set_value(sorted(p.name for p in fake_runs.iterdir())).run()
    assert not at.exception, [e.value for e in at.exception]
    table = at.dataframe[0].value
    assert list(table["runs"]) == [3, 3]
    assert all("±" in x for x in table["accuracy"])
    groups = list(table["group"])
    at.selectbox(key="compare_a").set_value(next(g for g in groups if "full" in g)).run()
    at.selectbox(key="compare_b").set_value(next(g for g in groups if "head" in g)).run()
    at.selectbox(key="compare_metric").set_value("accuracy").run()
    assert at.success, [i.value for i in at.info]
    assert "beats" in at.success[0].value and at.success[0].value.startswith("reviews · minilm · full")
    assert len(at.get("plotly_chart")) == 3  # per-class differences + two curve overlays
    assert at.query_params["runs"]


def test_two_seeds_each_are_not_enough_to_call_a_winner(fake_runs: Path) -> None:
    at = _page(",".join(sorted(p.name for p in fake_runs.iterdir())))
    table = at.dataframe[0].value
    assert set(table["note"]) == {"fewer than 3 seeds: the interval is wide and rough"}
    assert not at.success  # Welch interval with 2 vs 2 seeds is too wide here, and the page says so
    assert any("No clear difference" in i.value and "2 vs 2 seeds" in i.value for i in at.info)


def test_equal_runs_are_no_clear_difference(home: Path) -> None:
    for name, method in (("same-a", "full"), ("same-b", "head")):
        write_fake_run(home / "runs", name, accuracy=0.8, method=method, seed=3)  # identical predictions
    at = _page("same-a,same-b")
    assert at.multiselect(key="compare_runs").value == ["same-a", "same-b"]
    text = at.info[0].value
    assert "No clear difference" in text and "beats" not in text


def test_different_datasets_get_no_verdict(home: Path) -> None:
    write_fake_run(home / "runs", "news-run", dataset="news", method="full")
    write_fake_run(home / "runs", "reviews-run", dataset="reviews", method="head")
    at = _page("news-run,reviews-run")
    assert "different datasets" in at.warning[0].value
    assert not at.success and not [i for i in at.info if "difference" in i.value]


def test_seed_group_mode_and_unknown_ids(fake_runs: Path) -> None:
    at = _page("reviews-full-s1,ghost")
    assert "ghost" in at.warning[0].value
    at.radio(key="compare_mode").set_value("Seed groups").run()
    groups = at.multiselect(key="compare_groups")
    groups.set_value(groups.options).run()
    assert not at.exception
    assert len(at.dataframe[0].value) == 2


def test_two_single_runs_show_both_paired_tests_and_their_disagreements(home: Path) -> None:
    write_fake_run(home / "runs", "good", accuracy=0.95, method="full", seed=1)
    write_fake_run(home / "runs", "weak", accuracy=0.55, method="head", seed=2)
    at = _page("good,weak")
    assert not at.exception, [e.value for e in at.exception]
    at.selectbox(key="compare_metric").set_value("accuracy").run()
    assert at.success and "exact McNemar p" in at.success[0].value
    tests = next(d.value for d in at.dataframe if "p-value" in d.value.columns)
    assert list(tests["test"]) == ["exact McNemar", "paired bootstrap"]
    assert any("test examples the two runs disagree on" in m.value for m in at.markdown)
    disagree = next(d.value for d in at.dataframe if "right" in d.value.columns)
    assert len(disagree) > 0 and set(disagree["right"]) <= {"good", "weak", "neither"}
    assert [b.proto.label for b in at.get("download_button")] == ["Report on these runs (HTML)"]


def test_three_seed_groups_get_a_verdict_with_the_welch_test(fake_runs: Path) -> None:
    for method, acc in (("head", 0.7), ("full", 0.9)):
        write_fake_run(fake_runs, f"reviews-{method}-s3", accuracy=acc, method=method, seed=3)
    at = _page()
    at.radio(key="compare_mode").set_value("Seed groups").run()
    at.multiselect(key="compare_groups").set_value(at.multiselect(key="compare_groups").options).run()
    assert not at.exception, [e.value for e in at.exception]
    text = (at.success or at.info)[0].value
    assert "3 vs 3 seeds, Welch t test p" in text and "interval" in text
