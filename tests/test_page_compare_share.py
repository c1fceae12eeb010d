"""Compare you can share (issue 14, items 5 and 6): the URL follows the selection, a shared link
restores it, short labels coloured by experiment, and a note instead of charts for mixed selections."""

from __future__ import annotations

import json
from pathlib import Path

from apptest_support import open_app_page, plain
from run_factory import write_fake_run
from streamlit.testing.v1 import AppTest


def _query(at: AppTest, key: str) -> str:
    value = at.query_params.get(key, "")
    return ",".join(value) if isinstance(value, list) else str(value)


def _link(at: AppTest) -> str:
    return next(c.value for c in at.code if "compare" in c.value)


def _traces(at: AppTest) -> dict[str, list[dict]]:
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    return {spec["layout"]["title"]["text"]: spec["data"] for spec in specs}


def test_the_url_and_the_copy_link_follow_the_run_selection(fake_runs: Path) -> None:
    at = open_app_page("compare")
    picked = ["reviews-full-s1", "reviews-head-s1"]
    at.multiselect(key="compare_runs").set_value(picked).run()
    assert not at.exception, [e.value for e in at.exception]
    assert _query(at, "runs") == "reviews-full-s1,reviews-head-s1" and not _query(at, "groups")
    assert _link(at).endswith("/compare?runs=reviews-full-s1,reviews-head-s1")


def test_a_shared_group_link_reopens_the_same_comparison(fake_runs: Path) -> None:
    at = open_app_page("compare")
    at.radio(key="compare_mode").set_value("Seed groups").run()
    groups = at.multiselect(key="compare_groups")
    groups.set_value(groups.options).run()
    assert not at.exception, [e.value for e in at.exception]
    keys = _query(at, "groups")
    assert keys and len(keys.split(",")) == 2 and not _query(at, "runs")
    assert _link(at).endswith(f"/compare?groups={keys}")
    table = at.dataframe[0].value

    fresh = open_app_page("compare", groups=f"{keys},0123456789ab")  # a new browser, one unknown group
    assert fresh.radio(key="compare_mode").value == "Seed groups"
    assert sorted(fresh.multiselect(key="compare_groups").value) == sorted(at.multiselect(key="compare_groups").value)
    assert "0123456789ab" in fresh.warning[0].value and "seed groups" in fresh.warning[0].value
    assert list(fresh.dataframe[0].value["experiment"]) == list(table["experiment"])
    assert _query(fresh, "groups") == keys  # the unknown one dropped from the URL


def test_curves_use_short_labels_coloured_by_experiment(fake_runs: Path) -> None:
    at = open_app_page("compare", runs=",".join(sorted(p.name for p in fake_runs.iterdir())))
    assert not at.exception, [e.value for e in at.exception]
    loss = next(data for title, data in _traces(at).items() if title.startswith("loss"))
    colour = {tr["name"]: tr["line"]["color"] for tr in loss}
    assert set(colour) == {"head · s1", "head · s2", "full · s1", "full · s2"}
    assert colour["head · s1"] == colour["head · s2"] != colour["full · s1"] == colour["full · s2"]


def test_the_interval_note_sits_beside_the_intervals(home: Path) -> None:
    write_fake_run(home / "runs", "solo-full", method="full", seed=1)
    write_fake_run(home / "runs", "solo-head", method="head", seed=1, accuracy=0.6)
    at = open_app_page("compare", runs="solo-full,solo-head")
    table = at.dataframe[0].value
    cols = list(table.columns)
    assert cols.index("note") == cols.index("macro-F1") + 1
    assert set(table["note"]) == {"one run: no interval; train more seeds to see the spread"}


def test_mixing_datasets_shows_a_note_instead_of_charts(home: Path) -> None:
    write_fake_run(home / "runs", "news-run", dataset="news", method="full")
    write_fake_run(home / "runs", "reviews-run", dataset="reviews", method="head")
    at = open_app_page("compare", runs="news-run,reviews-run")
    assert not at.exception
    note = plain(at.warning[0].value)
    assert "different datasets (news, reviews)" in note and "Pick runs of one dataset" in note
    assert not at.get("plotly_chart")
    assert len(at.dataframe) == 1  # the metrics table, side by side, still shows


def test_the_unknown_id_note_goes_once_the_selection_moves_on(fake_runs: Path) -> None:
    at = open_app_page("compare", runs="reviews-full-s1,reviews-head-s1,ghost")
    assert "ghost" in at.warning[0].value
    assert at.multiselect(key="compare_runs").value == ["reviews-full-s1", "reviews-head-s1"]
    at.run()  # a rerun of the same selection keeps the note
    assert any("ghost" in w.value for w in at.warning)
    at.multiselect(key="compare_runs").set_value(["reviews-full-s1", "reviews-full-s2"]).run()
    assert not any("ghost" in w.value for w in at.warning)
    assert _query(at, "runs") == "reviews-full-s1,reviews-full-s2"


def test_seeds_of_one_experiment_are_picked_by_short_label(fake_runs: Path) -> None:
    at = open_app_page("compare", runs="reviews-full-s1,reviews-full-s2")
    assert at.selectbox(key="compare_a").options == ["full · s1 (reviews-full-s1)", "full · s2 (reviews-full-s2)"]
    assert at.selectbox(key="compare_a").value == "reviews-full-s1"
