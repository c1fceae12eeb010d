"""core.jobs.fairshare as pure functions: simulated traces of a shared slot (a heavy user does not
starve light ones), FIFO among equals, decay, share weights, running limits, priority first, the
limits table, the display order and the quota messages."""

from __future__ import annotations

import heapq
import math

import pytest

from core.errors import ConfigError
from core.jobs.fairshare import (
    CLASSROOM_LIMITS,
    DEFAULT_HALF_LIFE_S,
    UNLIMITED,
    Limits,
    LimitTable,
    Span,
    Waiting,
    check_limit,
    decayed_usage,
    fair_order,
    pick_from_spans,
    quota_problem,
    wall_clock_message,
    window_usage,
)

NO_LIMITS = LimitTable()


def simulate(submissions: list[tuple[float, str]], *, slots: int = 1, job_s: float = 60.0,
             limits: LimitTable = NO_LIMITS, priority: dict[int, int] | None = None) -> dict[str, float]:
    """Run a trace through `pick_from_spans`: (submit time, owner) per job, each job taking `job_s`
    on one of `slots`. Returns job id ("owner#n") -> start time."""
    priority = priority or {}
    counts: dict[str, int] = {}
    jobs = []
    for i, (at, owner) in enumerate(submissions):
        counts[owner] = counts.get(owner, 0) + 1
        jobs.append((at, Waiting(f"{owner}#{counts[owner]}", owner, priority.get(i, 0), seq=i)))
    spans: list[Span] = []
    ends: list[float] = []  # heap of end times of running jobs
    started: dict[str, float] = {}
    now = 0.0
    while len(started) < len(jobs):
        while ends and ends[0] <= now:
            heapq.heappop(ends)
        live = [Span(s.owner, s.started, s.ended if s.ended <= now else None) for s in spans]  # type: ignore[operator]
        waiting = [w for at, w in jobs if at <= now and w.id not in started]
        pick = pick_from_spans(waiting, live, now, limits) if len(ends) < slots else None
        if pick is not None:
            started[pick.id] = now
            spans.append(Span(pick.owner, now, now + job_s))
            heapq.heappush(ends, now + job_s)
            continue
        future = [at for at, w in jobs if at > now]
        now = min([*ends, *future])
    return started


def test_light_users_start_before_the_heavy_users_third_job() -> None:
    trace = [(0.0, "heavy")] * 20 + [(1.0, "light1")] * 2 + [(2.0, "light2")] * 2
    start = simulate(trace)
    light = [start[f"{u}#{n}"] for u in ("light1", "light2") for n in (1, 2)]
    assert max(light) < start["heavy#3"]
    assert start["heavy#1"] == 0.0  # alone in the queue, the heavy user is not held back
    # plain FIFO would have made the light users wait for all 20 heavy jobs
    assert max(light) <= 5 * 60.0


def test_fifo_among_equals_and_within_an_owner() -> None:
    start = simulate([(0.0, "a"), (0.0, "b"), (0.0, "a"), (0.0, "c"), (0.0, "b")])
    order = sorted(start, key=start.get)
    # a, b, c each once in submission order (all at zero use), then the seconds in the same order
    assert order == ["a#1", "b#1", "c#1", "a#2", "b#2"]
    one_owner = simulate([(0.0, "solo")] * 4)
    assert sorted(one_owner, key=one_owner.get) == ["solo#1", "solo#2", "solo#3", "solo#4"]


def test_usage_decays_by_half_each_half_life() -> None:
    h = DEFAULT_HALF_LIFE_S
    now = 10 * h
    fresh = decayed_usage([Span("a", now - 60, now)], now)["a"]
    old = decayed_usage([Span("a", now - h - 60, now - h)], now)["a"]
    assert fresh == pytest.approx(h / math.log(2) * (1 - 2 ** (-60 / h)), rel=1e-9) and 59.8 < fresh < 60
    assert old == pytest.approx(fresh / 2, rel=1e-9)
    # a running span counts up to now
    assert decayed_usage([Span("a", now - 60)], now)["a"] == pytest.approx(fresh)
    # an hour of use nine hours ago weighs less than ten minutes just now
    spans = [Span("heavy", 0, 3600), Span("light", now - 600, now)]
    pick = pick_from_spans([Waiting("h", "heavy", seq=0), Waiting("l", "light", seq=1)], spans, now, NO_LIMITS)
    assert pick is not None and pick.id == "h"


