"""Train: pick a dataset, a model and a method, see what it will cost, queue it, and watch it live.

The form's choices, the "only my jobs" toggle and the live-curve choice live in the URL (widgets bound
to query parameters, the dataset as `?dataset=`), so a reload or a shared link opens the same form;
`?job=<id>` marks a job just started elsewhere (Home's "Train the demo").

Submitting only validates and queues (`core.workspace.submit_training`, check_device=False): the training itself
runs in a `tunescope worker` process, so this page never imports torch and a closed tab loses nothing.
"""

from __future__ import annotations

import os
import time
from typing import Any

import streamlit as st

from core import workspace as ws
from core.config import DataConfig, ModelConfig, TrainConfig, field_help
from core.data.demos import list_demos
from core.data.store import columns_of
from core.errors import TunescopeError
from core.markup import escape_markdown as md
from dashboard import train_form as tf
from dashboard.jobs_view import job_list
from dashboard.ui import actor, device_summary, fmt_count, guard, owner, worker_state

DATA_HELP, MODEL_HELP, TRAIN_HELP = field_help(DataConfig), field_help(ModelConfig), field_help(TrainConfig)
DEFAULT_METHOD = "head"  # fastest first result for a class; see the caption under the method choice


@st.cache_data(ttl=600, max_entries=32, show_spinner="Reading the dataset…")
def dataset_info(source: str, text_column: str | None, label_column: str | None, mtime: float) -> dict[str, Any]:
    """Task, classes, split sizes and typical input size of a dataset (loaded once, no torch).
    `mtime` is only part of the cache key: a re-saved dataset is read again."""
    from core.data import dataset_profile, load_dataset

    return dataset_profile(load_dataset(source, text_column=text_column, label_column=label_column))


@st.cache_data(ttl=300, max_entries=64, show_spinner=False)
def model_params(model: str, task: str, num_labels: int) -> int | None:
    """Total parameters (None where unknown offline)."""
    mem, _ = tf.estimate(model, task, "full", batch_size=32, max_length=128, image_size=None,
                         num_labels=num_labels, sizes={}, epochs=1)
    return mem.params if mem else None


def dataset_choices() -> dict[str, dict[str, Any]]:
    """Menu key -> what to load: built-in demos first (demo:sentiment leads), then saved datasets."""
    out: dict[str, dict[str, Any]] = {}
    for d in list_demos():
        out[f"demo:{d.name}"] = {"label": f"{d.title} · {d.task} demo", "source": f"demo:{d.name}",
                                 "text_column": None, "label_column": None, "mtime": 0.0,
                                 "about": f"{d.description} Source: {d.source}. Licence: {d.licence}."}
    for s in ws.list_datasets(actor()):
        cols = columns_of(s.name)
        try:
            mtime = os.path.getmtime(s.path)
        except OSError:
            mtime = 0.0
        out[f"saved:{s.name}"] = {"label": f"{s.name} · saved {s.task} dataset", "source": s.path,
                                  "text_column": cols["text"], "label_column": cols["label"], "mtime": mtime,
                                  "about": f"Saved from {s.original_name}."}
    return out


def worker_notice() -> None:
    state = worker_state()
    if not state["ok"]:
        st.error(f"The job queue cannot be read ({md(state['error'])}); training cannot be started right now.")
    elif not state["workers"]:
        st.warning("No worker is running, so new jobs wait in the queue. Start the dashboard with "
                   "`tunescope ui` (it starts a worker too), or run `tunescope worker` in another terminal.")


def _dataset_chosen() -> None:
    st.session_state.pop("_train_dataset_vanished", None)


