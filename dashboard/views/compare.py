"""Compare: runs or experiments (seed groups: runs that share every setting but the seed) side by
side — metrics with 95 % intervals, cost, what differs between two experiments, curves, per-class
differences, and a verdict that only names a winner when the interval excludes zero."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from core import compare, compare_labels
from core.errors import RunError
from core.markup import escape_markdown as md
from core.runs import RUN_ID, Run
from dashboard.charts import curve_overlay, diff_bars
from dashboard.ui import (
    PAGES,
    fmt_count,
    fmt_metric,
    fmt_seconds,
    guard,
    report_download,
    report_fields,
    report_pdf_download,
    runs_dir,
    visible_runs,
)


def finished_runs() -> list[dict[str, Any]]:
    return [r for r in visible_runs() if r["state"] == "succeeded" and r["accuracy"] is not None]


def _seeds_text(e: compare.Experiment) -> str:
    seeds = f"{len(e.seeds)} seed{'s' if len(e.seeds) != 1 else ''}"
    return seeds if len(e.runs) == len(e.seeds) else f"{len(e.runs)} runs, {seeds}"


def _label(row: dict[str, Any]) -> str:
    return f"{row['run_id']} · {row['method']} · acc {fmt_metric(row['accuracy'])}"


_SHARE_KEYS = ("runs", "groups")


def _url_selection() -> tuple[str, str]:
    for key in _SHARE_KEYS:
        if key in st.query_params:
            return key, ",".join(st.query_params.get_all(key))
    return "runs", ""


def _restore_selection(by_id: dict[str, Any], groups: dict[str, compare.Experiment]) -> None:
    """Before the widgets: when the URL's `?groups=` (experiment keys) or `?runs=` (run ids) is not the
    selection this page last wrote there (a shared link, a fresh browser), it becomes the selection;
    the ids that are not here are kept for a note."""
    key, value = _url_selection()
    if st.session_state.get("compare_synced") == (key, value):
        return
    if key == "groups":
        by_key = {e.key: label for label, e in groups.items()}
        found, unknown = compare_labels.parse_selection(value, list(by_key))
        st.session_state["compare_mode"] = "Seed groups"
        st.session_state["compare_groups"] = [by_key[k] for k in found]
        st.session_state["compare_unknown"] = ("seed groups", unknown)
    else:
        found, unknown = compare_labels.parse_selection(value, list(by_id))
        st.session_state["compare_runs"] = found
        st.session_state["compare_unknown"] = ("finished runs", unknown)
    st.session_state["compare_restored"] = (key, ",".join(found))


def _sync_query(key: str, ids: list[str]) -> None:
    """The URL follows the selection: `?runs=a,b` or `?groups=k1,k2`, never both. The note on a shared
    link's unknown ids goes once the selection moves on from what the link restored."""
    value = ",".join(ids)
    for other in _SHARE_KEYS:
        if other != key and other in st.query_params:
            st.query_params.pop(other, None)
    if st.query_params.get(key, "") != value:
        if value:
            st.query_params[key] = value
        else:
            st.query_params.pop(key, None)
    if st.session_state.get("compare_restored") != (key, value):
        st.session_state.pop("compare_unknown", None)
    st.session_state["compare_synced"] = (key, value)


def share_link(key: str, ids: list[str]) -> None:
    url = compare_labels.share_url(st.context.url or "/compare", key, ids)
    st.caption("Link to this comparison (copy it with the button at the right of the box; whoever opens it "
               "sees the same runs, if they are saved on this tunescope):")
    st.code(url, language=None)


def metrics_table(table: pd.DataFrame) -> pd.DataFrame:
    """The note on an interval ("one run: no interval") sits next to the intervals it qualifies."""
    return pd.DataFrame({
        "experiment": table["experiment"],
        "seeds": table["seeds"], "runs": table["runs"],
        "accuracy": table["accuracy"], "macro-F1": table["macro_f1"],
        "note": table["note"],
        "macro-F1 sd": [f"{x:.3f}" if x is not None and x == x else "–" for x in table["macro_f1_sd"]],
        "weighted-F1": table["weighted_f1"],
        "ECE": table["ece"],
        "trainable params": [fmt_count(x) for x in table["trainable_params"]],
        "train time": [fmt_seconds(x) for x in table["train_seconds"]],
        "samples/s": [f"{x:.1f}" if x is not None and x == x else "–" for x in table["samples_per_second"]],
        "peak memory": [f"{x:.0f} MB" if x is not None and x == x else "–" for x in table["peak_memory_mb"]],
    })


