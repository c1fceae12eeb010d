"""core.jobs.listing: the order and grouping of the job list, the sidebar counts and the ETA rule; and
the explain job titles, which core.explain.jobs writes from the configs it builds."""

from __future__ import annotations

import pytest

from core.explain.jobs import explain_title
from core.jobs.listing import (
    MIN_ETA_S,
    build_listing,
    counts_text,
    eta_seconds,
    liveliness,
    ordinal,
    queue_positions,
)
from core.jobs.store import Job


def job(job_id: str, state: str, created: float, **kw) -> Job:
    seed = kw.pop("seed", None)
    cfg = {"train": {"seed": seed}} if seed is not None else {}
    return Job(id=job_id, state=state, created=created, config=kw.pop("config", cfg), **kw)


def newest_first(*jobs: Job) -> list[Job]:
    return sorted(jobs, key=lambda j: -j.created)


def test_running_then_queued_by_queue_place_then_finished_newest_first() -> None:
    active = newest_first(job("q1", "queued", 1), job("r1", "running", 2, started=5), job("q2", "queued", 3),
                          job("i1", "interrupted", 4), job("r2", "running", 0.5, started=9))
    finished = [job("f_new", "failed", 8, finished=20), job("f_old", "succeeded", 9, finished=10),
                job("c", "cancelled", 7, finished=15)]
    listing = build_listing(active, sorted(finished, key=lambda j: -j.created))
    assert [c.jobs[0].id for c in listing.cards] == ["r2", "r1", "q1", "q2", "i1", "f_new", "c", "f_old"]
    assert [c.section for c in listing.cards] == ["running"] * 2 + ["queued"] * 3 + ["finished"] * 3
    assert [c.positions[0] for c in listing.cards[2:5]] == [1, 2, 3]
    assert listing.counts == {"queued": 2, "running": 2, "interrupted": 1}
    assert counts_text(listing.counts) == "Jobs: 2 running, 3 queued"
    assert counts_text({}) is None


@pytest.mark.parametrize(("jobs", "owner", "pace"), [
    ([], None, "idle"),
    ([("a", "succeeded", "ann"), ("b", "failed", "ann"), ("c", "cancelled", "bob")], None, "idle"),
    ([("a", "running", "bob"), ("b", "succeeded", "ann")], "ann", "idle"),  # someone else trains
    ([("a", "running", "bob"), ("b", "queued", "ann")], "ann", "waiting"),
    ([("a", "running", "bob"), ("b", "interrupted", "ann")], "ann", "waiting"),  # waits to be resumed
    ([("a", "running", "ann"), ("b", "queued", "ann")], "ann", "running"),
    ([("a", "running", "bob"), ("b", "queued", "ann")], None, "running"),  # everyone's list
])
def test_a_list_refreshes_at_the_pace_of_its_own_jobs(jobs, owner, pace) -> None:  # noqa: ANN001
    listed = [job(i, state, n, owner=who) for n, (i, state, who) in enumerate(jobs)]
    assert liveliness(listed, owner) == pace
    # the listing the job list draws gives the same answer, or page run and refresh would disagree
    active = [j for j in listed if j.state in ("queued", "interrupted", "running")]
    shown = build_listing(active, [j for j in listed if j not in active], owner=owner)
    assert liveliness(shown.jobs) == pace


def test_queue_places_follow_priority_then_submission_and_count_other_owners() -> None:
    active = newest_first(job("a", "queued", 1, owner="x"), job("b", "queued", 2, owner="me"),
                          job("c", "queued", 3, owner="me", priority=5))
    assert queue_positions(active) == {"c": 1, "a": 2, "b": 3}
    mine = build_listing(active, [], owner="me")
    assert [(c.jobs[0].id, c.positions[0]) for c in mine.cards] == [("c", 1), ("b", 3)]
    assert mine.counts["queued"] == 3  # the sidebar counts the whole queue, as the places do
    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111)] == \
        ["1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st", "111th"]


