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
    assert any("summary.json" in w.value for w in at.warning)
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

    from core import api

    dest = tmp_path / "runs" / "tiny-copy"
    shutil.copytree(trained_text_run, dest, ignore=shutil.ignore_patterns("explanations"))
    yield dest
    api._LOADED.pop(str(dest.resolve()), None)


def _forget(run_dir: Path) -> None:
    from core import api

    api._LOADED.pop(str(run_dir.resolve()), None)


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
    after = api._probabilities(bundle, ["the film was great", "the plot was dull"], "cpu")
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
    (model_run / "model" / MODEL_MANIFEST).unlink()  # saved before hashes were recorded
    assert api.predict(model_run, ["the film was great"]) == expected
    _forget(model_run)
    weights = model_run / "model" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(RunError, match="tiny-copy.*cannot be loaded"):
        api.predict(model_run, ["the film was great"])
