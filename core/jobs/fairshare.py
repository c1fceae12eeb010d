"""Fair share of the worker slots: which waiting job goes next, the per-owner limits, and the queue
order the Train page shows. Pure functions over small records: no SQL, no I/O, no clock (the caller
passes `now`), so the rules can be tested on simulated traces.

The rule a claim follows (`pick_next`):

1. explicit job priority first (a higher `priority` wins, as it always has);
2. then the owner with the least *weighted decayed usage*: every second a job of theirs held a slot
   counts, decayed exponentially with a half-life (`DEFAULT_HALF_LIFE_S`, one class session), and
   divided by the owner's `share_weight` (an instructor with weight 2 has their usage count half);
3. FIFO among owners with equal usage, and within one owner.

An owner at their `max_running` limit is skipped. Jobs without an owner all belong to one pseudo-owner
(`""`). `fair_order` simulates successive picks to order the whole waiting queue for display, with the
expected start of each job where the durations are known.

The limits (`Limits`, one per owner) come from a small table of rows (owner or `"*"` for everyone,
key, value; `LimitTable`): a row naming an owner wins over the `"*"` row. Nothing is limited until a
row says so; `CLASSROOM_LIMITS` are the values that fit about 30 students on one GPU.

May import: core.errors and the standard library; nothing else in core.jobs (the store imports this).
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from core.errors import ConfigError

DEFAULT_HALF_LIFE_S = 2 * 3600.0  # one class session: yesterday's heavy use barely counts today
# Usage older than this is not read at all: after 12 half-lives it weighs 1/4096 of fresh use, and the
# daily quota looks back exactly this far.
USAGE_WINDOW_S = 24 * 3600.0
# A job with no duration estimate is simulated as taking this long, so the shown order still
# interleaves owners the way claims will (its expected start is then not shown).
NOMINAL_JOB_S = 600.0
EVERYONE = "*"  # the owner of the rows that hold everyone's default

# Keys of the limits table. Counts are whole numbers; None means no limit.
LIMIT_KEYS = ("max_running", "max_queued", "gpu_hours_per_day", "job_wall_clock_s", "share_weight")
_WHOLE = ("max_running", "max_queued")


@dataclasses.dataclass(frozen=True)
class Limits:
    """What one owner may use. None: no limit."""

    max_running: int | None = None       # jobs of theirs running at once
    max_queued: int | None = None        # jobs of theirs waiting (queued or waiting to resume)
    gpu_hours_per_day: float | None = None  # slot time in the last 24 h above which submits are refused
    job_wall_clock_s: float | None = None   # one attempt of a job is stopped after this long
    share_weight: float = 1.0            # their usage counts 1/weight when the next job is picked


UNLIMITED = Limits()
# About 30 students on one GPU: one job each at a time, a short queue each, two GPU hours a day, and no
# job longer than a class session.
CLASSROOM_LIMITS = Limits(max_running=1, max_queued=10, gpu_hours_per_day=2.0, job_wall_clock_s=2 * 3600.0,
                          share_weight=1.0)


def check_limit(key: str, value: float | None) -> float | None:
    """The value to store for a limit row, or a ConfigError saying what is wrong."""
    if key not in LIMIT_KEYS:
        raise ConfigError(f"There is no limit called {key!r}; the limits are {', '.join(LIMIT_KEYS)}.")
    if value is None:
        if key == "share_weight":
            raise ConfigError("The share weight cannot be unlimited; give a number above 0 (1 is an equal share).")
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"The limit {key} must be a number, got {value!r}.") from None
    if not math.isfinite(number):
        raise ConfigError(f"The limit {key} must be a finite number, got {value!r}; leave it unset for no limit.")
    if key == "share_weight" and number <= 0:
        raise ConfigError(f"The share weight must be above 0 (1 is an equal share), got {value!r}.")
    if number < 0:
        raise ConfigError(f"The limit {key} cannot be negative, got {value!r}.")
    if key in _WHOLE and number != int(number):
        raise ConfigError(f"The limit {key} counts jobs, so it must be a whole number; got {value!r}.")
    return number


def _valid(key: str, value: float | None) -> bool:
    # A row written around `check_limit` (by hand, or by a newer version) is ignored rather than let
    # it break every claim.
    try:
        check_limit(key, value)
    except ConfigError:
        return False
    return True


def owner_key(owner: str | None) -> str:
    """Jobs without an owner share one pseudo-owner."""
    return owner or ""


@dataclasses.dataclass(frozen=True)
class LimitTable:
    """The rows of the limits table: (owner or EVERYONE, key, value or None for no limit)."""

    rows: tuple[tuple[str, str, float | None], ...] = ()

    def for_owner(self, owner: str | None) -> Limits:
        values: dict[str, float | None] = {}
        for who in (EVERYONE, owner_key(owner)):  # the owner's own rows win
            for o, k, v in self.rows:
                if o == who and _valid(k, v):
                    values[k] = v
        fields = {k: (None if v is None else int(v) if k in _WHOLE else float(v)) for k, v in values.items()}
        return dataclasses.replace(UNLIMITED, **fields)


# --------------------------------------------------------------------------------------------------
# Usage
# --------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Span:
    """One attempt of a job on a worker slot."""

    owner: str
    started: float
    ended: float | None = None   # None: still running (counts up to `now`)
    left_s: float | None = None  # a running one's expected seconds to go (only `fair_order` reads it)


def _decayed(started: float, ended: float | None, now: float, half_life_s: float) -> float:
    end = now if ended is None else min(ended, now)
    start = min(started, end)
    if end <= start:
        return 0.0
    # Each second at time t weighs 2^-((now - t) / half-life); this is the integral over the span.
    rate = math.log(2) / half_life_s
    return (math.exp(-rate * (now - end)) - math.exp(-rate * (now - start))) / rate


def decayed_usage(spans: Iterable[Span], now: float, half_life_s: float = DEFAULT_HALF_LIFE_S) -> dict[str, float]:
    """owner -> seconds of slot time, each second decayed by its age with `half_life_s`."""
    out: dict[str, float] = {}
    for s in spans:
        used = _decayed(s.started, s.ended, now, half_life_s)
        if used:
            out[owner_key(s.owner)] = out.get(owner_key(s.owner), 0.0) + used
    return out


def window_usage(spans: Iterable[Span], now: float, window_s: float = USAGE_WINDOW_S) -> dict[str, float]:
    """owner -> plain seconds of slot time within the last `window_s` (the daily quota's count)."""
    out: dict[str, float] = {}
    for s in spans:
        end = now if s.ended is None else min(s.ended, now)
        used = max(0.0, end - max(s.started, now - window_s))
        if used:
            out[owner_key(s.owner)] = out.get(owner_key(s.owner), 0.0) + used
    return out


def running_counts(spans: Iterable[Span]) -> dict[str, int]:
    """owner -> spans still running."""
    return dict(Counter(owner_key(s.owner) for s in spans if s.ended is None))


# --------------------------------------------------------------------------------------------------
# Picking the next job
# --------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Waiting:
    """A claimable job as the scheduler sees it."""

    id: str
    owner: str
    priority: int = 0
    seq: float = 0.0                 # submission order: lower is earlier
    duration_s: float | None = None  # expected run time (only `fair_order` reads it)


def pick_next(waiting: Iterable[Waiting], usage: Mapping[str, float], running: Mapping[str, int],
              limits: LimitTable) -> Waiting | None:
    """The job to start next (see the module docstring), or None when every owner who waits is at
    their running limit (or nothing waits)."""
    best, best_key = None, None
    cache: dict[str, Limits] = {}
    for w in waiting:
        owner = owner_key(w.owner)
        if owner not in cache:
            cache[owner] = limits.for_owner(owner)
        lim = cache[owner]
        if lim.max_running is not None and running.get(owner, 0) >= lim.max_running:
            continue
        # Rounded so that float noise does not break FIFO between owners whose usage is the same.
        key = (-w.priority, round(usage.get(owner, 0.0) / lim.share_weight, 6), w.seq)
        if best_key is None or key < best_key:
            best, best_key = w, key
    return best


def pick_from_spans(waiting: Iterable[Waiting], spans: Sequence[Span], now: float, limits: LimitTable,
                    half_life_s: float = DEFAULT_HALF_LIFE_S) -> Waiting | None:
    """`pick_next` with the usage and running counts taken from the recent spans (what a claim does)."""
    return pick_next(waiting, decayed_usage(spans, now, half_life_s), running_counts(spans), limits)


@dataclasses.dataclass(frozen=True)
class Place:
    job_id: str
    owner: str
    place: int                        # 1-based, in the order jobs are expected to start
    expected_start_s: float | None    # seconds from `now`; None where an unknown duration comes first


@dataclasses.dataclass
class _Busy:
    end: float   # seconds from now
    owner: str
    known: bool  # whether `end` comes from an estimate (else NOMINAL_JOB_S stood in)


def fair_order(waiting: Sequence[Waiting], spans: Sequence[Span], now: float, limits: LimitTable, *,
               slots: int = 1, half_life_s: float = DEFAULT_HALF_LIFE_S,
               nominal_s: float = NOMINAL_JOB_S) -> list[Place]:
    """Every waiting job in the order successive claims would start it, with its expected start.

    Simulates `slots` worker slots: the running spans end after their `left_s`, each started job holds
    its slot for its `duration_s`, and each pick is `pick_next` on the usage at that moment. Unknown
    durations are simulated as `nominal_s` so the order still interleaves owners; the expected start
    of every job after the first such guess ends is None. Jobs that can never start here (their owner
    may run none) come last, without a start."""
    slots = max(1, int(slots))
    sim = [s if s.ended is not None else dataclasses.replace(s, ended=now + (s.left_s if s.left_s is not None
                                                                              else nominal_s))
           for s in spans]
    busy = [_Busy(s.left_s if s.left_s is not None else nominal_s, owner_key(s.owner), s.left_s is not None)
            for s in spans if s.ended is None]
    pending = list(waiting)
    out: list[Place] = []
    t, exact = 0.0, True
    while pending:
        if len(busy) < slots:
            at = now + t
            # Spans that end before `at` count fully; `_decayed` clips the others at `at`.
            running = Counter(b.owner for b in busy)
            pick = pick_next(pending, decayed_usage(sim, at, half_life_s), running, limits)
            if pick is not None:
                pending.remove(pick)
                known = pick.duration_s is not None
                took = float(pick.duration_s) if known else nominal_s  # type: ignore[arg-type]
                out.append(Place(pick.id, owner_key(pick.owner), len(out) + 1, t if exact else None))
                busy.append(_Busy(t + took, owner_key(pick.owner), known))
                sim.append(Span(owner_key(pick.owner), at, at + took))
                continue
        if not busy:  # nothing runs and nobody waiting may start: their owners may run no job at all
            for w in sorted(pending, key=lambda w: (-w.priority, w.seq)):
                out.append(Place(w.id, owner_key(w.owner), len(out) + 1, None))
            break
        first = min(busy, key=lambda b: b.end)
        busy.remove(first)
        t = max(t, first.end)
        exact = exact and first.known
    return out


# --------------------------------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------------------------------


def duration_text(seconds: float) -> str:
    """'2 s', '45 min', '2 h', '1.5 h'."""
    if seconds < 120:
        return f"{seconds:g} s"
    if seconds < 2 * 3600:
        return f"{round(seconds / 60):g} min"
    return f"{round(seconds / 3600, 1):g} h"


def hours_text(hours: float) -> str:
    return f"{round(hours, 2):g} GPU hour{'' if round(hours, 2) == 1 else 's'}"


def quota_problem(owner: str, *, adding: int, waiting: int, used_today_s: float, limits: Limits) -> str | None:
    """Why a submission of `adding` jobs by `owner` (who has `waiting` jobs waiting and used
    `used_today_s` of slot time in the last 24 h) is refused, or None if it may go ahead."""
    who = f"{owner} has" if owner else "Jobs without an owner have"
    ask = "or ask the instructor for a larger limit"
    if limits.max_queued is not None and waiting + adding > limits.max_queued:
        if adding > limits.max_queued:
            return (f"This submission has {adding} jobs, more than the limit of {limits.max_queued} waiting jobs "
                    f"per person, so nothing was queued. Submit fewer seeds or grid points at a time, {ask}.")
        return (f"{who} {waiting} job{'s' if waiting != 1 else ''} waiting and the limit is {limits.max_queued} "
                f"waiting jobs per person, so these {adding} more were not queued (nothing was). Wait for a job "
                f"to start or finish, cancel one, {ask}.")
    if limits.gpu_hours_per_day is not None and used_today_s >= limits.gpu_hours_per_day * 3600:
        return (f"{who} used {hours_text(used_today_s / 3600)} in the last 24 hours, and the limit is "
                f"{hours_text(limits.gpu_hours_per_day)} a day per person, so nothing was queued. Wait until "
                f"part of that time is more than 24 hours old, {ask}.")
    return None


def wall_clock_message(limit_s: float) -> str:
    """The error of a job stopped at its owner's per-job time limit."""
    return (f"Stopped: it ran longer than the {duration_text(limit_s)} limit per job; its last checkpoint "
            "is kept.")
