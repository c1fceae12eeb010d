"""Class (instructors only): the class overview, every job with cancel, GPU use per user, accounts,
the fair queue's limits and the audit log. Every action goes through core.workspace, which checks
again that the user is an instructor."""

from __future__ import annotations

import time

import pandas as pd
import streamlit as st

from core import workspace as ws
from core.access import ROLES
from core.errors import TunescopeError
from core.markup import escape_markdown as md
from dashboard.jobs_view import job_list
from dashboard.ui import actor, client_address, guard, owner

LIMIT_LABELS = {
    "max_running": ("Running jobs per user", 1.0, "%d"),
    "max_queued": ("Waiting jobs per user", 1.0, "%d"),
    "gpu_hours_per_day": ("GPU-hours per user per day", 0.5, "%.1f"),
    "job_wall_clock_s": ("Longest job (minutes)", 5.0, "%d"),
    "share_weight": ("Share weight (2 = twice the share)", 0.5, "%.1f"),
}


def overview() -> None:
    rows = ws.class_overview(actor())
    usage = ws.usage_by_user(actor())
    if usage:
        st.subheader("GPU time in the last 24 h")
        frame = pd.DataFrame({"user": list(usage), "minutes": [round(s / 60, 1) for s in usage.values()]})
        st.bar_chart(frame, x="user", y="minutes", horizontal=True, height=60 + 28 * len(frame))
    st.subheader("Runs by student")
    if not rows:
        st.caption("No runs yet.")
        return
    frame = pd.DataFrame(rows)
    who = st.multiselect("Only these users", sorted(frame["owner"].unique()), key="class_who")
    if who:
        frame = frame[frame["owner"].isin(who)]
    st.dataframe(frame, hide_index=True, width="stretch")


def users() -> None:
    me = actor()
    accounts = ws.list_users(me)
    st.dataframe([{"name": u.name, "role": u.role, "state": "disabled" if u.disabled else "enabled",
                   "password": "one-time" if u.must_change else "set"} for u in accounts],
                 hide_index=True, width="stretch")
    new = st.session_state.pop("_class_new_password", None)
    if new:
        st.success(f"{md(new[0])}'s one-time password (shown once): **{md(new[1])}**")
    with st.form("class_add_user", clear_on_submit=True):
        a, b = st.columns([3, 1])
        name = a.text_input("New user name", max_chars=32, help="Lower-case letters, digits, '.', '_', '-'.")
        role = b.selectbox("Role", ROLES, index=1)
        if st.form_submit_button("Add user"):
            try:
                made = ws.add_user(me, name, role)
            except TunescopeError as exc:
                st.error(md(exc))
            else:
                st.session_state["_class_new_password"] = (made.user.name, made.password)
                st.rerun()
    names = [u.name for u in accounts]
    if not names:
        return
    c1, c2, c3, c4 = st.columns([3, 1, 1, 1])
    pick = c1.selectbox("Account", names, key="class_user_pick")
    try:
        if c2.button("Reset password", key="class_reset"):
            made = ws.reset_user(me, pick)
            st.session_state["_class_new_password"] = (pick, made.password)
            st.rerun()
        if c3.button("Disable", key="class_disable"):
            ws.disable_user(me, pick, True)
            st.rerun()
        if c4.button("Enable", key="class_enable"):
            ws.disable_user(me, pick, False)
            st.rerun()
    except TunescopeError as exc:
        st.error(md(exc))
    st.caption("A whole class at once: `tunescope users import roster.csv` prints everyone's one-time password.")


def limits() -> None:
    me = actor()
    names = [u.name for u in ws.list_users(me)]
    who = st.selectbox("Limits for", ["everyone", *names], key="class_limits_who",
                       help="A user's own limits win over everyone's (e.g. a larger share for an instructor).")
    owner_key = "*" if who == "everyone" else who
    current = ws.limits_for(me, owner_key)
    st.caption("0 = no limit. They apply to the next job that is queued or started.")
    with st.form(f"class_limits_{owner_key}"):
        values = {}
        cols = st.columns(len(LIMIT_LABELS))
        for col, (key, (label, step, fmt)) in zip(cols, LIMIT_LABELS.items(), strict=True):
            value = getattr(current, key)
            if key == "job_wall_clock_s":
                value = None if value is None else value / 60
            values[key] = col.number_input(label, min_value=0.0, step=step, format=fmt,
                                           value=float(value or 0) if key != "share_weight" else float(value))
        if st.form_submit_button("Save limits"):
            try:
                for key, value in values.items():
                    if key == "share_weight":
                        ws.set_limit(me, owner_key, key, value or 1.0, client=client_address())
                        continue
                    v = None if not value else value * 60 if key == "job_wall_clock_s" else value
                    ws.set_limit(me, owner_key, key, v, client=client_address())
            except TunescopeError as exc:
                st.error(md(exc))
            else:
                st.success(f"Saved the limits for {md(who)}.")


def audit() -> None:
    entries = ws.audit_log(actor(), limit=300)
    if not entries:
        st.caption("Nothing logged yet.")
        return
    st.dataframe([{"when": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.at)), "who": e.actor,
                   "action": e.action, "target": e.target, "detail": e.detail, "client": e.client}
                  for e in entries], hide_index=True, width="stretch")


st.title("Class")
with guard("opening the class page"):
    if not actor().is_instructor:  # the page is not in a student's menu; a typed address ends here
        st.error("This page is for instructors.")
        st.stop()
    tabs = st.tabs(["Overview", "Jobs", "Users", "Limits", "Audit log"])
    with tabs[0]:
        overview()
    with tabs[2]:
        users()
    with tabs[3]:
        limits()
    with tabs[4]:
        audit()
    with tabs[1]:
        st.caption("Every user's jobs; cancelling someone else's asks to confirm first and goes to the audit log.")
        job_list(limit=50, owner=None, mine=owner(), key="class_jobs")
