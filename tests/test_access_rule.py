"""The access rule on every `core.workspace` entry point: a table of user × role × object × action,
written out by hand (not derived from the rule it checks)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import make_sentiment_rows

from core import workspace as ws
from core.access import LOCAL, Access, Actor, allowed
from core.data import store as datastore
from core.errors import DataError, JobError, RunError
from core.jobs import JobSpec, enqueue, open_store

TEACH, ANN, BOB, VIC = (Actor("teach", "instructor"), Actor("ann", "student"), Actor("bob", "student"),
                        Actor("vic", "viewer"))
ACTORS = {"teach": TEACH, "ann": ANN, "bob": BOB, "vic": VIC}
ANN_PRIVATE, ANN_SHARED, BOB_PRIVATE = ("20260101-000001-ann-private", "20260101-000002-ann-shared",
                                        "20260101-000003-bob-private")

# Who reads which run (R), and who may change / share it (W).
RUNS = {
    ANN_PRIVATE: {"teach": "RW", "ann": "RW", "bob": "", "vic": ""},
    ANN_SHARED: {"teach": "RW", "ann": "RW", "bob": "R", "vic": "R"},
    BOB_PRIVATE: {"teach": "RW", "ann": "", "bob": "RW", "vic": ""},
}
DATASETS = {
    "ann-notes": {"teach": "RW", "ann": "RW", "bob": "", "vic": ""},
    "class-set": {"teach": "RW", "ann": "R", "bob": "R", "vic": "R"},  # an instructor's shared dataset
}


@pytest.fixture
def world(classroom: dict, tmp_path: Path) -> dict:
    csv = tmp_path / "d.csv"
    csv.write_text("text,label\n" + "".join(f'"{t}",{y}\n' for t, y in make_sentiment_rows(60)))
    datastore.save_dataset("ann-notes", csv, owner="ann")
    datastore.save_dataset("class-set", csv, owner="teach")
    ws.share_dataset(TEACH, "class-set", True)
    store = open_store()
    jobs = {who: enqueue([JobSpec(config={"steps": 1})], kind="noop", owner=who, store=store)[0]
            for who in ("ann", "bob")}
    return {"jobs": jobs, "csv": csv}


@pytest.mark.parametrize("run_id", list(RUNS))
@pytest.mark.parametrize("who", list(ACTORS))
def test_runs(world: dict, who: str, run_id: str) -> None:
    actor, expected = ACTORS[who], RUNS[run_id][who]
    assert (run_id in {r["run_id"] for r in ws.list_runs(actor)}) == ("R" in expected)
    assert (ws.find_run(actor, run_id) is not None) == ("R" in expected)
    if "R" in expected:
        assert ws.open_run(actor, run_id).id == run_id
    else:
        with pytest.raises(RunError) as hidden:
            ws.open_run(actor, run_id)
        with pytest.raises(RunError) as missing:
            ws.open_run(actor, "20260101-000009-nothing-here")
        assert str(hidden.value).replace(run_id, "X") == str(missing.value).replace("20260101-000009-nothing-here", "X")
    assert ws.can_change_run(actor, run_id) == ("W" in expected)
    before = ws.run_access(TEACH, run_id)
    if "W" in expected:
        ws.share_run(actor, run_id, not before.shared)
        assert ws.run_access(TEACH, run_id).shared is (not before.shared)
        ws.share_run(actor, run_id, before.shared)
    else:
        with pytest.raises((RunError, ws.AccessDenied)):
            ws.share_run(actor, run_id, True)
        assert ws.run_access(TEACH, run_id) == before


@pytest.mark.parametrize("name", list(DATASETS))
@pytest.mark.parametrize("who", list(ACTORS))
def test_datasets(world: dict, who: str, name: str) -> None:
    actor, expected = ACTORS[who], DATASETS[name][who]
    assert (name in {d.name for d in ws.list_datasets(actor)}) == ("R" in expected)
    if "R" in expected:
        assert ws.get_dataset(actor, name).name == name
    else:
        with pytest.raises(DataError, match="No saved dataset"):
            ws.get_dataset(actor, name)
    before = ws.dataset_access(TEACH, name)
    if "W" in expected:
        ws.share_dataset(actor, name, not before.shared)
        ws.share_dataset(actor, name, before.shared)
    else:
        with pytest.raises((DataError, ws.AccessDenied)):
            ws.share_dataset(actor, name, True)
        with pytest.raises((DataError, ws.AccessDenied)):
            ws.delete_dataset(actor, name)
    assert ws.dataset_access(TEACH, name) == before
    # Training on it: reading is enough, but a viewer starts nothing.
    can_train = "R" in expected and actor.can_write
    from core.config import DataConfig, RunConfig, TrainConfig

    cfg = RunConfig(data=DataConfig(source=ws.get_dataset(TEACH, name).path), train=TrainConfig(method="head"))
    if can_train:
        assert ws.submit_training(actor, cfg, check_device=False)
    else:
        with pytest.raises((DataError, ws.AccessDenied)):
            ws.submit_training(actor, cfg, check_device=False)


def test_deleting_is_for_the_owner_and_instructors(world: dict) -> None:
    with pytest.raises(DataError):
        ws.delete_dataset(BOB, "ann-notes")
    ws.delete_dataset(ANN, "ann-notes")
    with pytest.raises(ws.AccessDenied):
        ws.delete_dataset(ANN, "class-set")  # shared with her, not hers
    ws.delete_dataset(TEACH, "class-set")
    assert ws.list_datasets(TEACH) == []


@pytest.mark.parametrize("who,owner,expected", [
    ("teach", "ann", "RW"), ("teach", "bob", "RW"), ("ann", "ann", "RW"), ("ann", "bob", ""),
    ("bob", "ann", ""), ("bob", "bob", "RW"), ("vic", "ann", ""), ("vic", "bob", ""),
])
def test_jobs(world: dict, who: str, owner: str, expected: str) -> None:
    actor, job_id = ACTORS[who], world["jobs"][owner]
    assert (job_id in {j.id for j in ws.list_jobs(actor)}) == ("R" in expected)
    if "R" in expected:
        assert ws.get_job(actor, job_id).id == job_id
        ws.read_log(actor, job_id)
    else:
        with pytest.raises(JobError) as hidden:
            ws.get_job(actor, job_id)
        with pytest.raises(JobError) as missing:
            ws.get_job(actor, "j-doesnotexist")
        assert str(hidden.value).replace(job_id, "X") == str(missing.value).replace("j-doesnotexist", "X")
        with pytest.raises(JobError):
            ws.read_log(actor, job_id)
    if "W" in expected:
        assert ws.cancel_job(actor, job_id).state == "cancelled"
    else:
        with pytest.raises(JobError):
            ws.cancel_job(actor, job_id)
        assert open_store().get(job_id).state == "queued"


def test_a_viewer_starts_nothing_and_a_student_trains_only_on_what_they_may_read(world: dict) -> None:
    from core.config import DataConfig, RunConfig

    demo = RunConfig(data=DataConfig(source="demo:sentiment", max_samples=200))
    with pytest.raises(ws.AccessDenied, match="viewer"):
        ws.submit_training(VIC, demo, check_device=False)
    with pytest.raises(DataError, match="not found"):
        ws.submit_training(BOB, RunConfig(data=DataConfig(source=str(world["csv"]))), check_device=False)
    (job_id,) = ws.submit_training(ANN, demo, check_device=False, owner="bob")  # a forged owner is ignored
    assert open_store().get(job_id).owner == "ann"


def test_the_rule_itself() -> None:
    mine, shared, other = Access("ann"), Access("bob", shared=True), Access("bob")
    assert [allowed(ANN, a, mine) for a in ("read", "change", "share", "delete")] == [True] * 4
    assert [allowed(ANN, a, shared) for a in ("read", "change", "share", "delete")] == [True, False, False, False]
    assert [allowed(ANN, a, other) for a in ("read", "change", "share", "delete")] == [False] * 4
    assert [allowed(VIC, a, Access("vic")) for a in ("read", "change")] == [True, False]
    assert all(allowed(LOCAL, a, other) for a in ("read", "change", "share", "delete"))
    with pytest.raises(ValueError):
        allowed(ANN, "own", mine)


def test_runs_from_before_accounts_belong_to_the_local_user(home: Path) -> None:
    from run_factory import write_fake_run

    old = write_fake_run(home / "runs", "20250101-000000-old")
    assert ws.find_run(ANN, old.name) is None and ws.find_run(TEACH, old.name) is not None
    assert ws.find_run(LOCAL, old.name) is not None
    ws.share_run(TEACH, old.name, True)
    assert ws.find_run(ANN, old.name) is not None
