"""Home: what tunescope is, a one-click demo training, a short tour, and what the server runs on."""

from __future__ import annotations

import logging
import traceback

import streamlit as st

from core.markup import escape_markdown as md
from dashboard.ui import PAGES, actor, device_summary, guard, owner, visible_runs, worker_state

log = logging.getLogger("tunescope.dashboard")

DEMO = {"source": "demo:sentiment", "method": "head", "max_samples": 2000}


def pending_demo_job() -> str | None:
    """This session's demo job if it is still queued or running: a second click (or a double click)
    opens it again instead of queuing a duplicate in a queue the whole class shares."""
    job_id = st.session_state.get("last_job")
    if not job_id:
        return None
    from core import jobs

    try:
        job = jobs.get(job_id)
    except Exception:  # noqa: BLE001 - unknown or unreadable: just queue a new one
        return None
    same = job.config.get("data", {}).get("source") == DEMO["source"] and job.owner == owner()
    return job.id if same and not job.is_final else None


def demo_form_params(job_id: str) -> dict[str, str]:
    """The Train page's URL for the demo job: its form values (widget keys bound to the URL) and the job."""
    return {"dataset": DEMO["source"], "train_method": DEMO["method"],
            "train_max_examples": str(DEMO["max_samples"]), "job": job_id}


def submit_demo() -> str | None:
    """Queue the demo job; on failure say why and that nothing was queued, and return None."""
    from core.config import DataConfig, RunConfig, TrainConfig
    from core.errors import TunescopeError
    from core.workspace import submit_training

    cfg = RunConfig(data=DataConfig(source=DEMO["source"], max_samples=DEMO["max_samples"]),
                    train=TrainConfig(method=DEMO["method"]))
    try:
        with st.spinner("Checking the demo data and queuing the job..."):
            return submit_training(actor(), cfg, check_device=False)[0]
    except TunescopeError as exc:
        st.error(f"The demo job could not be queued: {md(exc)}")
    except Exception as exc:  # noqa: BLE001 - e.g. the job table is locked or the disk is full
        log.error("queuing the demo job failed:\n%s", "".join(traceback.format_exception(exc)))
        st.error(f"The demo job could not be queued ({type(exc).__name__}); nothing was started. Try again "
                 "in a moment; if it keeps failing, the server log has the details.")
    return None


st.title("tunescope")

with guard("loading the home page"):
    st.markdown(
        "**tunescope fine-tunes a pretrained model on your labelled texts or images, right on this server.** "
        "It trains in the background while you watch the learning curves, then lets you compare runs "
        "honestly — with intervals across seeds, not single numbers. Finally you can try each model on "
        "your own input and see how confident it is.")

    left, right = st.columns([3, 2])
    with left:
        st.subheader("Try it in one click")
        st.write("Train a movie-review sentiment classifier on 2,000 built-in examples. The pretrained "
                 "MiniLM encoder stays frozen and only a small classifier on top learns (method *head*), "
                 "so it takes about a minute on a laptop CPU.")
        if st.button("Train the demo", type="primary", key="home_train_demo"):
            job_id = pending_demo_job() or submit_demo()
            if job_id:
                st.session_state["last_job"] = job_id
                # The Train form opens on the job it just started (its data, size, method and
                # estimate), with the job marked in the list, not on the defaults for the full demo.
                st.switch_page(PAGES["train"], query_params=demo_form_params(job_id))

    with right:
        st.subheader("Server")
        state, dev = worker_state(), device_summary()
        if state["workers"]:
            st.success(f"Worker running on {dev['label']}.")
        else:
            st.warning(f"No worker is running, so queued jobs will wait. `tunescope ui` starts one with the "
                       f"dashboard; on a separate machine run `tunescope worker`. Device: {dev['label']}.")
        if dev["gpus"]:
            for g in dev["gpus"]:
                st.caption(f"{g['name']}: {g['used_gib']:.1f} of {g['memory_gib']:.1f} GiB in use")
        from core.jobs.listing import running_and_queued
        from core.workspace import list_datasets

        counts = state["counts"]
        a, b, c = st.columns(3)
        a.metric("Runs", len(visible_runs()))
        b.metric("Saved datasets", len(list_datasets(actor())))
        c.metric("Jobs running / queued", "{} / {}".format(*running_and_queued(counts)))  # as the sidebar counts

    st.subheader("A short tour")
    steps = [
        ("data", "Data", "Upload a CSV/JSONL/Parquet of texts or a ZIP of images in class folders, or pick a "
                         "built-in demo. Problems are named by row, and nothing is stored until you save."),
        ("train", "Train", "Choose the dataset, a model and how much of it to fine-tune (full, head, top-k "
                           "layers or LoRA). You see the memory and time estimate before you start, then "
                           "the job's live progress and curves."),
        ("runs", "Runs", "Every finished run: learning curves, classification report, confusion matrix, "
                         "downloads. Each run has its own link to share."),
        ("compare", "Compare", "Put runs or seed groups side by side: metrics with 95 % intervals, cost, "
                               "and a plain-language verdict that only calls a winner when the data support it."),
        ("predict", "Predict", "Type a sentence or upload an image and see the class probabilities."),
        ("explain", "Explain", "See which words or image regions a prediction rests on, with a faithfulness "
                               "score and a one-click sanity check that say how far to trust the picture."),
    ]
    for i, (key, title, text) in enumerate(steps, start=1):
        col_link, col_text = st.columns([1, 5])
        col_link.page_link(PAGES[key], label=f"{i}. {title}")
        col_text.write(text)
