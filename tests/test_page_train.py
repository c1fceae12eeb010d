"""The Train page and the live job list (AppTest), and the pure helpers in dashboard/train_form.py."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from apptest_support import open_app_page, plain
from streamlit.testing.v1 import AppTest

from core import jobs
from core.config import RunConfig
from core.errors import ConfigError
from core.train.callbacks import merge_metric_rows
from core.train.submit import submit_training
from dashboard import train_form as tf

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "dashboard" / "app.py")


def open_train() -> AppTest:
    return open_app_page("train")


def progress_texts(at: AppTest) -> list[str]:
    return [p.text for p in at.get("progress")]


def error_texts(at: AppTest) -> list[str]:
    return [plain(e.value) for e in at.error]


# -- the form ----------------------------------------------------------------------------------------

def test_defaults_render_with_an_estimate(home: Path) -> None:
    at = open_train()
    assert at.selectbox(key="train_dataset").value == "demo:sentiment"
    assert at.selectbox(key="train_model_text").value == "minilm"
    method = at.radio(key="train_method")
    assert method.value == "head" and method.options == ["full", "head", "topk", "lora"]
    captions = " ".join(plain(c.value) for c in at.caption)
    assert "2 classes (negative, positive)" in captions and "7,396 train" in captions
    assert "Apache-2.0" in captions and "22.6M parameters" in captions  # model card with the estimated size
    estimate = [i.value for i in at.info if i.value.startswith("**Estimate:**")]
    assert len(estimate) == 1
    assert "GiB memory" in estimate[0] and (" on CPU (" in estimate[0] or " on GPU (" in estimate[0])
    # each method says what it trains and how many parameters that is
    radio_captions = list(method.proto.captions)
    assert "770 trainable" in radio_captions[1] and "10.6M trainable" in radio_captions[0]
    assert not error_texts(at)
    assert any("No worker is running" in w.value for w in at.warning)
    assert any("No jobs yet" in c.value for c in at.caption)


def test_estimate_follows_the_settings(home: Path) -> None:
    at = open_train()
    before = next(i.value for i in at.info if i.value.startswith("**Estimate:**"))
    at.radio(key="train_method").set_value("full").run()
    full = next(i.value for i in at.info if i.value.startswith("**Estimate:**"))
    assert full != before  # more memory for gradients and optimizer state
    at.number_input(key="train_seeds").set_value(3).run()
    assert "3 runs" in next(i.value for i in at.info if i.value.startswith("**Estimate:**"))


def test_start_training_queues_a_job_that_cancel_removes(home: Path) -> None:
    at = open_train()
    at.number_input(key="train_max_examples").set_value(200)
    at.button(key="train_start").click().run()
    assert not at.exception and not error_texts(at)
    queued = jobs.list_jobs()
    assert len(queued) == 1
    job = queued[0]
    cfg = RunConfig.from_dict(job.config)
    assert cfg.data.source == "demo:sentiment" and cfg.data.max_samples == 200
    assert cfg.train.method == "head" and cfg.model.name == "minilm" and cfg.train.epochs is None
    assert job.state == "queued" and job.group_id is None
    assert any(job.id in s.value for s in at.success)
    # the live list shows it as queued, with a Cancel button
    assert "queued: waiting for a worker" in progress_texts(at)
    assert any(job.id in m.value and "queued" in m.value for m in at.markdown)
    cancel = at.button(key=f"train_jobs_cancel_{job.id}")
    assert cancel.label == "Cancel"
    cancel.click().run()
    assert not at.exception
    assert jobs.get(job.id).state == "cancelled"
    assert any("Cancelled before it started" in c.value for c in at.caption)
    assert not [b for b in at.button if b.key == f"train_jobs_cancel_{job.id}"]


def test_three_seeds_queue_one_group(home: Path) -> None:
    at = open_train()
    at.number_input(key="train_max_examples").set_value(200)
    at.number_input(key="train_seeds").set_value(3)
    at.button(key="train_start").click().run()
    assert not error_texts(at)
    queued = jobs.list_jobs()
    assert len(queued) == 3
    assert len({j.group_id for j in queued}) == 1 and queued[0].group_id
    assert sorted(j.tags["seed"] for j in queued) == [1, 2, 3]
    assert sorted(RunConfig.from_dict(j.config).train.seed for j in queued) == [1, 2, 3]
    assert len(progress_texts(at)) == 3


def test_a_double_click_queues_once(home: Path) -> None:
    at = open_train()
    at.number_input(key="train_max_examples").set_value(200)
    at.button(key="train_start").click().run()
    at.button(key="train_start").click().run()
    assert len(jobs.list_jobs()) == 1
    assert any("just queued" in i.value for i in at.info)


def test_a_saved_dataset_trains_from_its_stored_file(home: Path, sentiment_csv: Path) -> None:
    from core.data.store import save_dataset

    saved = save_dataset("my-reviews", sentiment_csv)
    at = open_train()
    assert "my-reviews · saved text dataset" in at.selectbox(key="train_dataset").options
    at.selectbox(key="train_dataset").set_value("saved:my-reviews").run()
    assert any("2 classes (negative, positive)" in plain(c.value) and "240 examples" in c.value for c in at.caption)
    at.button(key="train_start").click().run()
    assert not error_texts(at)
    (job,) = jobs.list_jobs()
    assert job.config["data"]["source"] == saved.path
    assert any("my-reviews · minilm · head" in plain(m.value) for m in at.markdown)


def test_a_missing_model_folder_is_an_error_and_queues_nothing(home: Path) -> None:
    at = open_train()
    at.selectbox(key="train_model_text").set_value(tf.OTHER_MODEL).run()
    at.text_input(key="train_model_other_text").input("./nope").run()
    at.button(key="train_start").click().run()
    assert not at.exception
    assert any("./nope" in e for e in error_texts(at)), error_texts(at)
    assert jobs.list_jobs() == []


def test_invalid_numbers_are_errors_and_queue_nothing(home: Path) -> None:
    at = open_train()
    at.number_input(key="train_max_examples").set_value(5)
    at.button(key="train_start").click().run()
    assert any("Max examples must be 0 (all) or at least 10" in e for e in error_texts(at))
    at.number_input(key="train_max_examples").set_value(0)
    at.selectbox(key="train_model_text").set_value(tf.OTHER_MODEL).run()
    at.button(key="train_start").click().run()  # "Other" with nothing typed
    assert any("Type a Hugging Face model id" in e for e in error_texts(at))
    assert jobs.list_jobs() == []


def test_image_demo_switches_model_and_size_fields(home: Path) -> None:
    at = open_train()
    at.selectbox(key="train_dataset").set_value("demo:digits").run()
    assert not at.exception and not error_texts(at)
    assert at.selectbox(key="train_model_image").value == "efficientnet_lite0"
    assert at.number_input(key="train_image_size").value == 0
    assert not [n for n in at.number_input if n.key == "train_max_length"]
    assert any("images at 64 px" in c.value for c in at.caption)  # 8 px digits -> 4x, at least 64


def test_the_pages_do_not_import_torch(home: Path) -> None:
    """The UI process must stay torch-free (start-up time, memory, the worker owns the device)."""
    code = (
        "import sys\n"
        "from streamlit.testing.v1 import AppTest\n"
        f"at = AppTest.from_file({APP!r}, default_timeout=60); at.run()\n"
        "at.switch_page('views/train.py').run(); assert not at.exception\n"
        "at.switch_page('views/runs.py').run(); assert not at.exception\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'captum') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ})
    assert proc.returncode == 0, proc.stderr[-2000:]


# -- the job list ------------------------------------------------------------------------------------

def _running_job(progress: dict) -> jobs.Job:
    (job_id,) = submit_training(RunConfig(), validate=False, check_device=False, owner="someone-else")
    store = jobs.open_store()
    job = store.claim("w-test", socket.gethostname(), os.getpid(), "cpu")
    assert job is not None and job.id == job_id
    assert store.report_progress(job.id, job.attempts, progress) == "ok"
    return jobs.get(job.id)


def test_running_job_shows_progress_and_a_live_curve(home: Path) -> None:
    job = _running_job({"phase": "train", "step": 120, "total_steps": 400, "epoch": 0.6, "epochs": 2,
                        "samples_per_second": 45.2, "eta_s": 70, "loss": 0.4321,
                        "last_epoch": {"epoch": 1, "val_accuracy": 0.8125, "val_macro_f1": 0.8}})
    run_dir = job.run_dir
    run_dir.mkdir(parents=True)
    rows = [{"type": "step", "step": s, "epoch": s / 200, "loss": 1 / s} for s in range(10, 130, 10)]
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    at = open_train()
    assert "step 120/400 · epoch 1/2 · 45 samples/s · loss 0.432 · ETA 1 min 10 s" in progress_texts(at)
    bar = next(p for p in at.get("progress") if p.text.startswith("step 120/400"))
    assert bar.value == 30
    assert any("validation accuracy 0.812" in c.value for c in at.caption)

    def curves() -> list:
        return [c for c in at.get("plotly_chart") if c.proto.id and job.id in c.proto.id]

    assert curves() == []  # someone else's job: not redrawn for everyone unless they ask for all curves
    assert at.segmented_control(key="train_curves").value == "mine"
    at.segmented_control(key="train_curves").set_value("all").run()
    curves = curves()
    assert len(curves) == 1
    spec = json.loads(curves[0].proto.spec)
    assert spec["data"][0]["x"] == [r["step"] for r in rows]
    # someone else's running job: Cancel asks for a confirmation first
    at.button(key=f"train_jobs_cancel_{job.id}").click().run()
    assert jobs.get(job.id).cancel_requested is None
    confirm = at.button(key=f"train_jobs_cancel_{job.id}")
    assert confirm.label == "Yes, cancel it"
    confirm.click().run()
    assert jobs.get(job.id).cancel_requested is not None
    assert any(c.value == "stopping…" for c in at.caption)


def test_other_phases_show_their_progress(home: Path) -> None:
    _running_job({"phase": "features:train", "phase_done": 300, "phase_total": 2000})
    at = open_train()
    assert "caching features (train) 300/2,000" in progress_texts(at)


def test_failed_and_succeeded_jobs(home: Path) -> None:
    failed = _running_job({"phase": "train", "step": 1, "total_steps": 10})
    jobs.open_store().update(failed.id, state="failed", error="The dataset vanished: /x/reviews.csv is gone.")
    ok = _running_job({"phase": "train", "step": 10, "total_steps": 10})
    jobs.open_store().update(ok.id, state="succeeded", result={"test": {"accuracy": 0.875, "macro_f1": 0.87}})
    at = open_train()
    assert any("The dataset vanished: /x/reviews.csv is gone." in e for e in error_texts(at))
    links = [p for p in at.get("page_link") if p.proto.label == "Open run"]
    assert len(links) == 1
    assert links[0].proto.page.endswith("runs") or links[0].proto.page.endswith("runs.py")
    assert links[0].proto.query_string == f"run={ok.run_id}"
    assert any("test accuracy 0.875" in c.value for c in at.caption)
    assert not [b for b in at.button if b.key and b.key.startswith("train_jobs_cancel_")]


# -- pure helpers ------------------------------------------------------------------------------------

def test_build_config_maps_zero_to_auto() -> None:
    cfg = tf.build_config(source="demo:sentiment", task="text", model="minilm", method="head")
    assert cfg.data.max_samples is None and cfg.train.epochs is None and cfg.train.lr is None
    assert cfg.model.image_size is None and cfg.model.max_length == 128 and cfg.train.batch_size == 32
    cfg = tf.build_config(source="demo:digits", task="image", model="efficientnet_lite0", method="full",
                          max_examples=500, epochs=3, batch_size=16, lr=1e-3, image_size=96, text_column="x")
    assert (cfg.data.max_samples, cfg.train.epochs, cfg.train.batch_size, cfg.train.lr) == (500, 3, 16, 1e-3)
    assert cfg.model.image_size == 96 and cfg.data.text_column == "x"
    # image_size only applies to images
    assert tf.build_config(source="s.csv", task="text", model="m", image_size=96).model.image_size is None


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"max_examples": 5}, "Max examples"), ({"epochs": -1}, "Epochs"), ({"lr": -0.1}, "Learning rate"),
    ({"image_size": 4, "task": "image"}, "Image size"), ({"model": "  "}, "Choose a model"),
    ({"source": ""}, "Choose a dataset"), ({"method": "magic"}, "Method"), ({"batch_size": 0}, "batch_size"),
    ({"max_length": 4}, "max_length"),
])
def test_build_config_rejects_bad_values(kwargs: dict, message: str) -> None:
    args = {"source": "demo:sentiment", "task": "text", "model": "minilm", **kwargs}
    with pytest.raises(ConfigError, match=message):
        tf.build_config(**args)


def test_model_choice_and_seeds() -> None:
    assert tf.model_options("text") == ["minilm", tf.OTHER_MODEL]
    assert tf.model_options("image")[0] == "efficientnet_lite0"
    assert tf.chosen_model("minilm", "ignored") == "minilm"
    assert tf.chosen_model(tf.OTHER_MODEL, "  org/model ") == "org/model"
    with pytest.raises(ConfigError):
        tf.chosen_model(tf.OTHER_MODEL, "")
    assert tf.seeds_for(1) is None and tf.seeds_for(3) == [1, 2, 3]
    with pytest.raises(ConfigError):
        tf.seeds_for(11)


def test_sizes_tokens_and_image_size() -> None:
    sizes = {"train": 700, "validation": 100, "test": 200}
    assert tf.scaled_sizes(sizes, None) == sizes and tf.scaled_sizes(sizes, 5000) == sizes
    assert tf.scaled_sizes(sizes, 200) == {"train": 140, "validation": 20, "test": 40}
    assert tf.mean_tokens(10, 128) == pytest.approx(15.0) and tf.mean_tokens(1000, 128) == 128
    assert tf.auto_image_size("efficientnet_lite0", 28) == 128  # 4 x 28 = 112 -> a multiple of 32, as core.api
    assert tf.auto_image_size("efficientnet_lite0", 8) == 64 and tf.auto_image_size("resnet18", 500) == 224
    assert tf.auto_image_size("google/vit-base-patch16-224", 28) is None


def test_estimates_are_torch_free_and_rank_methods() -> None:
    out = subprocess.run([sys.executable, "-c", (
        "import sys, json\n"
        "from dashboard import train_form as tf\n"
        "s = {'train': 7396, 'validation': 1057, 'test': 2113}\n"
        "r = {m: tf.estimate('minilm', 'text', m, batch_size=32, max_length=128, image_size=None, num_labels=2,"
        " sizes=s, epochs=1, mean_words=19) for m in ('full', 'head')}\n"
        "print(json.dumps({m: [e.trainable, t.seconds] for m, (e, t) in r.items()}))\n"
        "print('torch' in sys.modules)\n")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    first, torch_loaded = out.stdout.strip().splitlines()
    est = json.loads(first)
    assert torch_loaded == "False"
    assert est["head"][0] == 770 and est["full"][0] > 1_000_000
    assert est["head"][1] < est["full"][1]


def test_estimate_text_and_durations() -> None:
    assert tf.rough_duration(30) == "under a minute" and tf.rough_duration(130) == "about 2 min"
    assert tf.rough_duration(2 * 3600 + 5 * 60) == "about 2 h 05 min"
    cpu = {"kind": "cpu", "gpus": [], "cpu_cores": 2}
    mem = type("Mem", (), {"gib": 0.78})()
    tim = type("Time", (), {"seconds": 130.0})()
    assert tf.estimate_text(mem, tim, cpu) == "about 0.8 GiB memory · about 2 min on CPU (2 cores)"
    assert "3 runs" in tf.estimate_text(mem, tim, cpu, n_runs=3)
    assert "memory unknown" in tf.estimate_text(None, None, cpu)
    gpu = {"kind": "cuda", "gpus": [{"name": "NVIDIA H100", "memory_gib": 80}], "cpu_cores": 16}
    assert tf.estimate_text(mem, tim, gpu).endswith("on GPU (NVIDIA H100)")
    assert tf.estimate("no/such-model-xyz", "text", "full", batch_size=32, max_length=128, image_size=None,
                       num_labels=2, sizes={"train": 10}, epochs=1) == (None, None)


@pytest.mark.parametrize(("state", "progress", "error", "expected"), [
    ("queued", {}, None, (0.0, "queued: waiting for a worker")),
    ("running", {}, None, (0.0, "starting: loading the data and the model")),
    ("running", {"phase": "train", "step": 400, "total_steps": 400, "epoch": 2.0, "epochs": 2},
     None, (1.0, "step 400/400 · epoch 2/2")),
    ("running", {"phase": "predict:test", "phase_done": 50, "phase_total": 200}, None,
     (0.25, "predicting (test) 50/200")),
    ("running", {"phase": "finishing", "step": 10, "total_steps": 10}, None, (1.0, "saving the model")),
    ("interrupted", {"step": 200, "total_steps": 400}, None,
     (0.5, "interrupted at step 200: resumes when a worker is free")),
    ("failed", {}, "boom", (None, "boom")),
    ("succeeded", {}, None, (1.0, "done")),
])
def test_progress_view(state: str, progress: dict, error: str | None, expected: tuple) -> None:
    assert tf.progress_view(state, progress, error) == expected


def test_merge_metric_rows_handles_resume_and_rereads() -> None:
    rows = merge_metric_rows([], [{"type": "step", "step": s, "loss": 1.0} for s in (10, 20, 30)])
    rows = merge_metric_rows(rows, [{"type": "resume", "step": 20},
                                       {"type": "step", "step": 30, "loss": 0.5}])
    assert [(r["step"], r["loss"]) for r in rows] == [(10, 1.0), (20, 1.0), (30, 0.5)]
    again = merge_metric_rows(rows, rows)  # the same rows read twice: no duplicates
    assert len(again) == 3


def test_job_labels() -> None:
    assert tf.source_label("demo:news") == "demo:news"
    assert tf.source_label("/h/datasets/my-reviews/data.csv") == "my-reviews"
    assert tf.source_label("/tmp/x/reviews.csv") == "reviews.csv"
    cfg = RunConfig().to_dict()
    cfg["model"]["name"], cfg["train"]["method"], cfg["train"]["seed"] = "minilm", "lora", 2
    cfg["data"]["max_samples"] = 2000
    assert tf.job_title(cfg) == "demo:sentiment · minilm · lora · 2,000 examples · seed 2"


def test_a_dataset_deleted_meanwhile_blocks_start_and_never_falls_back(home: Path, sentiment_csv: Path) -> None:
    # Trust fixes, item 15b: deleting the chosen dataset in a second tab and pressing Start in the first
    # queued a fine-tune on the sentiment demo.
    from core.data.store import delete_dataset, save_dataset

    save_dataset("classdata", sentiment_csv)
    at = open_train()
    at.selectbox(key="train_dataset").set_value("saved:classdata").run()
    delete_dataset("classdata")  # the other tab
    at.button(key="train_start").click().run()
    assert not at.exception
    assert any("'classdata' you chose is gone" in e and "nothing was queued" in e for e in error_texts(at))
    assert jobs.list_jobs() == []
    assert not [b for b in at.button if b.key == "train_start"]
    at.run()  # still blocked on the next rerun, until a dataset is chosen
    assert jobs.list_jobs() == [] and error_texts(at)
    at.selectbox(key="train_dataset").set_value("demo:sentiment").run()
    assert not error_texts(at) and at.button(key="train_start")


def test_a_link_to_a_dataset_that_is_gone_never_falls_back_to_the_demo(home: Path) -> None:
    at = open_app_page("train", dataset="saved:gone")
    assert any("'gone' you chose is gone" in e for e in error_texts(at)), error_texts(at)
    assert not [b for b in at.button if b.key == "train_start"]
    at.selectbox(key="train_dataset").set_value("demo:sentiment").run()
    assert not error_texts(at) and at.button(key="train_start")


# -- the job list at a glance (issue 14, item 4) -------------------------------------------------------

def _job_headings(at: AppTest) -> list[str]:
    """The first line of each card (a single job's state line or a group's '<n> seeds' line), in order."""
    return [m.value for m in at.markdown
            if (m.value.startswith(":") and "`" in m.value) or (m.value.startswith("**") and "seeds**" in m.value)]


def test_running_first_then_queued_with_its_place_then_finished(home: Path) -> None:
    store = jobs.open_store()
    done = _running_job({"phase": "train", "step": 10, "total_steps": 10})
    store.update(done.id, state="succeeded", finished=1.0)
    first = _running_job({"phase": "train", "step": 1, "total_steps": 10}).id
    (second,) = submit_training(RunConfig(), validate=False, check_device=False, owner="b")
    (third,) = submit_training(RunConfig(), validate=False, check_device=False, owner="c")
    at = open_train()
    heads = _job_headings(at)
    order = [next(i for i, h in enumerate(heads) if job_id in h) for job_id in (first, second, third, done.id)]
    assert order == sorted(order), heads
    assert "**1st in queue**" in heads[order[1]] and "**2nd in queue**" in heads[order[2]]
    assert "in queue" not in heads[order[0]] + heads[order[3]]
    assert any(c.value == "Jobs: 1 running, 2 queued" for c in at.sidebar.caption)
    # the sidebar follows the list: cancel a queued job and both change together
    at.button(key=f"train_jobs_cancel_{third}").click().run()  # someone else's: it asks first
    at.button(key=f"train_jobs_cancel_{third}").click().run()
    assert jobs.get(third).state == "cancelled"
    assert any(c.value == "Jobs: 1 running, 1 queued" for c in at.sidebar.caption)
    assert not any(c.value == "Jobs: 1 running, 2 queued" for c in at.sidebar.caption)


def test_a_seed_group_is_one_card_with_a_line_per_seed(home: Path) -> None:
    ids = submit_training(RunConfig(), seeds=[1, 2, 3], validate=False, check_device=False, owner="t")
    store = jobs.open_store()
    store.update(ids[0], state="succeeded", finished=5.0)
    at = open_train()
    cards = [m.value for m in at.markdown if "3 seeds**" in m.value]
    assert len(cards) == 1 and "seed 1" not in cards[0]  # the shared title has no seed in it
    lines = [m.value for m in at.markdown if m.value.startswith("seed ")]
    assert [line.split(" · ")[0] for line in lines] == ["seed 1", "seed 2", "seed 3"]
    assert "succeeded" in lines[0] and "**1st in queue**" in lines[1] and "**2nd in queue**" in lines[2]
    assert any("1 succeeded, 2 queued" in c.value for c in at.caption)
    assert len(progress_texts(at)) == 2  # the two queued seeds; the finished one has its green bar


def test_finished_bars_are_green_grey_or_red_never_the_running_bar(home: Path) -> None:
    store = jobs.open_store()
    states = {}
    for state in ("succeeded", "cancelled", "failed"):
        job = _running_job({"phase": "train", "step": 5, "total_steps": 10})
        store.update(job.id, state=state, error=None if state == "succeeded" else f"{state} here")
        states[state] = job.id
    at = open_train()
    assert progress_texts(at) == []  # st.progress is the theme colour (red): only for unfinished work
    bars = [m.value for m in at.markdown if m.value.startswith("<div")]
    colours = {state: tf.BAR_COLOURS[state] for state in states}
    assert sorted(b.count(colours["succeeded"]) for b in bars) == [0, 0, 1]
    assert any(f"width:100.0%;background:{colours['succeeded']}" in b for b in bars)
    assert any(f"width:50.0%;background:{colours['cancelled']}" in b for b in bars)
    assert any(f"width:50.0%;background:{colours['failed']}" in b for b in bars)
    assert colours["cancelled"] != colours["failed"] and colours["succeeded"] != colours["failed"]


def test_an_explain_job_says_what_it_explains(home: Path) -> None:
    (job_id,) = jobs.submit({"op": "explain", "run": str(home / "runs" / "r-demo1"), "value": "a *great* film",
                             "methods": ["ig"], "target": None, "max_tokens": 64}, kind="explain", owner="t")
    at = open_train()
    head = next(m.value for m in at.markdown if job_id in m.value)
    assert "IG on run r-demo1" in plain(head) and 'text "a *great* film"' in plain(head)
    assert "\\*great\\*" in head  # the user's text is escaped


def test_feature_caching_shows_an_eta_of_its_own(home: Path) -> None:
    # the head method caches features before its first step; the stale training ETA (0 s) is not used,
    # the phase's own pace is: 200 examples in 10 s, 1,700 left
    _running_job({"phase": "features:train", "phase_done": 300, "phase_total": 2000, "phase_done0": 100,
                  "phase_started": 1000.0, "updated": 1010.0, "eta_s": 0.0})
    at = open_train()
    assert "caching features (train) 300/2,000 · ETA 1 min 25 s" in progress_texts(at)


def test_progress_view_eta_never_reads_zero_while_work_remains() -> None:
    _, text = tf.progress_view("running", {"phase": "train", "step": 399, "total_steps": 400, "eta_s": 0.02})
    assert text.endswith("ETA 1 s")
    _, text = tf.progress_view("running", {"phase": "features:train", "phase_done": 300, "phase_total": 1300,
                                           "phase_done0": 200, "phase_started": 0.0, "updated": 10.0,
                                           "eta_s": 0.0})
    assert text == "caching features (train) 300/1,300 · ETA 1 min 40 s"
    assert tf.finished_bar("running", {}) is None
    assert tf.finished_bar("succeeded", {}) == (1.0, tf.BAR_COLOURS["succeeded"])
    assert tf.finished_bar("cancelled", {"phase": "features:train", "phase_done": 1, "phase_total": 4}) \
        == (0.25, tf.BAR_COLOURS["cancelled"])