def test_share_weight_two_halves_the_usage() -> None:
    now = 1000.0
    spans = [Span("teacher", 0, 100), Span("student", 0, 60)]
    waiting = [Waiting("t", "teacher", seq=0), Waiting("s", "student", seq=1)]
    equal = pick_from_spans(waiting, spans, now, NO_LIMITS)
    assert equal is not None and equal.id == "s"  # 60 s used is less than 100 s
    weighted = LimitTable((("teacher", "share_weight", 2.0),))
    pick = pick_from_spans(waiting, spans, now, weighted)
    assert pick is not None and pick.id == "t"  # 100 s / 2 = 50 s is less than 60 s
    # over a trace: with weight 2 the teacher gets about two slots for each of a student's
    start = simulate([(0.0, "teacher")] * 6 + [(0.0, "student")] * 6, limits=weighted)
    first6 = sorted(start, key=start.get)[:6]
    assert sum(j.startswith("teacher") for j in first6) == 4


def test_an_owner_at_the_running_limit_is_skipped() -> None:
    limits = LimitTable((("*", "max_running", 1.0),))
    spans = [Span("a", 0, None)]  # a runs one job already
    waiting = [Waiting("a2", "a", priority=9, seq=0), Waiting("b1", "b", seq=1)]
    pick = pick_from_spans(waiting, spans, 10.0, limits)
    assert pick is not None and pick.id == "b1"
    assert pick_from_spans(waiting[:1], spans, 10.0, limits) is None  # only a waits: nothing to start
    # two slots, one job each at a time: a never holds both
    start = simulate([(0.0, "a")] * 3 + [(5.0, "b")], slots=2, limits=limits)
    assert start == {"a#1": 0.0, "a#2": 60.0, "b#1": 5.0, "a#3": 120.0}
    # an owner's own row wins over the default
    roomy = LimitTable((("*", "max_running", 1.0), ("a", "max_running", 2.0)))
    pick = pick_from_spans(waiting, spans, 10.0, roomy)
    assert pick is not None and pick.id == "a2"


def test_priority_ranks_first() -> None:
    spans = [Span("heavy", 0, 5000)]
    waiting = [Waiting("l", "light", seq=0), Waiting("h", "heavy", priority=1, seq=1)]
    pick = pick_from_spans(waiting, spans, 6000.0, NO_LIMITS)
    assert pick is not None and pick.id == "h"
    start = simulate([(0.0, "x"), (0.0, "x"), (0.0, "y")], priority={1: 5})
    assert sorted(start, key=start.get) == ["x#2", "y#1", "x#1"]


def test_no_owner_is_one_pseudo_owner() -> None:
    spans = [Span("", 0, 100)]
    pick = pick_from_spans([Waiting("n", "", seq=0), Waiting("o", "someone", seq=1)], spans, 100.0, NO_LIMITS)
    assert pick is not None and pick.id == "o"


def test_the_limits_table_resolves_owner_rows_over_the_default() -> None:
    table = LimitTable((("*", "max_running", 1.0), ("*", "max_queued", 10.0), ("prof", "max_queued", None),
                        ("prof", "share_weight", 2.0), ("*", "no_such_key", 3.0), ("*", "share_weight", 0.0)))
    assert table.for_owner("student") == Limits(max_running=1, max_queued=10)  # bad rows are ignored
    assert table.for_owner("prof") == Limits(max_running=1, max_queued=None, share_weight=2.0)
    assert LimitTable().for_owner("x") == UNLIMITED
    assert isinstance(table.for_owner("s").max_running, int)
    assert Limits(1, 10, 2.0, 7200.0, 1.0) == CLASSROOM_LIMITS
    assert check_limit("max_queued", 4) == 4.0 and check_limit("max_running", None) is None
    for key, value, words in (("nope", 1, "no limit called"), ("max_running", 1.5, "whole number"),
                              ("share_weight", 0, "above 0"), ("share_weight", None, "cannot be unlimited"),
                              ("gpu_hours_per_day", -1, "negative"), ("job_wall_clock_s", "x", "number"),
                              ("job_wall_clock_s", math.inf, "finite")):
        with pytest.raises(ConfigError, match=words):
            check_limit(key, value)


