"""The job list as people read it: one snapshot of the store ordered into cards (running, then queued
with their place in the queue, then finished newest first; a seed group is one card), the counts the
sidebar shows (taken from the same snapshot, so the two never disagree) and the ETA rule of a
running job's progress. What an explain job explains is said by core.explain.jobs.explain_title.

Queue places follow the order the workers will claim in (`core.jobs.fairshare.fair_order`: priority,
then fair share between owners, FIFO among equals), not plain submission order; `queue_places` gives
one owner their places and expected starts, from the durations of finished or running jobs of the
same seed group or, failing that, of the owner's recent jobs of the same kind.

Pure functions over `Job` records, plus `snapshot` and `queue_places` (reads of the store).
May import: core.jobs.store, core.jobs.fairshare, the standard library; no feature.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import time
from collections.abc import Mapping, Sequence
from typing import Any

from core.jobs.fairshare import USAGE_WINDOW_S, LimitTable, Place, Span, Waiting, fair_order
from core.jobs.store import CLAIMABLE, FINAL_STATES, STALE_AFTER_S, Job, JobStore

SECTIONS = ("running", "queued", "finished")
ACTIVE_STATES = ("queued", "interrupted", "running")  # what the list shows of every owner
MIN_ETA_S = 1.0  # work remains: the ETA says at least this, never "0 s"


@dataclasses.dataclass(frozen=True)
class Card:
    """One card of the list: a single job, or every listed job of one seed group."""

    section: str  # one of SECTIONS
    jobs: tuple[Job, ...]  # a group's jobs by seed (then by submission)
    positions: tuple[int | None, ...]  # 1-based place in the worker queue of each job (None: not waiting)
    # seconds from the snapshot until each job is expected to start (None: not waiting, or not known)
    starts: tuple[float | None, ...] = ()

    @property
    def group_id(self) -> str | None:
        return self.jobs[0].group_id if len(self.jobs) > 1 else None

    @property
    def key(self) -> str:
        return self.group_id or self.jobs[0].id


@dataclasses.dataclass(frozen=True)
class Listing:
    cards: tuple[Card, ...]
    counts: dict[str, int]  # state -> jobs in that state among the active jobs of every owner

    @property
    def jobs(self) -> list[Job]:
        return [j for c in self.cards for j in c.jobs]


def section_of(state: str) -> str:
    if state == "running":
        return "running"
    if state in CLAIMABLE:
        return "queued"
    return "finished"


@dataclasses.dataclass(frozen=True)
class QueueState:
    """What the fair order needs besides the active jobs (all of it from one read of the store)."""

    history: tuple[Span, ...] = ()   # finished attempts of the usage window (running ones come from `active`)
    limits: LimitTable = LimitTable()
    now: float | None = None         # None: the newest time among the active jobs
    slots: int = 1                   # worker slots serving the queue
    done: tuple[Job, ...] = ()       # recent succeeded jobs: how long a job of a kind takes


def _ran_for(job: Job) -> float | None:
    if job.state == "succeeded" and job.started and job.finished and job.finished >= job.started:
        return job.finished - job.started
    return None


def expected_durations(active: Sequence[Job], done: Sequence[Job], now: float) -> dict[str, float]:
    """job id -> expected run time of each waiting job: what its seed group's jobs took (a running one:
    elapsed plus its ETA), else the median of its owner's recent succeeded jobs of the same kind."""
    by_group: dict[str, list[float]] = {}
    by_kind: dict[tuple[str, str], list[float]] = {}
    for j in [*done, *active]:
        took = _ran_for(j)
        if took is None and j.state == "running" and j.started:
            eta = eta_seconds(j.progress)
            took = None if eta is None else max(0.0, now - j.started) + eta
        if took is None:
            continue
        if j.group_id:
            by_group.setdefault(j.group_id, []).append(took)
        if j.state == "succeeded":
            by_kind.setdefault((j.owner, j.kind), []).append(took)
    out = {}
    for j in active:
        if j.state not in CLAIMABLE:
            continue
        seen = by_group.get(j.group_id or "") or by_kind.get((j.owner, j.kind))
        if seen:
            out[j.id] = statistics.median(seen)
    return out