def training_form() -> None:
    choices = dataset_choices()
    keys = list(choices)
    wanted = st.query_params.get("dataset")
    index = keys.index(wanted) if wanted in keys else 0
    if wanted and wanted not in keys and st.session_state.get("_train_link_seen") != wanted:
        # A link to a dataset that is gone (the Data page's "Train on X" after a delete) is the same
        # trap as a vanished choice: never silently the first demo instead.
        st.session_state["_train_link_seen"] = wanted
        st.session_state["_train_dataset_seen"] = wanted
    # A dataset chosen here and then deleted (in another tab, or by someone else) must never turn into
    # the first one in the list: Streamlit would silently fall back to it, and Start would train on it.
    seen = st.session_state.get("_train_dataset_seen")
    if seen and seen not in keys:
        st.session_state["_train_dataset_vanished"] = seen
        st.session_state.pop("train_dataset", None)
        st.session_state.pop("_train_dataset_seen", None)
    vanished = st.session_state.get("_train_dataset_vanished")
    col_data, col_model = st.columns(2)
    with col_data:
        key = st.selectbox("Dataset", keys, index=None if vanished else index,
                           format_func=lambda k: choices[k]["label"], key="train_dataset", help=DATA_HELP["source"],
                           placeholder="choose a dataset…", on_change=_dataset_chosen)
        if key is None:
            shown = vanished.split(":", 1)[-1] if vanished else "?"
            st.error(f"The dataset {md(repr(shown))} you chose is gone (deleted, perhaps from another tab); nothing "
                     "was queued. Choose a dataset again to continue.")
            return
        st.session_state["_train_dataset_seen"] = key
        if st.query_params.get("dataset") != key:
            st.query_params["dataset"] = key  # a reload, or the link, opens this dataset again
        choice = choices[key]
        info = dataset_info(choice["source"], choice["text_column"], choice["label_column"], choice["mtime"])
        task, labels, sizes = info["task"], info["labels"], info["sizes"]
        shown = ", ".join(labels[:6]) + (", …" if len(labels) > 6 else "")
        st.caption(f"**{md(task)}** · {len(labels)} classes ({md(shown)}) · {sum(sizes.values()):,} examples: "
                   f"{sizes.get('train', 0):,} train / {sizes.get('validation', 0):,} validation / "
                   f"{sizes.get('test', 0):,} test")
        st.caption(md(choice["about"]))
        if info["warnings"]:
            with st.expander(f"Data warnings ({len(info['warnings'])})"):
                for w in info["warnings"]:
                    st.markdown(f"- {md(w)}")
    with col_model:
        option = st.selectbox("Model", tf.model_options(task), key=f"train_model_{task}", help=MODEL_HELP["name"],
                              bind="query-params")
        other = None
        if option == tf.OTHER_MODEL:
            other = st.text_input("Hugging Face id or local folder", key=f"train_model_other_{task}",
                                  placeholder="e.g. prajjwal1/bert-tiny" if task == "text" else
                                  "e.g. google/vit-base-patch16-224 or resnet18")
        model = option if option != tf.OTHER_MODEL else (other or "").strip()
        if model:
            st.caption(md(tf.model_card_text(model, model_params(model, task, len(labels)))))
        else:
            st.caption("Type a model id or folder above.")

    # Hyper-parameters first (they feed the per-method estimates), shown below the method choice.
    method_slot = st.container()
    with st.expander("Hyper-parameters"):
        a, b, c = st.columns(3)
        st.caption("0 = default: all examples, epochs chosen from the data size, the method's learning rate, "
                   "the model's image size. The line under the estimate shows what the defaults became.")
        max_examples = a.number_input("Max examples (0 = default)", min_value=0, max_value=10_000_000, value=0,
                                      step=100, key="train_max_examples", help=DATA_HELP["max_samples"],
                                      bind="query-params")
        epochs = b.number_input("Epochs (0 = default)", min_value=0, max_value=1000, value=0, step=1,
                                key="train_epochs", help=TRAIN_HELP["epochs"], bind="query-params")
        batch_size = c.number_input("Batch size", min_value=1, max_value=4096, value=32, step=8,
                                    key="train_batch_size", help=TRAIN_HELP["batch_size"], bind="query-params")
        lr = a.number_input("Learning rate (0 = default)", min_value=0.0, max_value=1.0, value=0.0, step=1e-5,
                            format="%g", key="train_lr", help=TRAIN_HELP["lr"], bind="query-params")
        if task == "text":
            max_length = b.number_input("Max length (tokens)", min_value=8, max_value=8192, value=128, step=16,
                                        key="train_max_length", help=MODEL_HELP["max_length"], bind="query-params")
            image_size = 0
        else:
            image_size = b.number_input("Image size (0 = default)", min_value=0, max_value=2048, value=0, step=32,
                                        key="train_image_size", help=MODEL_HELP["image_size"], bind="query-params")
            max_length = 128
        n_seeds = c.number_input("Seeds", min_value=1, max_value=tf.MAX_SEEDS, value=1, step=1, key="train_seeds",
                                 help="Train the same setup n times with seeds 1..n (one job each, in one "
                                      "group) to see how much the result varies by chance.", bind="query-params")

    run_sizes = tf.scaled_sizes(sizes, int(max_examples) or None)
    n_epochs = TrainConfig(epochs=int(epochs) or None).epochs_for(run_sizes.get("train", 0))
    img = int(image_size) or (tf.auto_image_size(model, info["median_side"]) if task == "image" and model else None)
    dev = device_summary()
    threads = int(dev.get("cpu_cores") or 2)
    estimates = {m: tf.estimate(model, task, m, batch_size=int(batch_size), max_length=int(max_length),
                                image_size=img, num_labels=len(labels), sizes=run_sizes, epochs=n_epochs,
                                mean_words=info["mean_words"], device=dev.get("kind", "cpu"), threads=threads)
                 if model else (None, None) for m in tf.METHODS}

    with method_slot:
        captions = []
        for m in tf.METHODS:
            mem, tim = estimates[m]  # the per-method estimate already counts its trainable parameters
            trainable = mem.trainable if mem is not None else None
            captions.append(f"{tf.method_help(m)} · {fmt_count(trainable) if trainable else '?'} trainable"
                            + (f" · {tf.rough_duration(tim.seconds)}" if tim else ""))
        method = st.radio("Method", list(tf.METHODS), index=tf.METHODS.index(DEFAULT_METHOD), captions=captions,
                          key="train_method", horizontal=False, help=TRAIN_HELP["method"], bind="query-params")
        st.caption(tf.method_when(method))  # about the method chosen now, not always about head

    mem, tim = estimates[method]
    lr_text = f"{lr:g}" if lr else f"{tf.default_lr(task, method):g} (default for {method})"
    st.caption(f"Training on {run_sizes.get('train', 0):,} examples for {n_epochs} epoch(s)"
               f"{' (default)' if not epochs else ''} · learning rate {lr_text}"
               + (f" · images at {img} px" if task == "image" and img else ""))
    st.info("**Estimate:** " + tf.estimate_text(mem, tim, dev, n_runs=int(n_seeds)))
    if tim is not None:
        st.caption(f"How: {tim.basis}. Right within a factor of about 2.")
    gpus = dev.get("gpus") or []
    if mem is not None and gpus and mem.gib > gpus[0]["memory_gib"]:
        st.warning(f"This needs about {mem.gib:.1f} GiB but the GPU has {gpus[0]['memory_gib']:.0f} GiB; use head "
                   "or lora, a smaller batch size or a shorter max length.")

    if st.button("Start training", type="primary", key="train_start"):
        submit(choice, task, option, other, method, max_examples=int(max_examples), epochs=int(epochs),
               batch_size=int(batch_size), lr=float(lr), max_length=int(max_length), image_size=int(image_size),
               n_seeds=int(n_seeds))


