"""Home page: the pitch, server status, one-click demo training and the tour links."""

from __future__ import annotations

from pathlib import Path

from apptest_support import plain
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")


def _home() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    return at


def test_home_explains_and_reports_no_worker(home: Path) -> None:
    at = _home()
    assert not at.exception
    assert at.title[0].value == "tunescope"
    assert "fine-tunes a pretrained model" in at.markdown[0].value
    warnings = " ".join(w.value for w in at.warning)
    assert "No worker is running" in warnings and "CPU (" in warnings
    assert [m.label for m in at.metric] == ["Runs", "Saved datasets", "Jobs running / queued"]
    links = [p.proto.label for p in at.get("page_link")]
    assert links[-6:] == ["1. Data", "2. Train", "3. Runs", "4. Compare", "5. Predict", "6. Explain"]


def test_home_counts_runs_and_shows_a_live_worker(fake_runs: Path) -> None:
    from core import jobs

    jobs.open_store().register_worker("w-test", {"host": "h", "pid": 1, "slots": ["cpu"], "threads": 1})
    at = _home()
    assert at.metric[0].value == "4"
    assert any("Worker running on CPU" in s.value for s in at.success)


def test_train_the_demo_queues_a_head_job_and_opens_train(home: Path) -> None:
    from core import jobs

    at = _home()
    at.button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    queued = jobs.list_jobs()
    assert len(queued) == 1
    cfg = queued[0].config
    assert cfg["data"]["source"] == "demo:sentiment" and cfg["data"]["max_samples"] == 2000
    assert cfg["train"]["method"] == "head"
    assert at.session_state["last_job"] == queued[0].id
    assert at.title[0].value == "Train"  # switched to the page with the live job list


def test_a_second_click_reopens_the_pending_demo_job(home: Path) -> None:
    from core import jobs

    at = _home()
    at.button(key="home_train_demo").click().run()
    first = at.session_state["last_job"]
    at.switch_page("views/home.py").run()
    at.button(key="home_train_demo").click().run()  # still queued: no duplicate in the shared queue
    assert [j.id for j in jobs.list_jobs()] == [first]
    assert at.title[0].value == "Train"
    jobs.cancel(first)  # once it is over, the button queues a fresh one
    at.switch_page("views/home.py").run()
    at.button(key="home_train_demo").click().run()
    assert len(jobs.list_jobs()) == 2 and at.session_state["last_job"] != first


def test_a_failed_submission_is_a_message_and_stays_home(home: Path, monkeypatch) -> None:
    from core import jobs
    from core.errors import DataError
    from core.train import submit as train_submit

    at = _home()

    def broken(*args, **kwargs):
        raise DataError("Demo dataset 'sentiment' is missing; reinstall tunescope.")

    monkeypatch.setattr(train_submit, "submit_training", broken)
    at.button(key="home_train_demo").click().run()
    assert not at.exception
    assert at.title[0].value == "tunescope"
    assert "could not be queued: Demo dataset 'sentiment' is missing" in plain(at.error[0].value)

    def locked(*args, **kwargs):
        raise OSError("database is locked")

    monkeypatch.setattr(train_submit, "submit_training", locked)
    at.button(key="home_train_demo").click().run()
    assert "could not be queued (OSError); nothing was started" in at.error[0].value
    assert "locked" not in at.error[0].value  # internals go to the log, not the page
    assert jobs.list_jobs() == []


def test_home_and_sidebar_count_waiting_jobs_alike(home: Path) -> None:
    """An interrupted job waits in the queue (the job list shows it there): Home's metric and the
    sidebar count it as queued, from the same rule (core.jobs.listing.running_and_queued)."""
    from core import jobs
    from core.config import RunConfig
    from core.train.submit import submit_training

    ids = submit_training(RunConfig(), seeds=[1, 2], validate=False, check_device=False, owner="t")
    jobs.open_store().update(ids[0], state="interrupted")
    at = _home()
    assert at.metric[2].value == "0 / 2"
    assert any(c.value == "Jobs: 0 running, 2 queued" for c in at.sidebar.caption)
