"""Faults that must not lose or falsify results: a full disk, damaged run files, a damaged model, a
closed stdout pipe. Each test damages real files (or fakes the disk's answer) and checks that the
user gets one clear sentence naming the file, that nothing else is lost, and that nothing wrong is
reported as right."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from run_factory import write_fake_run

from core import inference
from core.errors import RunError

ROOT = Path(__file__).resolve().parents[1]

# -- 18: a damaged summary/status/config lists that run as damaged, every other run as usual -------

DAMAGE = {
    "random bytes": bytes(range(128, 256)) * 4,
    "null": b"null",
    "a list": b"[1, 2, 3]",
    "torn JSON": b'{"test": {"accuracy": 0.',
}


@pytest.mark.parametrize("what", list(DAMAGE))
@pytest.mark.parametrize("name", ["summary.json", "status.json", "config.json"])
def test_run_json_damage_is_a_run_error_naming_the_file(what, name, tmp_path):
    from core.runs import Run

    path = write_fake_run(tmp_path, "r1")
    (path / name).write_bytes(DAMAGE[what])
    with pytest.raises(RunError, match=name) as info:
        Run(path)._json(name)
    assert "r1" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("what", list(DAMAGE))
def test_list_runs_marks_a_damaged_run_and_lists_the_others(what, tmp_path):
    from core.runs import list_runs

    for i in range(3):
        write_fake_run(tmp_path, f"run-{i}", accuracy=0.7 + i / 10, seed=i)
    (tmp_path / "run-1" / "summary.json").write_bytes(DAMAGE[what])
    rows = {r["run_id"]: r for r in list_runs(tmp_path)}
    assert sorted(rows) == ["run-0", "run-1", "run-2"]
    bad = rows["run-1"]
    assert bad["state"] == "damaged" and "summary.json" in bad["reason"]
    assert bad["accuracy"] is None
    assert bad["model"] == "minilm" and bad["seed"] == 1  # still read from the intact config.json
    for ok in ("run-0", "run-2"):
        assert rows[ok]["state"] == "succeeded" and rows[ok]["reason"] is None
        assert rows[ok]["accuracy"] == json.loads((tmp_path / ok / "summary.json").read_text())["test"]["accuracy"]


def test_cli_runs_prints_damaged_run_with_reason(home, capsys):
    from core.cli import main

    root = home / "runs"
    write_fake_run(root, "good-run")
    bad = write_fake_run(root, "bad-run", seed=1)
    (bad / "summary.json").write_bytes(b"null")
    (bad / "status.json").write_bytes(bytes(range(200, 256)))
    assert main(["runs"]) == 0
    out = capsys.readouterr()
    lines = out.out.splitlines()
    good_line = next(x for x in lines if x.startswith("good-run"))
    bad_line = next(x for x in lines if x.startswith("bad-run"))
    assert "succeeded" in good_line and "damaged" in bad_line
    assert "summary.json" in out.out and "status.json" in out.out and "Traceback" not in out.err
    assert main(["runs", "--json"]) == 0
    rows = {r["run_id"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["bad-run"]["state"] == "damaged" and rows["good-run"]["state"] == "succeeded"


def test_runs_page_renders_other_runs_with_one_damaged(fake_runs):
    from apptest_support import open_app_page

    (fake_runs / "reviews-head-s1" / "summary.json").write_bytes(bytes(range(128, 256)))
    (fake_runs / "reviews-full-s2" / "summary.json").write_bytes(b"null")
    at = open_app_page("runs")
    table = at.dataframe[0].value.set_index("run_id")
    assert sorted(table.index) == ["reviews-full-s1", "reviews-full-s2", "reviews-head-s1", "reviews-head-s2"]
    assert table.loc["reviews-head-s1", "state"] == "damaged"
    assert table.loc["reviews-full-s2", "state"] == "damaged"
    assert table.loc["reviews-full-s1", "state"] == "succeeded"
    at = open_app_page("runs", run="reviews-full-s2")  # the damaged run's own page warns, does not crash
    assert any("summary" in w.value and "damaged" in w.value for w in at.warning)  # (markdown-escaped text)
    # the Compare page, which offers succeeded runs only, still opens too
    at = open_app_page("compare")
    assert not at.exception


# -- 22 (part): a closed stdout pipe is not an internal error ---------------------------------------


def test_predict_into_a_closed_pipe_exits_quietly(trained_text_run, tmp_path):
    """`tunescope predict ... | head -c 1`: the output is far larger than a pipe holds, so the writer
    is still writing when `head` has gone."""
    texts = " ".join(["--text 'the film was great'"] * 2000)
    err = tmp_path / "stderr.txt"
    script = (f"{sys.executable} -m core.cli predict --run {trained_text_run} {texts} 2> {err} | head -c 1; "
              "echo \" ${PIPESTATUS[0]}\"")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TUNESCOPE_HOME": str(tmp_path)}
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    first, rc = proc.stdout.split()
    assert first == "[" and rc == "141", (proc.stdout, err.read_text())
    assert err.read_text() == ""  # no "internal error", no "Exception ignored ... BrokenPipeError"


# -- 19: a damaged model is refused, naming the run and the file -----------------------------------


@pytest.fixture
def model_run(trained_text_run, tmp_path):
    """A private copy of the tiny trained run (so damaging it harms no other test), not yet loaded."""
    import shutil


    dest = tmp_path / "runs" / "tiny-copy"
    shutil.copytree(trained_text_run, dest, ignore=shutil.ignore_patterns("explanations"))
    yield dest
    inference._LOADED.pop(str(dest.resolve()), None)


def _forget(run_dir: Path) -> None:

    inference._LOADED.pop(str(run_dir.resolve()), None)


def test_saved_model_records_hashes_of_its_files(model_run):
    from core.runs import MODEL_MANIFEST, sha256_file

    manifest = json.loads((model_run / "model" / MODEL_MANIFEST).read_text())
    files = manifest["files"]
    assert "model.safetensors" in files and "tunescope_model.json" in files
    assert any(name.startswith("tokenizer/") for name in files)
    for name, digest in files.items():
        assert sha256_file(model_run / "model" / name) == digest


def _overwrite_one_tensor(path: Path, name: str = "classifier.bias") -> None:
    """Change the bytes of one tensor in a safetensors file in place (same size: it still loads)."""
    data = bytearray(path.read_bytes())
    header_len = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + header_len])
    start, end = header[name]["data_offsets"]
    base = 8 + header_len
    for i in range(base + start, base + end):
        data[i] = (data[i] + 77) % 256
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["overwrite one tensor", "truncate", "delete tokenizer file"])
def test_damaged_model_is_refused_with_run_and_file(damage, model_run, capsys):
    from core import api
    from core.cli import main
    from core.errors import ModelIntegrityError

    weights = model_run / "model" / "model.safetensors"
    if damage == "overwrite one tensor":
        _overwrite_one_tensor(weights)
        bad = "model/model.safetensors"
    elif damage == "truncate":
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 3])
        bad = "model/model.safetensors"
    else:
        victim = next(p for p in sorted((model_run / "model" / "tokenizer").iterdir()) if p.is_file())
        victim.unlink()
        bad = f"model/tokenizer/{victim.name}"
    with pytest.raises(ModelIntegrityError) as info:
        api.predict(model_run, ["the film was great"])
    assert "tiny-copy" in str(info.value) and bad in str(info.value)
    _forget(model_run)
    assert main(["predict", "--run", str(model_run), "--text", "the film was great"]) == 2
    err = capsys.readouterr().err
    assert bad in err and "tiny-copy" in err and "internal error" not in err and len(err.splitlines()) == 1


def test_overwritten_tensor_without_the_check_would_change_the_answer(model_run):
    """Why the check exists: the damaged file loads and predicts, just differently."""
    from core import api
    from core.models import load_bundle

    before = api.predict(model_run, ["the film was great", "the plot was dull"])
    _overwrite_one_tensor(model_run / "model" / "model.safetensors")
    bundle, labels = load_bundle(model_run / "model")  # the raw loader has no check
    after = inference._probabilities(bundle, ["the film was great", "the plot was dull"], "cpu")
    assert [b["probabilities"][labels[0]] for b in before] != pytest.approx(list(after[:, 0]), abs=1e-6)


def test_model_hashes_are_checked_once_per_file_stamp(model_run, monkeypatch):
    import core.runs as runs
    from core import api

    calls: list[str] = []
    real = runs.sha256_file
    monkeypatch.setattr(runs, "sha256_file", lambda p: calls.append(str(p)) or real(p))
    api.load_run_model(model_run)
    n_files = len(json.loads((model_run / "model" / runs.MODEL_MANIFEST).read_text())["files"])
    assert len(calls) == n_files
    _forget(model_run)  # a fresh load from disk (e.g. after the cache evicted it): no file is read again
    api.load_run_model(model_run)
    assert len(calls) == n_files
    weights = model_run / "model" / "model.safetensors"
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 1_000_000))
    _forget(model_run)
    api.load_run_model(model_run)  # a touched file is hashed again (and still matches)
    assert calls[-1] == str(weights.resolve()) and len(calls) == n_files + 1


def test_old_run_without_hashes_still_loads_and_a_truncated_one_names_the_run(model_run):
    from core import api
    from core.runs import MODEL_MANIFEST

    expected = api.predict(model_run, ["the film was great"])
    _forget(model_run)
    (model_run / "model" / MODEL_MANIFEST).unlink()  # saved before hashes were recorded: no manifest,
    summary = json.loads((model_run / "summary.json").read_text())  # and a summary that never mentions one
    del summary["model_manifest"]
    (model_run / "summary.json").write_text(json.dumps(summary))
    assert api.predict(model_run, ["the film was great"]) == expected
    _forget(model_run)
    weights = model_run / "model" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(RunError, match="tiny-copy.*cannot be loaded"):
        api.predict(model_run, ["the film was great"])


# -- 17: a full disk fails the run with a readable message and leaves no partial checkpoints -------


@pytest.fixture
def small_csv(tmp_path):
    import csv

    from conftest import make_sentiment_rows

    p = tmp_path / "small.csv"
    with open(p, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        w.writerows(make_sentiment_rows(60))
    return p


def small_cfg(source: Path, model_dir: Path):
    from core.config import DataConfig, ModelConfig, RunConfig, TrainConfig

    return RunConfig(data=DataConfig(source=str(source)),
                     model=ModelConfig(name=str(model_dir), max_length=16, pooling="mean"),
                     train=TrainConfig(method="full", epochs=1, batch_size=8, lr=3e-3, device="cpu",
                                       checkpoint_every=2, log_every=2))


class FakeDisk:
    """shutil.disk_usage as seen on a disk with `free` bytes left (the real disk is never filled)."""

    def __init__(self, monkeypatch, free: int) -> None:
        import shutil

        self.free = free
        real = shutil.disk_usage
        monkeypatch.setattr(shutil, "disk_usage", lambda p: real(p)._replace(free=self.free))


def enospc(*args, **kwargs):
    import errno

    raise OSError(errno.ENOSPC, "No space left on device")


def assert_failed_cleanly(run_dir: Path) -> None:
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "failed" and "not enough disk space in" in status["message"]
    assert not (run_dir / "checkpoints").exists()  # not even an empty folder, nor a valid older one
    assert not (run_dir / "model").exists()
    assert not [p.name for p in run_dir.rglob(".*tmp-*")]


DISK_MESSAGE = r"not enough disk space in {}: needs ~[0-9.]+ MB, {} MB free"


def test_checkpoint_that_does_not_fit_fails_the_job_before_writing(home, small_csv, tiny_bert_dir, monkeypatch):
    import re

    from core import jobs
    from core.jobs.worker import execute
    from core.train.submit import submit_training

    FakeDisk(monkeypatch, free=150_000)
    store = jobs.open_store()
    (jid,) = submit_training(small_cfg(small_csv, tiny_bert_dir), run_id="full-disk")
    job = store.claim("w-test", "test-host", os.getpid(), "cpu")
    assert execute(store, job) == "failed"
    job = store.get(jid)
    ck = re.escape(str(job.run_dir / "checkpoints"))
    assert re.search(DISK_MESSAGE.format(ck, "0.1"), job.error), job.error
    assert "enforce fail" not in job.error and "unexpected pos" not in job.error
    assert_failed_cleanly(job.run_dir)
    assert json.loads((job.run_dir / "job.json").read_text())["state"] == "failed"


@pytest.mark.parametrize("how", ["ENOSPC", "torch's unexpected pos"])
def test_disk_filling_up_during_a_checkpoint_fails_with_the_message(how, small_csv, tiny_bert_dir, runs_dir,
                                                                    monkeypatch):
    import re

    import core.train.checkpoint as checkpoint
    from core import api
    from core.errors import DiskFullError

    disk = FakeDisk(monkeypatch, free=10**12)
    real_save, saves = checkpoint.torch.save, []

    def save(obj, path):
        saves.append(path)
        if len(saves) < 2:
            return real_save(obj, path)
        Path(path).write_bytes(b"\0" * 600_000)  # part of it got written, then the disk was full
        disk.free = 0
        if how == "ENOSPC":
            enospc()
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 6451584 vs 6451472")

    monkeypatch.setattr(checkpoint.torch, "save", save)
    with pytest.raises(DiskFullError) as info:
        api.train(small_cfg(small_csv, tiny_bert_dir), runs_dir=runs_dir, run_id="filling")
    assert len(saves) == 2  # the first checkpoint was written, the second ran out of space
    run_dir = runs_dir / "filling"
    assert re.fullmatch(DISK_MESSAGE.format(re.escape(str(run_dir / "checkpoints")), "0.0") + ".*", str(info.value))
    assert_failed_cleanly(run_dir)


def test_model_that_does_not_fit_fails_and_leaves_no_partial_model(small_csv, tiny_bert_dir, runs_dir, monkeypatch):
    import re

    import core.models.build as models
    from core import api
    from core.errors import DiskFullError

    def save_bundle(bundle, directory, labels, extra):
        (directory / "model.safetensors").write_bytes(b"\0" * 100_000)
        enospc()

    monkeypatch.setattr(models, "save_bundle", save_bundle)
    FakeDisk(monkeypatch, free=10**12)
    with pytest.raises(DiskFullError, match=DISK_MESSAGE.format(re.escape(str(runs_dir / "m")), "[0-9.]+")):
        api.train(small_cfg(small_csv, tiny_bert_dir), runs_dir=runs_dir, run_id="m")
    assert_failed_cleanly(runs_dir / "m")
    # and a model save that cannot fit is refused before it writes anything
    FakeDisk(monkeypatch, free=1000)
    monkeypatch.setattr(models, "save_bundle", lambda *a: pytest.fail("nothing may be written"))
    from core.runs import atomic_dir

    with pytest.raises(DiskFullError, match="needs ~2.0 MB, 0.0 MB free"):
        atomic_dir(runs_dir / "m2" / "model", lambda d: None, need_bytes=2 << 20)
    assert not (runs_dir / "m2").exists()