def submit(choice: dict[str, Any], task: str, option: str, other: str | None, method: str, *, n_seeds: int,
           **values: Any) -> None:
    with st.spinner("Checking the data and queuing..."):
        try:
            cfg = tf.build_config(source=choice["source"], task=task, model=tf.chosen_model(option, other),
                                  method=method, text_column=choice["text_column"],
                                  label_column=choice["label_column"], **values)
            seeds = tf.seeds_for(n_seeds)
            fingerprint = f"{cfg.to_json()}|{seeds}"
            last = st.session_state.get("_train_last_submit")
            if last and last[0] == fingerprint and time.time() - last[1] < 5:
                st.info(f"This exact run was just queued ({', '.join(last[2])}); it is in the list below.")
                return
            ids = ws.submit_training(actor(), cfg, seeds=seeds, check_device=False)
        except TunescopeError as exc:
            st.error(md(exc))
            return
    st.session_state["_train_last_submit"] = (fingerprint, time.time(), ids)
    st.session_state["train_submitted"] = ids
    if len(ids) == 1:
        st.success(f"Queued job {ids[0]}. Follow it below; it opens as a run when it finishes.")
    else:
        st.success(f"Queued {len(ids)} jobs (seeds 1 to {len(ids)}, one group): {', '.join(ids)}.")


st.title("Train")
with guard("preparing the training form"):
    worker_notice()
    if actor().can_write:
        training_form()
    else:
        st.info("Your account (viewer) can look at shared work but not start training; the jobs below are "
                "the ones you may see.")

st.subheader("Jobs")
with guard("showing the jobs"):
    mine_col, curves_col = st.columns(2)
    me = actor()
    if me.is_instructor:
        only_mine = mine_col.toggle("Only jobs started in this browser" if me.local else "Only my jobs",
                                    key="train_only_mine", bind="query-params")
    else:  # everyone else's jobs are not theirs to see: the queue places still count them
        only_mine = True
        mine_col.caption("Your jobs (your place in the queue counts everyone's).")
    # Plain option values: a bound widget writes what it shows into the URL.
    curves = curves_col.segmented_control(
        "Live curves of running jobs", ["mine", "all"], default="mine", key="train_curves", required=True,
        bind="query-params",
        help="mine: each running job started in this browser (every seed of a group too) shows its curve "
             "as it trains. all: everyone's running jobs do (more to redraw on a busy server).")
    started = [*st.session_state.get("train_submitted", ()), *st.query_params.get_all("job")]
    job_list(limit=20, owner=owner() if only_mine else None, mine=owner(), highlight=started,
             all_curves=curves == "all", key="train_jobs")