def verdict_section(exps: list[compare.Experiment], runs: dict[str, Run],
                    labels: dict[str, compare_labels.ShortLabel]) -> None:
    # Two or more experiments: A and B are experiments; one experiment: its single runs.
    one = exps[0].runs if len(exps) == 1 else ()
    options = {i: [i] for i in one} if one else {e.label: list(e.runs) for e in exps}
    if len(options) < 2:
        st.info("These runs are all seeds of one experiment; pick runs of another method, model or setting "
                "to get a verdict.")
        return
    names = list(options)
    a_col, b_col, m_col = st.columns([2, 2, 1])
    def shown(x: str) -> str:  # single runs by their short label ("full · s1"), experiments by theirs
        return f"{labels[x].text} ({x})" if one and x in labels else x

    a = a_col.selectbox("A", names, index=0, key="compare_a", format_func=shown)
    b = b_col.selectbox("B", names, index=1, key="compare_b", format_func=shown)
    metric = m_col.selectbox("Metric", ["macro_f1", "accuracy"], key="compare_metric",
                             format_func=lambda m: compare.METRIC_NAMES[m])
    if a == b:
        st.warning("A and B are the same; pick two different ones.")
        return
    runs_a, runs_b = [runs[i] for i in options[a]], [runs[i] for i in options[b]]
    reason = compare.not_comparable(runs_a, runs_b)
    if reason:
        st.warning(md(reason))
        return
    diffs = compare.settings_diff(runs_a, runs_b)
    if not diffs.empty:
        st.caption("What differs between A and B (everything else is the same):")
        st.dataframe(diffs, hide_index=True, width="stretch")
    try:
        v = compare.verdict(runs_a, runs_b, metric, name_a=a, name_b=b)
    except RunError as exc:
        st.warning(md(exc))
    else:
        (st.success if v.significant else st.info)(md(v.text))
        st.caption(compare.STATISTICS_NOTE)
        if v.tests:
            st.dataframe(tests_table(v.tests), hide_index=True, width="stretch")
    diff = compare.per_class_diff(runs_a, runs_b)
    if not diff.empty:
        st.plotly_chart(diff_bars(diff, "A", "B"), width="stretch", key="compare_diff")
    if len(runs_a) == 1 and len(runs_b) == 1:
        disagreement_section(runs_a[0], runs_b[0], labels)


def tests_table(tests: tuple[dict[str, Any], ...]) -> pd.DataFrame:
    """Both paired tests of two single runs, for readers who want the numbers behind the verdict."""
    rows = []
    for t in tests:
        if t["test"] == "exact McNemar":
            detail = (f"A right only {t['only_a_right']}, B right only {t['only_b_right']}; odds ratio "
                      f"{t['odds_ratio']:.2f}")
        else:
            detail = f"95 % interval {t['low']:+.3f} to {t['high']:+.3f} ({t['resamples']} resamples)"
        rows.append({"test": t["test"], "metric": compare.METRIC_NAMES.get(t.get("metric"), t.get("metric")),
                     "A − B": f"{t['diff']:+.3f}", "p-value": compare.fmt_p(t["p_value"]), "detail": detail})
    return pd.DataFrame(rows)


def disagreement_section(a: Run, b: Run, labels: dict[str, compare_labels.ShortLabel]) -> None:
    from core.analysis import disagreements

    try:
        d = disagreements(a, b)
    except RunError:
        return
    name = {r.id: labels[r.id].text if r.id in labels else r.id for r in (a, b)}
    if len(set(name.values())) < 2:
        name = {a.id: a.id, b.id: b.id}
    d = d.rename(columns=name).assign(right=d["right"].map(lambda x: name.get(x, x)))
    st.markdown(f"**The {len(d)} test examples the two runs disagree on** (who was right, and each run's "
                f"confidence; {md(name[a.id])} is {md(a.id)}, {md(name[b.id])} is {md(b.id)}):")
    if not d.empty:
        st.dataframe(d, hide_index=True, width="stretch",
                     column_config={c: st.column_config.NumberColumn(format="%.3f")
                                    for c in ("confidence_a", "confidence_b")})