def fair_places(active: Sequence[Job], state: QueueState | None = None) -> list[Place]:
    """The waiting jobs of `active` (newest first, as the store lists them) in the order the workers
    will claim them, with expected starts (see `core.jobs.fairshare.fair_order`)."""
    state = state or QueueState()
    jobs = list(active)
    now = state.now if state.now is not None else max(
        [float(j.started or j.created or 0.0) for j in jobs] or [0.0])
    durations = expected_durations(jobs, state.done, now)
    waiting = [Waiting(j.id, j.owner, j.priority, float(i), durations.get(j.id))
               for i, j in enumerate(reversed(jobs)) if j.state in CLAIMABLE]
    running = [Span(j.owner, float(j.started or now), None, left_s=eta_seconds(j.progress))
               for j in jobs if j.state == "running"]
    return fair_order(waiting, [*state.history, *running], now, state.limits, slots=state.slots)


def queue_positions(active: Sequence[Job], state: QueueState | None = None) -> dict[str, int]:
    """job id -> 1-based place in the order a worker claims waiting jobs (priority, then fair share
    between owners, then submission). `active` comes newest first (as the store lists it)."""
    return {p.job_id: p.place for p in fair_places(active, state)}


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, 11th, 12th, 13th, 21st …"""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _seed(job: Job) -> int:
    train = (job.config or {}).get("train") or {}
    try:
        return int(train.get("seed") or 0)
    except (TypeError, ValueError):
        return 0


def _finished_at(job: Job) -> float:
    return float(job.finished or job.updated or job.created or 0.0)


def build_listing(active: Sequence[Job], finished: Sequence[Job], *, owner: str | None = None,
                  queue: QueueState | None = None) -> Listing:
    """Cards of `active` (queued, interrupted, running; every owner, newest first) and `finished` jobs.

    Queue places are counted over every owner's waiting jobs (that is the queue the worker takes
    from); only `owner`'s jobs are shown when `owner` is given. The counts cover every owner's active
    jobs. A seed group's card sits where its most advanced job would (running before queued before
    finished); a finished group sorts by its newest finish."""
    counts: dict[str, int] = {}
    for j in active:
        counts[j.state] = counts.get(j.state, 0) + 1
    places = {p.job_id: p for p in fair_places(active, queue)}
    positions = {k: p.place for k, p in places.items()}
    shown = [j for j in [*active, *finished] if owner is None or j.owner == owner]
    seen: set[str] = set()
    groups: dict[str, list[Job]] = {}
    order: list[str] = []
    for j in shown:
        if j.id in seen:
            continue
        seen.add(j.id)
        key = f"g:{j.group_id}" if j.group_id else f"j:{j.id}"
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(j)
    cards: list[Card] = []
    for key in order:
        members = sorted(groups[key], key=lambda j: (_seed(j), j.created))
        section = min((section_of(j.state) for j in members), key=SECTIONS.index)
        cards.append(Card(section, tuple(members), tuple(positions.get(j.id) for j in members),
                          tuple(places[j.id].expected_start_s if j.id in places else None for j in members)))

    def sort_key(card: Card) -> tuple[float, ...]:
        rank = SECTIONS.index(card.section)
        if card.section == "queued":
            first = min(p for p in card.positions if p is not None)
            return (rank, float(first))
        if card.section == "running":
            return (rank, -max(float(j.started or j.created or 0.0) for j in card.jobs))
        return (rank, -max(_finished_at(j) for j in card.jobs))

    cards.sort(key=sort_key)
    return Listing(tuple(cards), counts)


def queue_state(store: JobStore, now: float | None = None) -> QueueState:
    """The usage, limits, slots and recent run times the fair order needs, read from `store`."""
    now = time.time() if now is None else now
    history = tuple(s for s in store.usage_spans(now - USAGE_WINDOW_S) if s.ended is not None)
    live = [w for w in store.workers() if now - (w.get("heartbeat") or 0) <= STALE_AFTER_S]
    slots = sum(len(w.get("slots") or [None]) for w in live) or 1
    done = tuple(store.list(state="succeeded", limit=200))
    return QueueState(history, store.get_limits(), now, slots, done)


def snapshot(store: JobStore, *, owner: str | None = None, limit: int = 20) -> Listing:
    """The listing the job list and the sidebar show: every active job (all owners, for the queue
    places and the counts) and the newest `limit` finished ones (only `owner`'s when given)."""
    active = store.list(state=ACTIVE_STATES, limit=None)
    finished = store.list(state=FINAL_STATES, owner=owner, limit=limit)
    return build_listing(active, finished, owner=owner, queue=queue_state(store))


def liveliness(jobs: Sequence[Job], owner: str | None = None) -> str:
    """How fast a view of `jobs` (only `owner`'s when given) changes: "running" when one of them runs
    (its bar and curve move), "waiting" when one waits in the queue (its place and expected start
    move only when another job starts or ends), "idle" otherwise. A job list refreshes at that pace."""
    states = {j.state for j in jobs if owner is None or j.owner == owner}
    if "running" in states:
        return "running"
    if states & set(CLAIMABLE):
        return "waiting"
    return "idle"


def active_liveliness(store: JobStore, owner: str | None = None) -> str:
    """`liveliness` of the active jobs in `store`: what a job list of `owner`'s jobs would show."""
    return liveliness(store.list(state=ACTIVE_STATES, limit=None), owner)


def queue_places(store: JobStore, owner: str | None = None) -> list[tuple[str, int, float | None]]:
    """(job id, 1-based place in the whole queue, expected start in seconds from now or None) of each
    waiting job of `owner` (every owner's when None), in the order the workers will claim them."""
    active = store.list(state=ACTIVE_STATES, limit=None)
    return [(p.job_id, p.place, p.expected_start_s) for p in fair_places(active, queue_state(store))
            if owner is None or p.owner == (owner or "")]


def running_and_queued(counts: Mapping[str, int]) -> tuple[int, int]:
    """(running, waiting) jobs of a state -> count table; interrupted jobs wait in the queue too, as
    the list shows them."""
    return int(counts.get("running", 0)), int(counts.get("queued", 0)) + int(counts.get("interrupted", 0))


def counts_text(counts: Mapping[str, int]) -> str | None:
    """'Jobs: 1 running, 2 queued', or None when nothing runs or waits."""
    running, queued = running_and_queued(counts)
    if not (running or queued):
        return None
    return f"Jobs: {running} running, {queued} queued"


# -- what an explain job explains ------------------------------------------------------------------

# -- ETA -------------------------------------------------------------------------------------------

# A head step trains a linear layer on cached features, so before the first step its cost is guessed
# from the caching pace: this share of what caching one step's examples took. Measured on CPU (tiny
# BERTs, bench/record_train_timings.py) a head step cost 0.15 to 1 times that; on a GPU with a real
# backbone caching dominates and the guess matters little.
HEAD_STEP_PRIOR = 0.35


def eta_seconds(progress: Mapping[str, Any] | None) -> float | None:
    """Seconds left in a running job, or None when not known yet.

    A train job that reports its plan (`eta_plan`: split sizes, steps per epoch, whether a frozen
    backbone's features are cached) and its timed work (`eta_work`: seconds and units per kind) gets
    the whole job: the training steps, feature caching and evaluations still to come, each priced at
    this attempt's own pace (`train_job_eta`). Otherwise (another job kind, an older worker) a counted
    phase (`phase_done`/`phase_total`) is timed from its own pace since it began (`phase_started`,
    `phase_done0`, `updated`), and training from the engine's step-rate ETA (`eta_s`). While work
    remains the answer is at least MIN_ETA_S, so it never reads "0 s"."""
    p = dict(progress or {})
    phase = str(p.get("phase") or "")
    if p.get("eta_plan") and phase not in ("succeeded", "failed", "cancelled", "interrupted"):
        eta = train_job_eta(p)
        return None if eta is None else max(MIN_ETA_S, eta)
    if phase == "train" and p.get("total_steps"):
        left = _num(p.get("total_steps")) - _num(p.get("step"))
        eta = p.get("eta_s")
        if left <= 0 or eta is None:
            return None
        return max(MIN_ETA_S, _num(eta))
    if p.get("phase_total"):
        total, done = _num(p.get("phase_total")), _num(p.get("phase_done"))
        done0 = _num(p.get("phase_done0"))
        started, now = p.get("phase_started"), p.get("updated")
        if done >= total or started is None or now is None:
            return None
        elapsed = _num(now) - _num(started)
        if done <= done0 or elapsed <= 0:
            return None
        rate = (done - done0) / elapsed
        return max(MIN_ETA_S, (total - done) / rate)
    return None


def train_job_eta(p: Mapping[str, Any]) -> float | None:
    """Seconds of work left in a train job by its plan and timed work (see `eta_seconds`), or None
    while a pace it needs has not been measured. After the last counted work (the test predictions)
    only saving is left: 0 here, MIN_ETA_S as shown.

    The job runs: [caching features of train, validation] -> steps, with an evaluation of the
    validation split after each epoch -> predictions on test (for a cached backbone, caching the
    test features). Cached features make the evaluations nearly free; caching is what costs."""
    plan = p.get("eta_plan") or {}
    sizes = {k: int(_num(v)) for k, v in (plan.get("sizes") or {}).items()}
    # A pass over a split is counted in the engine's token cost where the plan has it (`costs`: the splits
    # encoded when training starts; the test split by their mean per example), else in examples.
    costs = {k: _num(v) for k, v in (plan.get("costs") or {}).items() if sizes.get(k)}
    per_example = sum(costs.values()) / sum(sizes[k] for k in costs) if costs else 1.0
    cost = {k: costs.get(k, per_example * n) for k, n in sizes.items()}
    n_val, n_test = cost.get("validation", 0.0), cost.get("test", 0.0)
    cached = bool(plan.get("feature_cache"))
    total, step = int(_num(p.get("total_steps"))), int(_num(p.get("step")))
    per_epoch = int(_num(plan.get("steps_per_epoch"))) or total or 1
    per_step = max(1, int(_num(plan.get("samples_per_step"))))
    phase = str(p.get("phase") or "")
    split = phase.split(":", 1)[1] if ":" in phase else ""
    done_total = p.get("eta_phase_work") or [_num(p.get("phase_done")) * per_example,
                                             _num(p.get("phase_total")) * per_example]
    left_in_phase = max(0.0, _num(done_total[1]) - _num(done_total[0])) if split else 0.0
    steps_left = max(0, total - step)
    after_training = phase == "finishing" or split == "test" or (total > 0 and step >= total and phase == "train")

    # examples still to go through the backbone: cached once each (cached), or predicted (not cached)
    if cached:
        order = ["train", "validation", "test"]
        if split in order:
            todo = left_in_phase + sum(cost.get(s, 0.0) for s in order[order.index(split) + 1:])
        elif after_training or step > 0:
            todo = n_test
        else:  # not started caching yet
            todo = sum(cost.get(s, 0.0) for s in order)
        evals = 0.0
    else:
        todo = 0.0
        evals_planned = math.ceil(total / per_epoch) if total else 0
        if split == "test":
            evals = left_in_phase
        elif after_training and phase != "train":
            evals = n_test
        elif split == "validation":
            evals = left_in_phase + (evals_planned - math.ceil(step / per_epoch)) * n_val + n_test
        else:  # the evaluation after step s is still to come when s ends an epoch
            evals = (evals_planned - (max(0, step - 1) // per_epoch)) * n_val + n_test

    work = p.get("eta_work") or {}

    def pace(kind: str) -> float | None:
        seconds, units = (list(work.get(kind) or []) + [0, 0])[:2]
        return _num(seconds) / _num(units) if _num(units) > 0 and _num(seconds) > 0 else None

    step_s, cache_s, predict_s = pace("train"), pace("features"), pace("predict")
    if todo and cache_s is None:
        return None
    if steps_left and step_s is None:
        if not (cached and cache_s is not None):
            return None
        step_s = HEAD_STEP_PRIOR * per_step * per_example * cache_s
    if evals and predict_s is None:
        if step_s is None:
            return None
        # a forward pass costs at most what a training step spends per example
        predict_s = step_s / (per_step * per_example)
    return todo * (cache_s or 0.0) + steps_left * (step_s or 0.0) + evals * (predict_s or 0.0)


def _num(x: Any) -> float:
    try:
        return float(x or 0)
    except (TypeError, ValueError):
        return 0.0
