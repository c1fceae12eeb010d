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