def test_a_seed_group_is_one_card_ordered_by_seed_in_its_most_advanced_section() -> None:
    active = newest_first(job("s3", "queued", 3, group_id="g", seed=3), job("s2", "running", 2, group_id="g", seed=2),
                          job("other", "queued", 0.5))
    finished = [job("s1", "succeeded", 1, group_id="g", seed=1, finished=4)]
    listing = build_listing(active, finished)
    assert len(listing.cards) == 2
    group = listing.cards[0]
    assert group.section == "running" and group.group_id == "g" and group.key == "g"
    assert [j.id for j in group.jobs] == ["s1", "s2", "s3"]
    assert group.positions == (None, None, 2)
    assert listing.cards[1].jobs[0].id == "other" and listing.cards[1].group_id is None
    assert [j.id for j in listing.jobs] == ["s1", "s2", "s3", "other"]


def test_explain_jobs_say_what_they_explain() -> None:
    run = "/h/runs/r-abc123"
    assert explain_title({"op": "explain", "run": run, "value": "great film", "methods": ["ig", "occlusion"]}) \
        == 'IG + Occlusion on run r-abc123, text "great film"'
    assert explain_title({"op": "dataset", "run": run + "/", "n": 50}) \
        == "dataset view (IG) of run r-abc123, test set (50 examples)"
    assert explain_title({"op": "sanity", "run": run, "value": "/h/explain-inputs/s1/ab.png", "method": "saliency"}) \
        == "sanity check of Saliency on run r-abc123, an uploaded image"
    assert explain_title({"op": "compare", "run": run, "other": "/h/runs/r-2", "value": "/d/test/cat_1.jpg",
                          "method": "gradcam"}) == "GradCAM on runs r-abc123 and r-2, a test image"
    long = explain_title({"op": "explain", "run": run, "value": "word " * 30, "methods": ["new_method"]})
    assert long.startswith('new_method on run r-abc123, text "word word') and long.endswith('…"')


@pytest.mark.parametrize(("progress", "expected"), [
    ({"phase": "train", "step": 10, "total_steps": 100, "eta_s": 70}, 70),
    ({"phase": "train", "step": 99, "total_steps": 100, "eta_s": 0.01}, MIN_ETA_S),  # never "0 s"
    ({"phase": "train", "step": 99, "total_steps": 100, "eta_s": 0.0}, MIN_ETA_S),
    ({"phase": "train", "step": 100, "total_steps": 100, "eta_s": 0.0}, None),  # nothing left
    ({"phase": "train", "step": 5, "total_steps": 100}, None),  # no rate yet
    # feature caching: its own pace (100 examples in 10 s after the first report), not the stale
    # training ETA that the progress still carries
    ({"phase": "features:train", "phase_done": 300, "phase_total": 1300, "phase_done0": 200,
      "phase_started": 1000.0, "updated": 1010.0, "eta_s": 0.0}, 100.0),
    ({"phase": "features:train", "phase_done": 1299, "phase_total": 1300, "phase_done0": 0,
      "phase_started": 1000.0, "updated": 1100.0}, MIN_ETA_S),
    ({"phase": "features:train", "phase_done": 200, "phase_total": 1300, "phase_done0": 200,
      "phase_started": 1000.0, "updated": 1000.4}, None),  # only the first report so far
    ({"phase": "predict:test", "phase_done": 50, "phase_total": 50, "phase_done0": 0,
      "phase_started": 1.0, "updated": 2.0}, None),
    ({"phase": "features:train", "phase_done": 5, "phase_total": 50}, None),  # no timing (old worker)
    ({"phase": "finishing", "eta_s": 3}, None),
    (None, None),
])
def test_eta_rule(progress: dict | None, expected: float | None) -> None:
    assert eta_seconds(progress) == (pytest.approx(expected) if expected is not None else None)


def test_the_job_context_times_each_phase_for_its_eta(monkeypatch: pytest.MonkeyPatch) -> None:
    from core.jobs import context

    ctx = context.JobContext(store=None, job=Job(id="j", state="running", attempts=1))  # type: ignore[arg-type]
    clock = iter([100.0, 130.0])
    monkeypatch.setattr(context.time, "time", lambda: next(clock))
    ctx.on_phase(None, "features:train", 100, 1000)
    ctx.on_phase(None, "features:train", 400, 1000)  # same phase: its start is kept
    assert ctx.progress["phase_started"] == 100.0 and ctx.progress["phase_done0"] == 100
    assert eta_seconds({**ctx.progress, "updated": 130.0}) == pytest.approx(60.0)  # 300 per 30 s, 600 left
    ctx.on_phase(None, "features:validation", 10, 200)  # a new phase starts its own clock
    assert ctx.progress["phase_started"] == 130.0 and ctx.progress["phase_done0"] == 10