def test_window_usage_counts_the_last_day_only() -> None:
    day = 24 * 3600.0
    now = 3 * day
    spans = [Span("a", now - day - 100, now - day + 50), Span("a", now - 10), Span("b", 0, 10)]
    assert window_usage(spans, now) == {"a": pytest.approx(60.0)}


def test_fair_order_interleaves_owners_and_gives_expected_starts() -> None:
    now = 1000.0
    spans = [Span("heavy", now - 30, None, left_s=30.0)]
    waiting = [Waiting(f"h{i}", "heavy", seq=i, duration_s=60.0) for i in range(4)]
    waiting += [Waiting("l1", "light", seq=10, duration_s=60.0), Waiting("l2", "light", seq=11, duration_s=60.0)]
    order = fair_order(waiting, spans, now, NO_LIMITS)
    assert [p.job_id for p in order][:3] == ["l1", "h0", "l2"]
    assert [p.place for p in order] == list(range(1, 7))
    assert [p.expected_start_s for p in order] == [30.0, 90.0, 150.0, 210.0, 270.0, 330.0]
    # two slots: the second starts at once
    two = fair_order(waiting, spans, now, NO_LIMITS, slots=2)
    assert two[0].expected_start_s == 0.0 and two[1].expected_start_s == 30.0


def test_fair_order_without_estimates_keeps_the_order_and_drops_the_times() -> None:
    waiting = [Waiting("h1", "heavy", seq=0), Waiting("h2", "heavy", seq=1), Waiting("l1", "light", seq=2)]
    order = fair_order(waiting, [], 0.0, NO_LIMITS)
    assert [p.job_id for p in order] == ["h1", "l1", "h2"]
    assert [p.expected_start_s for p in order] == [0.0, None, None]


def test_fair_order_puts_jobs_that_may_never_start_last() -> None:
    limits = LimitTable((("blocked", "max_running", 0.0),))
    waiting = [Waiting("b", "blocked", seq=0), Waiting("o", "other", seq=1, duration_s=5.0)]
    order = fair_order(waiting, [], 0.0, limits)
    assert [(p.job_id, p.expected_start_s) for p in order] == [("o", 0.0), ("b", None)]


def test_quota_messages_say_the_limit_the_count_and_what_to_do() -> None:
    lim = CLASSROOM_LIMITS
    assert quota_problem("ana", adding=1, waiting=9, used_today_s=0, limits=lim) is None
    full = quota_problem("ana", adding=2, waiting=9, used_today_s=0, limits=lim)
    assert full is not None and "9 jobs waiting" in full and "limit is 10" in full
    assert "cancel one" in full and "instructor" in full and "nothing was" in full
    big = quota_problem("ana", adding=11, waiting=0, used_today_s=0, limits=lim)
    assert big is not None and "11 jobs" in big and "fewer" in big
    spent = quota_problem("ana", adding=1, waiting=0, used_today_s=2.5 * 3600, limits=lim)
    assert spent is not None and "2.5 GPU hours" in spent and "2 GPU hours a day" in spent and "instructor" in spent
    assert quota_problem("ana", adding=100, waiting=50, used_today_s=1e9, limits=UNLIMITED) is None
    assert wall_clock_message(7200) == ("Stopped: it ran longer than the 2 h limit per job; its last checkpoint "
                                        "is kept.")
    assert wall_clock_message(2) == "Stopped: it ran longer than the 2 s limit per job; its last checkpoint is kept."
