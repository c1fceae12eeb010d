"""Compare page: group intervals, curves, per-class differences and an honest verdict."""

from __future__ import annotations

from pathlib import Path

from apptest_support import open_app_page, plain
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
    groups = list(table["experiment"])
    assert list(table["seeds"]) == [3, 3]
    at.selectbox(key="compare_a").set_value(next(g for g in groups if "full" in g)).run()
    at.selectbox(key="compare_b").set_value(next(g for g in groups if "head" in g)).run()
    at.selectbox(key="compare_metric").set_value("accuracy").run()
    assert at.success, [i.value for i in at.info]
    assert "beats" in at.success[0].value and at.success[0].value.startswith("reviews · minilm · full")
    assert len(at.get("plotly_chart")) == 3  # per-class differences + two curve overlays
    assert at.query_params["runs"]


def test_two_seeds_each_are_flagged_as_rough(fake_runs: Path) -> None:
    at = _page(",".join(sorted(p.name for p in fake_runs.iterdir())))
    table = at.dataframe[0].value
    assert set(table["note"]) == {"fewer than 3 seeds: the interval is wide and rough"}
    assert at.success, [i.value for i in at.info]  # a 0.2 accuracy gap on 60 examples: clear even with 2 seeds
    text = plain(at.success[0].value)
    assert text.startswith("reviews · minilm · full beats reviews · minilm · head")
    assert "2 vs 2 seeds on the same 60 test examples" in text


def test_what_differs_between_two_experiments_is_shown(home: Path) -> None:
    for seed in (1, 2):
        write_fake_run(home / "runs", f"fast-{seed}", accuracy=0.8, method="full", seed=seed, lr=1e-4)
        write_fake_run(home / "runs", f"slow-{seed}", accuracy=0.8, method="full", seed=seed + 2, lr=5e-5)
    at = _page()
    at.radio(key="compare_mode").set_value("Seed groups").run()
    groups = at.multiselect(key="compare_groups")
    assert sorted(groups.options) == ["reviews · minilm · full · lr 0.0001 (2 seeds)",
                                      "reviews · minilm · full · lr 5e-05 (2 seeds)"]
    groups.set_value(groups.options).run()
    assert not at.exception, [e.value for e in at.exception]
    assert list(at.dataframe[0].value["seeds"]) == [2, 2]  # never pooled into one group of 4
    at.selectbox(key="compare_a").set_value("reviews · minilm · full · lr 0.0001").run()
    at.selectbox(key="compare_b").set_value("reviews · minilm · full · lr 5e-05").run()
    diff = next(d.value for d in at.dataframe if "setting" in d.value.columns)
    assert diff.to_dict("records")[0] == {"setting": "lr", "A": "0.0001", "B": "5e-05"}
    assert any("What differs between A and B" in c.value for c in at.caption)


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
    # short run labels ("<method> · s<seed>"), not run ids (issue 14, item 5)
    assert len(disagree) > 0 and set(disagree["right"]) <= {"full · s1", "head · s2", "neither"}
    assert {"full · s1", "head · s2"} <= set(disagree.columns)
    from core.report import find_chromium

    pdf = ["Report on these runs (PDF)"] if find_chromium() else []  # printed by the server's Chromium
    assert [b.proto.label for b in at.get("download_button")] == ["Report on these runs (HTML)", *pdf]
    if not pdf:
        assert any("A PDF needs Chromium on the server" in c.value for c in at.caption)


def test_three_seed_groups_get_a_verdict_over_seeds_and_test_examples(fake_runs: Path) -> None:
    for method, acc in (("head", 0.7), ("full", 0.9)):
        write_fake_run(fake_runs, f"reviews-{method}-s3", accuracy=acc, method=method, seed=3)
    at = _page()
    at.radio(key="compare_mode").set_value("Seed groups").run()
    at.multiselect(key="compare_groups").set_value(at.multiselect(key="compare_groups").options).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.success, [i.value for i in at.info]
    text = plain(at.success[0].value)
    assert "full beats" in text
    assert "3 vs 3 seeds on the same 60 test examples, t test over seeds and test examples p" in text
    assert " − " in text and "interval" in text
