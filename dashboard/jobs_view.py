"""The live job list: running jobs, then queued ones with their place in the queue, then finished ones
(newest first); a seed group is one card with a line per seed. Each shows its state, a bar (green when
done, grey when cancelled, red only when failed), a live training curve, Cancel and Open run.

`job_list(...)` renders inside `st.fragment(run_every=...)`, so it refreshes itself without rerunning
the page, at the pace of what it shows: every 2 s while one of its jobs runs, every 5 s while one
waits in the queue, every 10 s otherwise (`core.jobs.listing.liveliness`). Every refresh costs each
open browser a re-render whatever changed, so twenty students whose own lists are idle must not redraw
them every 2 s because somebody else is training. Each refresh reads one `core.jobs.listing.snapshot`
(the sidebar's job counts are refilled from it too) plus a seek into the metrics.jsonl of each
running job (`core.jobs.poll`); nothing loads a model or imports torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import streamlit as st

from core import jobs
from core.jobs.listing import active_liveliness, liveliness, ordinal, snapshot
from core.markup import escape_markdown as md
from core.train.callbacks import merge_metric_rows
from dashboard.charts import has_curve, training_curves
from dashboard.train_form import bar_html, finished_bar, job_title, progress_view
from dashboard.ui import PAGES, actor, client_address, fmt_age, fmt_metric, fmt_seconds, guard, show_counts

_METRICS_KEY = "_jobs_view_metrics"  # session_state: job id -> {"offset", "attempt", "rows"}
_CONFIRM_KEY = "_jobs_view_confirm"  # session_state: job id awaiting "really cancel someone else's job?"
# Seconds between refreshes of a list by liveliness; "running" is job_list's run_every.
WAITING_REFRESH_S = 5.0  # a queue place moves only when some job starts or ends
IDLE_REFRESH_S = 10.0  # nothing of this list active: look for jobs started elsewhere now and then
_PACE_KEY = "_jobs_view_pace"  # session_state: list key -> the liveliness its refresh interval was set for
# Colour, not emoji: an offline classroom machine may have no emoji font.
_COLOURS = {"queued": "orange", "running": "blue", "succeeded": "green", "failed": "red", "cancelled": "gray",
            "interrupted": "violet"}


def job_list(*, limit: int = 20, owner: str | None = None, mine: str | None = None,
             highlight: Sequence[str] = (), all_curves: bool = False, run_every: float | None = 2.0,
             key: str = "jobs") -> None:
    """Render the newest `limit` jobs (only `owner`'s when given), refreshing every `run_every` s
    while one of them runs, less often otherwise (see the module's docstring).

    `mine` is the owner string of this browser: its jobs cancel with one click, anyone
    else's ask for a confirmation first. `highlight`: ids to mark as just submitted. A running job's
    live curve shows when it is `mine`'s, or for every running job with `all_curves`."""
    if run_every is not None:
        pace = active_liveliness(jobs.open_store(), owner)
        st.session_state.setdefault(_PACE_KEY, {})[key] = pace
        run_every = _interval(pace, run_every)
    fragment = st.fragment(_render, run_every=run_every)
    fragment(limit=limit, owner=owner, mine=mine, highlight=tuple(highlight), all_curves=all_curves, key=key)


def _interval(pace: str, fastest: float) -> float:
    return {"running": fastest, "waiting": max(fastest, WAITING_REFRESH_S)}.get(pace, max(fastest, IDLE_REFRESH_S))


def _render(*, limit: int, owner: str | None, mine: str | None, highlight: tuple[str, ...], all_curves: bool,
            key: str) -> None:
    with guard("showing the job list"):
        actor()  # a refresh of this fragment skips app.py's gate: a signed-out browser stops here
        failed_cancel = st.session_state.pop("_jobs_view_cancel_error", None)
        if failed_cancel:
            st.error(md(failed_cancel))
        listing = snapshot(jobs.open_store(), owner=owner, limit=limit)
        show_counts(listing.counts)  # the sidebar's counts: this very snapshot, so they never disagree
        # The same test as job_list's, on the same jobs, or the two could disagree forever.
        paces = st.session_state.setdefault(_PACE_KEY, {})
        pace = liveliness(listing.jobs)
        if key in paces and pace != paces[key]:
            paces[key] = pace
            st.rerun(scope="app")  # a fragment's interval is set by the page run: change it there
        if not listing.cards:
            st.caption("No jobs yet. Jobs you start appear here with live progress.")
            return
        cache = st.session_state.setdefault(_METRICS_KEY, {})
        for card in listing.cards:
            if card.group_id:
                _group_card(card, mine=mine, highlight=highlight, key=key, cache=cache, all_curves=all_curves)
            else:
                _job_card(card.jobs[0], card.positions[0], _start(card, 0), mine=mine, new=card.jobs[0].id in highlight,
                          key=key, cache=cache, all_curves=all_curves)
        # forget the curves of jobs that left the list
        listed = {j.id for j in listing.jobs}
        for job_id in list(cache):
            if job_id not in listed:
                del cache[job_id]


def _badge(state: str) -> str:
    return f":{_COLOURS.get(state, 'gray')}[**{state}**]"


def _place(position: int | None, start_s: float | None = None) -> str:
    """" · 3rd in queue · starts in about 4 min" (the start from recent jobs' durations, when known)."""
    if not position:
        return ""
    when = "" if start_s is None else " · starts now" if start_s < 30 else f" · starts in about {fmt_seconds(start_s)}"
    return f" · **{ordinal(position)} in queue**{when}"


def _start(card: Any, i: int) -> float | None:
    return card.starts[i] if i < len(card.starts) else None


def _job_card(job: Any, position: int | None, start_s: float | None, *, mine: str | None, new: bool, key: str,
              cache: dict[str, Any], all_curves: bool) -> None:
    with st.container(border=True):
        head, actions = st.columns([5, 1], vertical_alignment="center")
        with head:
            flag = " · **new**" if new else ""
            title = md(job_title(job.config, kind=job.kind))
            st.markdown(f"{_badge(job.state)}{_place(position, start_s)} · `{job.id}` · {title}{flag}")
            st.caption(f"submitted {fmt_age(job.created)}"
                       + (f" · run `{job.run_id}`" if job.run_id else ""))
        with actions:
            _actions(job, mine=mine, key=key)
        _job_body(job, mine=mine, key=key, cache=cache, all_curves=all_curves)


def _group_card(card: Any, *, mine: str | None, highlight: tuple[str, ...], key: str,
                cache: dict[str, Any], all_curves: bool) -> None:
    """One card for a seed group: the shared settings once, then one line per seed."""
    members = card.jobs
    states: dict[str, int] = {}
    for j in members:
        states[j.state] = states.get(j.state, 0) + 1
    summary = ", ".join(f"{n} {state}" for state, n in states.items())
    flag = " · **new**" if any(j.id in highlight for j in members) else ""
    with st.container(border=True):
        title = md(job_title(members[0].config, kind=members[0].kind, seed=False))
        st.markdown(f"**{len(members)} seeds** · {title}{flag}")
        st.caption(f"group `{card.group_id}` · {summary} · submitted {fmt_age(min(j.created for j in members))}")
        for i, (job, position) in enumerate(zip(members, card.positions, strict=True)):
            seed = ((job.config or {}).get("train") or {}).get("seed")
            label, actions = st.columns([5, 1], vertical_alignment="center")
            with label:
                st.markdown(f"seed {seed if seed is not None else '?'} · {_badge(job.state)}"
                            f"{_place(position, _start(card, i))}"
                            f" · `{job.id}`" + (f" · run `{job.run_id}`" if job.run_id else ""))
            with actions:
                _actions(job, mine=mine, key=key)
            _job_body(job, mine=mine, key=key, cache=cache, all_curves=all_curves)


def _job_body(job: Any, *, mine: str | None, key: str, cache: dict[str, Any], all_curves: bool) -> None:
    """The bar, the message of a failed or cancelled job, the test score, and a running job's curve."""
    bar = finished_bar(job.state, job.progress)
    if bar is not None:
        st.markdown(bar_html(*bar), unsafe_allow_html=True)  # fixed markup, no user text
    if job.state == "failed":
        st.error(f"Failed: {md(job.error or 'no message; see the job log.')} (log: `tunescope logs {job.id}`)")
    elif job.state == "cancelled":
        st.caption(md(job.error or "Cancelled."))
    elif bar is None:
        fraction, text = progress_view(job.state, job.progress, job.error)
        if fraction is not None:
            st.progress(fraction, text=text)
    if job.state == "running":
        # A curve re-sent every refresh is the costly part; ten students each watching everyone's
        # jobs would redraw ten curves a second. Others' curves come with the page's "all" choice.
        own = mine is None or job.owner == mine
        _running_details(job, cache, key, curve=own or all_curves)
    elif job.state == "succeeded":
        test = (job.result or {}).get("test") or {}
        if test:
            st.caption(f"test accuracy {fmt_metric(test.get('accuracy'))} · macro-F1 "
                       f"{fmt_metric(test.get('macro_f1'))}")


def _actions(job: Any, *, mine: str | None, key: str) -> None:
    if job.state in ("queued", "running", "interrupted"):
        if job.cancel_requested and job.state == "running":
            st.caption("stopping…")
            return
        own = mine is None or job.owner == mine
        confirm = st.session_state.get(_CONFIRM_KEY)
        if own or confirm == job.id:
            label = "Cancel" if own else "Yes, cancel it"
            st.button(label, key=f"{key}_cancel_{job.id}", on_click=_cancel, args=(job.id,),
                      help=None if own else "This job was started from another browser.")
        else:
            st.button("Cancel", key=f"{key}_cancel_{job.id}", on_click=_ask_confirm, args=(job.id,),
                      help="Started from another browser: you will be asked to confirm.")
    elif job.state == "succeeded" and job.run_id:
        st.page_link(PAGES["runs"], label="Open run", query_params={"run": job.run_id})


def _ask_confirm(job_id: str) -> None:
    st.session_state[_CONFIRM_KEY] = job_id


def _cancel(job_id: str) -> None:
    st.session_state.pop(_CONFIRM_KEY, None)
    try:
        from core.workspace import cancel_job

        cancel_job(actor(), job_id, wait=False, client=client_address())
    except Exception as exc:  # noqa: BLE001 - a callback must not raise into the page
        st.session_state["_jobs_view_cancel_error"] = f"Could not cancel {job_id}: {exc}"


def _running_details(job: Any, cache: dict[str, Any], key: str, curve: bool = True) -> None:
    p = job.progress or {}
    last = p.get("last_epoch") or {}
    if last.get("val_accuracy") is not None:
        st.caption(f"after epoch {last.get('epoch')}: validation accuracy {fmt_metric(last.get('val_accuracy'))}"
                   f" · macro-F1 {fmt_metric(last.get('val_macro_f1'))}")
    entry = cache.get(job.id) or {"offset": 0, "attempt": None, "rows": []}
    try:
        status, new_rows, offset = jobs.poll(job.id, entry["offset"], entry["attempt"])
    except Exception:  # noqa: BLE001 - the curve is optional; the bar above already shows progress
        return
    entry = {"offset": offset, "attempt": status.get("attempts"),
             "rows": merge_metric_rows(entry["rows"], new_rows)}
    cache[job.id] = entry
    if status.get("stale"):
        st.warning(f"No heartbeat from this job's worker for {status['heartbeat_age_s']:.0f} s; it will be "
                   "resumed or failed once the worker is declared lost.")
    if curve and has_curve(entry["rows"]):
        st.plotly_chart(training_curves(entry["rows"]), width="stretch", key=f"{key}_curve_{job.id}")
