"""The live job list: newest jobs with state, a progress bar, a live training curve, Cancel and Open run.

`job_list(...)` renders inside `st.fragment(run_every=...)`, so it refreshes itself every two seconds
without rerunning the page. Each refresh costs one `list_jobs` query plus a seek into the
metrics.jsonl of each running job (`core.jobs.poll`); nothing loads a model or imports torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import streamlit as st

from core import jobs
from core.markup import escape_markdown as md
from core.train.callbacks import merge_metric_rows
from dashboard.charts import has_curve, training_curves
from dashboard.train_form import job_title, progress_view
from dashboard.ui import PAGES, fmt_age, fmt_metric, guard

_METRICS_KEY = "_jobs_view_metrics"  # session_state: job id -> {"offset", "attempt", "rows"}
_CONFIRM_KEY = "_jobs_view_confirm"  # session_state: job id awaiting "really cancel someone else's job?"
IDLE_REFRESH_S = 5.0  # nothing queued or running: look for other sessions' new jobs now and then
ACTIVE = ("queued", "running", "interrupted")
# Colour, not emoji: an offline classroom machine may have no emoji font.
_COLOURS = {"queued": "orange", "running": "blue", "succeeded": "green", "failed": "red", "cancelled": "gray",
            "interrupted": "violet"}


def job_list(*, limit: int = 20, owner: str | None = None, mine: str | None = None,
             highlight: Sequence[str] = (), run_every: float | None = 2.0, key: str = "jobs") -> None:
    """Render the newest `limit` jobs (only `owner`'s when given), refreshing every `run_every` s.

    `mine` is the owner string of this browser session: its jobs cancel with one click, anyone
    else's ask for a confirmation first. `highlight`: ids to mark as just submitted.

    With nothing queued or running the list refreshes only every IDLE_REFRESH_S: ten idle browser
    sessions must not cost ten reruns a second on a server that is also training."""
    if run_every is not None:
        busy = _busy()
        run_every = run_every if busy else max(run_every, IDLE_REFRESH_S)
        st.session_state["_jobs_view_busy"] = busy
    fragment = st.fragment(_render, run_every=run_every)
    fragment(limit=limit, owner=owner, mine=mine, highlight=tuple(highlight), key=key)


def _busy() -> bool:
    counts = jobs.open_store().counts()
    return any(counts.get(s) for s in ACTIVE)


def _render(*, limit: int, owner: str | None, mine: str | None, highlight: tuple[str, ...], key: str) -> None:
    with guard("showing the job list"):
        failed_cancel = st.session_state.pop("_jobs_view_cancel_error", None)
        if failed_cancel:
            st.error(md(failed_cancel))
        job_rows = jobs.list_jobs(owner=owner, limit=limit)
        if not job_rows:
            st.caption("No jobs yet. Jobs you start appear here with live progress.")
            return
        busy = _busy()  # the same global test as job_list's, or the two could disagree forever
        if busy != st.session_state.get("_jobs_view_busy", busy):
            st.session_state["_jobs_view_busy"] = busy
            st.rerun(scope="app")  # switch between the fast and the idle refresh interval
        cache = st.session_state.setdefault(_METRICS_KEY, {})
        for job in job_rows:
            _job_card(job, mine=mine, new=job.id in highlight, key=key, cache=cache)
        # forget the curves of jobs that left the list
        for job_id in list(cache):
            if job_id not in {j.id for j in job_rows}:
                del cache[job_id]


def _job_card(job: Any, *, mine: str | None, new: bool, key: str, cache: dict[str, Any]) -> None:
    with st.container(border=True):
        head, actions = st.columns([5, 1], vertical_alignment="center")
        with head:
            flag = " · **new**" if new else ""
            group = f" · group `{job.group_id}`" if job.group_id else ""
            title = md(job_title(job.config))
            st.markdown(f":{_COLOURS.get(job.state, 'gray')}[**{job.state}**] · `{job.id}` · {title}{group}{flag}")
            st.caption(f"submitted {fmt_age(job.created)}" + (f" · run `{job.run_id}`" if job.run_id else ""))
        with actions:
            _actions(job, mine=mine, key=key)
        fraction, text = progress_view(job.state, job.progress, job.error)
        if job.state == "failed":
            st.error(f"Failed: {md(job.error or 'no message; see the job log.')} (log: `tunescope logs {job.id}`)")
        elif job.state == "cancelled":
            st.caption(md(job.error or "Cancelled."))
        elif fraction is not None:
            st.progress(fraction, text=text)
        if job.state == "running":
            # A curve re-sent every refresh is the costly part; ten students each watching everyone's
            # jobs would redraw ten curves a second. Others' curves are one click away.
            own = mine is None or job.owner == mine
            show = own or st.toggle("Live curve", key=f"{key}_curve_on_{job.id}",
                                    help="This job was started from another browser session.")
            _running_details(job, cache, key, curve=show)
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
                      help=None if own else "This job was started from another browser session.")
        else:
            st.button("Cancel", key=f"{key}_cancel_{job.id}", on_click=_ask_confirm, args=(job.id,),
                      help="Started from another browser session: you will be asked to confirm.")
    elif job.state == "succeeded" and job.run_id:
        st.page_link(PAGES["runs"], label="Open run", query_params={"run": job.run_id})


def _ask_confirm(job_id: str) -> None:
    st.session_state[_CONFIRM_KEY] = job_id


def _cancel(job_id: str) -> None:
    st.session_state.pop(_CONFIRM_KEY, None)
    try:
        jobs.cancel(job_id, wait=False)
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
