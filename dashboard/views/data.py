"""Data: upload a dataset (or pick a demo or a saved one), see what the loader made of it, fix what it
reports, and save it for training. Uploads stay private to this browser until saved."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import streamlit as st

from core import workspace as ws
from core.data import inspect_columns, load_dataset, open_image
from core.data.dataset import ByteBoundedCache, LabeledData
from core.data.demos import list_demos
from core.data.store import columns_of, slug, stage_upload, suffix_of
from core.errors import DataError, TunescopeError
from core.markup import escape_markdown as md
from dashboard import data_view as dv
from dashboard.charts import class_balance, length_histogram
from dashboard.ui import PAGES, actor, client_address, fmt_age, guard, login_mode, session_id

UPLOAD_TYPES = ["csv", "tsv", "txt", "jsonl", "json", "parquet", "zip", "gz", "bz2", "xz"]
AUTO = "auto"
shown = {"column_boxes": False}  # what this run put on the page (the script reruns from the top)


CACHE_BYTES = 256 * 2**20  # loaded datasets kept for reruns, all sessions together


@st.cache_resource(show_spinner=False)
def dataset_cache() -> ByteBoundedCache:
    # One cache for the server, bounded in bytes: sixteen big uploads must not pin gigabytes. Keys hold
    # a staged upload's private path, so a session only ever gets its own uploads back.
    return ByteBoundedCache(CACHE_BYTES)


def load(source: str, text_column: str | None, label_column: str | None, size: int, mtime: float) -> LabeledData:
    # size and mtime are part of the key: a replaced file must not be served from the cache.
    # confine: whatever this page is handed, its image paths stay inside the dataset's own folder.
    return dataset_cache().get_or_load(
        (source, text_column, label_column, size, mtime),
        lambda: load_dataset(source, text_column=text_column, label_column=label_column, confine=True))


@st.cache_data(show_spinner=False, max_entries=16)
def columns_info(path: str, size: int, mtime: float) -> dict[str, Any]:
    # reading a big table for its column names is not free: once per file version, not per rerun
    return inspect_columns(path)


def _stat(path: str) -> tuple[int, float]:
    try:
        s = os.stat(path)
        return s.st_size, s.st_mtime
    except OSError:
        return 0, 0.0


def staged_upload(up: Any) -> Path:
    """Stage the upload once per file (reruns must not rewrite it and defeat the cache)."""
    held = st.session_state.get("_data_staged")
    if held and held[0] == up.file_id and Path(held[1]).is_file():
        return Path(held[1])
    path = stage_upload(ws.upload_folder(actor(), session_id()), up.name, up.getvalue())
    st.session_state["_data_staged"] = (up.file_id, str(path))
    return path


def column_overrides(path: Path) -> tuple[str | None, str | None]:
    info = columns_info(str(path), *_stat(str(path)))
    if info["format"] in ("zip", "folder") or not info["columns"]:
        return None, None
    cols = [AUTO, *map(str, info["columns"])]
    shown["column_boxes"] = True
    a, b = st.columns(2)
    text = a.selectbox("Text column", cols, key="data_text_col",
                       help=f"auto: {md(info['text_column'] or 'not obvious — pick one')}")
    label = b.selectbox("Label column", cols, key="data_label_col",
                        help=f"auto: {md(info['label_column'] or 'not obvious — pick one')}")
    return (None if text == AUTO else text), (None if label == AUTO else label)


def show_dataset(data: LabeledData) -> None:
    sizes = data.sizes()
    cols = st.columns(5)
    cols[0].metric("Task", data.task)
    cols[1].metric("Classes", len(data.labels))
    for col, split in zip(cols[2:], ("train", "validation", "test"), strict=True):
        col.metric(split.capitalize(), f"{sizes[split]:,}")
    st.caption("Classes: " + md(", ".join(map(str, data.labels[:30]))) + (" …" if len(data.labels) > 30 else ""))
    for w in data.warnings:
        hint = dv.hint_for(w)
        st.warning(md(w) + (f"\n\n**What to do:** {md(hint)}" if hint else ""))
    if data.task == "image":
        st.subheader("Examples")
        sample = dv.image_sample(data, 12)
        grid = st.columns(6)
        for i, row in enumerate(sample.itertuples()):
            try:
                img = open_image(row.input)
            except DataError as exc:
                grid[i % 6].caption(f"unreadable: {md(exc)}")
                continue
            grid[i % 6].image(img, caption=md(f"{row.label} ({row.split})"), width=110)
    else:
        st.subheader("Preview")
        st.dataframe(dv.preview_frame(data), hide_index=True, width="stretch", height=260)
    left, right = st.columns(2)
    left.plotly_chart(class_balance(dv.balance_frame(data)), width="stretch", key="data_balance")
    if data.task == "text":
        right.plotly_chart(length_histogram(dv.length_frame(data)), width="stretch", key="data_lengths")


def save_form(staged: Path, up: Any, text_col: str | None, label_col: str | None) -> None:
    st.subheader("Save it for training")
    original = up.name
    stem = original[: -len(suffix_of(original))] if original else "dataset"
    if st.session_state.get("_data_name_for") != up.file_id or "data_name" not in st.session_state:
        # A new upload brings its own name: the box must not keep the previous file's. (Streamlit also
        # forgets the box's value after a run that did not draw it, e.g. while a column was wrong.)
        st.session_state["_data_name_for"] = up.file_id
        st.session_state["data_name"] = slug(stem)
    name = st.text_input("Dataset name", key="data_name", max_chars=48,
                         help="Lower-case letters, digits, '-' and '_'. " + _who_sees_it())
    if not actor().can_write:
        st.info("Your account can look at shared work but not save datasets.")
        return
    if st.button("Save dataset", type="primary", key="data_save"):
        try:
            # Saving the same file under the same name again returns the first save, so a second
            # click (or a click during a slow save) reports that success instead of "name taken".
            saved = ws.save_dataset(actor(), name.strip(), staged, original_name=original, text_column=text_col,
                                    label_column=label_col)
        except TunescopeError as exc:
            st.error(md(exc))
        else:
            st.session_state["_data_saved"] = (up.file_id, saved.name, saved.rows, len(saved.labels))
    done = st.session_state.get("_data_saved")
    if done and done[0] == up.file_id:
        _, saved_name, rows, classes = done
        st.success(f"Saved as **{md(saved_name)}** ({rows:,} examples, {classes} classes).")
        st.markdown("**Where you can use it:** in the Train page's dataset list and on this page under *Or a saved "
                    f"dataset*. {_who_sees_it()}")
        st.page_link(PAGES["train"], label=f"Train on {md(saved_name)}",
                     query_params={"dataset": f"saved:{saved_name}"})


def saved_section() -> None:
    me = actor()
    saved = ws.list_datasets(me)
    st.subheader("Saved datasets")
    if not saved:
        st.caption("None yet. Upload a file above and save it; it then appears on the Train page.")
        return
    access = {d.name: ws.dataset_access(me, d.name) for d in saved}
    st.dataframe([{"name": d.name, "task": d.task, "classes": len(d.labels), "examples": d.rows,
                   "from file": d.original_name, "saved": fmt_age(d.saved), "warnings": len(d.warnings),
                   "owner": access[d.name].owner, "shared with the class": access[d.name].shared}
                  for d in saved], hide_index=True, width="stretch")
    mine = [d.name for d in saved if me.is_instructor or access[d.name].owner == me.name]
    if login_mode() == "login" and mine and me.can_write:
        share_box(mine, access)
    if not mine or not me.can_write:
        return
    with st.expander("Delete a saved dataset"):
        name = st.selectbox("Dataset to delete", mine, index=None, key="data_delete_name")
        sure = st.checkbox("Yes, delete it (runs trained on it keep their results)", key="data_delete_sure")
        if st.button("Delete", key="data_delete", disabled=not (name and sure)):
            try:
                ws.delete_dataset(me, name, client=client_address())
            except TunescopeError as exc:  # already gone (deleted from another browser)
                st.session_state["_data_flash"] = ("warning", str(exc))
            else:
                st.session_state["_data_flash"] = ("success", f"Deleted {name}.")
            # start over so the table, the pickers and the preview no longer show it
            st.session_state["_data_reset_delete"] = True
            st.rerun()


def _who_sees_it() -> str:
    if login_mode() != "login":
        return "Saved datasets are visible to everyone who uses this dashboard."
    return "Only you (and the instructors) see it until you share it with the class below."


def share_box(names: list[str], access: dict[str, Any]) -> None:
    with st.expander("Share a dataset with the class"):
        name = st.selectbox("Dataset", names, key="data_share_name")
        on = st.toggle("Shared with the class", value=access[name].shared, key=f"data_share_on_{name}")
        if on != access[name].shared:
            try:
                ws.share_dataset(actor(), name, on, client=client_address())
            except TunescopeError as exc:
                st.error(md(exc))
            else:
                st.rerun()


def flash() -> None:
    """A message left by the previous run (e.g. after a delete, which reruns the page)."""
    if st.session_state.pop("_data_reset_delete", False):
        for key in ("data_delete_name", "data_delete_sure"):
            st.session_state.pop(key, None)
    kind, text = st.session_state.pop("_data_flash", (None, None))
    if kind == "success":
        st.success(md(text))
    elif kind:
        st.warning(md(text))


def resolve_source() -> tuple[str, str, str | None, str | None, Any]:
    """What to load: (source, display name, text column, label column, upload or None). Reads the
    widgets; staging an upload or reading its columns may raise DataError."""
    up = st.session_state.get("data_upload")
    if up is not None:
        staged = staged_upload(up)
        text_col, label_col = column_overrides(staged)
        return str(staged), up.name, text_col, label_col, up
    demos = {d.name: d for d in list_demos()}
    saved_names = [d.name for d in ws.list_datasets(actor())]
    a, b = st.columns(2)
    demo = a.selectbox("Or pick a built-in demo", list(demos), key="data_demo",
                       format_func=lambda n: f"{demos[n].title} ({demos[n].task})")
    pick = b.selectbox("Or a saved dataset", saved_names, index=None, key="data_saved_pick",
                       placeholder="none saved yet" if not saved_names else "choose…",
                       help="A saved dataset replaces the demo above while it is chosen.")
    if pick:
        cols = columns_of(pick)
        return ws.get_dataset(actor(), pick).path, pick, cols["text"], cols["label"], None
    spec = demos[demo]
    st.caption(md(f"{spec.description} Source: {spec.source}. Licence: {spec.licence}."))
    return f"demo:{demo}", spec.title, None, None, None


st.title("Data")

with guard("loading the data page"):
    flash()
    st.file_uploader("Upload a dataset", type=UPLOAD_TYPES, key="data_upload",
                     help="Text: CSV, TSV, JSONL, JSON or Parquet with a text and a label column (optionally "
                          "a split column). Images: a ZIP with one folder per class. Up to 200 MB.")
    st.caption("Uploads stay private to this browser until you save them.")
    data: LabeledData | None = None
    up = None
    text_col = label_col = None
    try:
        source, label, text_col, label_col, up = resolve_source()
        with st.spinner(f"Reading and checking {md(label)}..."):
            data = load(source, text_col, label_col, *_stat(source))
    except DataError as exc:
        st.error(md(exc))
        if shown["column_boxes"]:
            st.caption("Nothing was stored. Choose the text and label columns in the boxes above, or fix the "
                       "file and upload it again.")
        elif st.session_state.get("data_upload") is not None:
            st.caption("Nothing was stored. Fix the file and upload it again.")
        else:
            st.caption("Nothing was changed. Pick another dataset.")
    if data is not None:
        show_dataset(data)
        if up is not None:
            save_form(Path(source), up, text_col, label_col)
    saved_section()
