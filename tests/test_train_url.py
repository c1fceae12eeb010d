"""The Train page keeps its state in the URL: a reload or a shared link opens the same form, the same
"only my jobs" toggle and the same live-curve choice; Home's "Train the demo" opens the form on the job
it started; the line under the method choice is about the method chosen now."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

from apptest_support import open_app_page

from core import jobs
from core.config import RunConfig
from core.train.submit import submit_training


def _captions(at) -> str:  # noqa: ANN001
    return "\n".join(c.value for c in at.caption)


def test_a_link_opens_the_form_with_its_choices(home: Path) -> None:
    at = open_app_page("train", dataset="demo:sentiment", train_method="full", train_max_examples="2000",
                       train_epochs="3", train_only_mine="true", train_curves="all")
    assert at.selectbox(key="train_dataset").value == "demo:sentiment"
    assert at.radio(key="train_method").value == "full"
    assert at.number_input(key="train_max_examples").value == 2000
    assert at.number_input(key="train_epochs").value == 3
    assert at.toggle(key="train_only_mine").value is True
    assert at.segmented_control(key="train_curves").value == "all"
    # What the estimate is about follows the link, not the defaults of the full demo.
    assert "for 3 epoch(s) · learning rate" in _captions(at)
    assert "Training on 1,400 examples" in _captions(at), _captions(at)


def test_invalid_values_in_a_link_fall_back_to_the_defaults(home: Path) -> None:
    at = open_app_page("train", train_method="magic", train_max_examples="-5", train_curves="everything")
    assert not at.error
    assert at.radio(key="train_method").value == "head"
    assert at.number_input(key="train_max_examples").value == 0
    assert at.segmented_control(key="train_curves").value == "mine"


def test_the_method_line_follows_the_choice(home: Path) -> None:
    at = open_app_page("train")
    assert "Pick **head**" in _captions(at) and "preselected" in _captions(at)
    at.radio(key="train_method").set_value("lora").run()
    assert "Pick **lora**" in _captions(at) and "Pick **head**" not in _captions(at)
    assert "preselected" not in _captions(at)


def test_one_default_convention_in_the_hyper_parameters(home: Path) -> None:
    at = open_app_page("train")
    labels = [n.label for n in at.number_input]
    with_zero = [label for label in labels if "0 =" in label]
    assert with_zero and all(label.endswith("(0 = default)") for label in with_zero), labels


def _running(store, owner: str, seeds: list[int]) -> list:  # noqa: ANN001
    ids = submit_training(RunConfig(), seeds=seeds, validate=False, check_device=False, owner=owner)
    out = []
    for _ in ids:
        job = store.claim("w-test", socket.gethostname(), os.getpid(), "cpu")
        store.report_progress(job.id, job.attempts, {"phase": "train", "step": 20, "total_steps": 100,
                                                     "epoch": 1, "epochs": 5})
        run_dir = jobs.get(job.id).run_dir
        run_dir.mkdir(parents=True)
        rows = [{"type": "step", "step": s, "epoch": s / 20, "loss": 1 / s} for s in range(2, 22, 2)]
        (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        out.append(job.id)
    return out


def test_every_running_job_of_mine_shows_its_curve_without_a_toggle(home: Path) -> None:
    sid = "0123456789abcdef"
    store = jobs.open_store()
    mine = _running(store, f"ui-{sid}", [1, 2])  # a seed group of this browser's, both seeds running
    theirs = _running(store, "ui-someone-else", [7])
    at = open_app_page(None)
    at.session_state["_tunescope_sid"] = sid  # the id this browser's cookie carries
    at.switch_page("views/train.py").run()
    assert not at.exception and not at.toggle(key="train_only_mine").value
    charted = {j for j in (*mine, *theirs) for c in at.get("plotly_chart") if c.proto.id and j in c.proto.id}
    assert charted == set(mine)
    assert not [t for t in at.toggle if t.key != "train_only_mine"]  # no per-job switches
    at.segmented_control(key="train_curves").set_value("all").run()
    charted = {j for j in (*mine, *theirs) for c in at.get("plotly_chart") if c.proto.id and j in c.proto.id}
    assert charted == {*mine, *theirs}


def test_train_the_demo_opens_the_form_on_the_job_it_started(home: Path) -> None:
    at = open_app_page(None)
    at.button(key="home_train_demo").click().run()
    assert not at.exception and at.title[0].value == "Train"
    job_id = at.session_state["last_job"]
    assert at.number_input(key="train_max_examples").value == 2000
    assert at.radio(key="train_method").value == "head"
    assert "Training on 1,400 examples" in _captions(at)  # the demo job's own estimate, not the full demo's
    assert any(job_id in m.value and "**new**" in m.value for m in at.markdown)