st.title("Compare")

with guard("comparing runs"):
    rows = finished_runs()
    if len(rows) < 2:
        st.info("Comparing needs at least two finished runs. Train a second one (another method, or more seeds).")
        st.page_link(PAGES["train"], label="Go to Train")
        st.stop()
    by_id = {r["run_id"]: r for r in rows}
    all_rows = pd.DataFrame([compare.run_row(Run(Path(r["path"]))) for r in rows])
    groups = {e.label: e for e in compare.experiments(all_rows)}
    _restore_selection(by_id, groups)
    note = st.empty()  # filled once the selection is known: a shared link's unknown ids
    mode = st.radio("Pick", ["Runs", "Seed groups"], horizontal=True, key="compare_mode",
                    help="A seed group is an experiment: runs that share every setting except the seed.")
    if mode == "Seed groups":
        chosen = st.multiselect("Seed groups", list(groups), key="compare_groups",
                                format_func=lambda g: f"{g} ({_seeds_text(groups[g])})")
        picked = [i for g in chosen for i in groups[g].runs]
        share = ("groups", [groups[g].key for g in chosen])
    else:
        picked = st.multiselect("Runs to compare", list(by_id), key="compare_runs",
                                format_func=lambda i: _label(by_id[i]))
        share = ("runs", list(picked))
    _sync_query(*share)
    what, unknown = st.session_state.get("compare_unknown", ("", []))
    if unknown:
        note.warning(f"Not {what} here, left out of the shared selection: {md(', '.join(unknown))}.")
    if len(picked) < 2:
        st.caption("Pick at least two runs (or groups) to compare.")
        st.stop()
    share_link(*share)

    runs = {i: Run(runs_dir() / i) for i in picked if RUN_ID.fullmatch(i)}
    frame = pd.DataFrame([compare.run_row(r) for r in runs.values()])
    table = compare.group_table(frame)
    exps = compare.experiments(frame)
    labels = compare_labels.short_labels(frame)
    st.subheader("Metrics (mean ± 95 % interval across seeds)")
    st.dataframe(metrics_table(table), hide_index=True, width="stretch")
    mixed = compare_labels.mixing_note(frame)
    if mixed:  # no verdict, no shared curves: a clear note instead
        st.warning(md(mixed))
        st.stop()

    st.subheader("A against B")
    verdict_section(exps, runs, labels)

    report_paths = [r.path for r in runs.values()]
    fields = report_fields(report_paths, "compare_report")
    html_col, pdf_col = st.columns(2)
    html_col.download_button("Report on these runs (HTML)", report_download(report_paths, **fields),
                             file_name="tunescope-report.html", mime="text/html", key="compare_report",
                             on_click="ignore",
                             help="A self-contained page (the question and its answer, metrics with cost, verdicts, "
                                  "curves, confusion matrices, calibration, the explanations you added, model cards) "
                                  "to send to people who will not open tunescope.")
    pdf = report_pdf_download(report_paths, **fields)
    if pdf is None:
        pdf_col.caption("A PDF needs Chromium on the server; open the HTML report and print it from your browser.")
    else:
        pdf_col.download_button("Report on these runs (PDF)", pdf, file_name="tunescope-report.pdf",
                                mime="application/pdf", key="compare_report_pdf", on_click="ignore",
                                help="The same report printed to PDF (takes a few seconds).")

    st.subheader("Curves")
    st.caption("One colour per experiment, one dash per seed.")
    curves = {i: r.metrics()[0] for i, r in runs.items()}
    names = {i: s.text for i, s in labels.items()}
    colours = {i: s.index for i, s in labels.items()}
    left, right = st.columns(2)
    left.plotly_chart(curve_overlay(curves, "loss", "step", names=names, groups=colours), width="stretch",
                      key="compare_loss")
    right.plotly_chart(curve_overlay(curves, "val_macro_f1", "epoch", names=names, groups=colours),
                       width="stretch", key="compare_f1")
