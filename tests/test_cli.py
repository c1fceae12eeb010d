"""The `tunescope` command line, run as a user would (a subprocess), on tiny models."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def tunescope(*args: str, home: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "TUNESCOPE_HOME": str(home), "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "core.cli", *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=600)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture
def trained_run(sentiment_csv, tiny_bert_dir, tmp_path) -> tuple[Path, Path]:
    home = tmp_path / "home"
    proc = tunescope("train", "--data", str(sentiment_csv), "--model", str(tiny_bert_dir), "--epochs", "4",
                     "--lr", "3e-3", "--train-embeddings", "--max-length", "32", "--device", "cpu", home=home)
    run_dir = Path(proc.stdout.strip().splitlines()[-1])
    return home, run_dir


def test_train_prints_table_and_run_dir_last(trained_run):
    home, run_dir = trained_run
    assert run_dir.parent == home / "runs" and (run_dir / "summary.json").is_file()


def test_train_output_contains_metrics_table(sentiment_csv, tiny_bert_dir, tmp_path):
    proc = tunescope("train", "--data", str(sentiment_csv), "--model", str(tiny_bert_dir), "--method", "head",
                     "--epochs", "1", "--device", "cpu", "--runs-dir", str(tmp_path / "r"), home=tmp_path)
    assert "macro avg" in proc.stdout and "weighted avg" in proc.stdout and "accuracy" in proc.stdout
    assert "train" in proc.stderr  # progress goes to stderr
    assert Path(proc.stdout.strip().splitlines()[-1]).parent == tmp_path / "r"


def test_predict_eval_and_runs(trained_run, tmp_path):
    home, run_dir = trained_run
    out = json.loads(tunescope("predict", "--run", str(run_dir), "--text", "the film was great",
                               home=home).stdout)
    assert out["label"] in ("positive", "negative")
    assert sum(out["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    # run ids resolve against $TUNESCOPE_HOME/runs
    by_id = json.loads(tunescope("predict", "--run", run_dir.name, "--text", "a", "--text", "b", home=home).stdout)
    assert len(by_id) == 2
    holdout = tmp_path / "holdout.tsv"
    holdout.write_text("review\tsentiment\nthe film was good\tpositive\nthe plot was awful\tnegative\n")
    report = json.loads(tunescope("eval", "--run", str(run_dir), "--data", str(holdout), "--json",
                                  home=home).stdout)
    assert report["n"] == 2 and set(report["per_class"]) == {"negative", "positive"}
    table = tunescope("runs", home=home).stdout
    assert run_dir.name in table and "succeeded" in table
    wrong_kind = tunescope("predict", "--run", str(run_dir), "--image", str(holdout), home=home, check=False)
    assert wrong_kind.returncode == 2 and "is a text model but image input was given; give it text" in wrong_kind.stderr
    again = tunescope("train", "--data", str(holdout), "--run-id", run_dir.name, home=home, check=False)
    assert again.returncode == 2 and "already exists" in again.stderr


def test_demo_data_lists_builtin_sets(tmp_path):
    out = tunescope("demo-data", home=tmp_path).stdout
    for name in ("demo:sentiment", "demo:news", "demo:fashion", "demo:digits"):
        assert name in out


@pytest.mark.parametrize("args, fragment", [
    (["train", "--data", "missing.csv"], "missing.csv"),
    (["train", "--data", "demo:nope"], "Unknown demo"),
    (["train", "--data", "demo:sentiment", "--epochs", "0"], "epochs"),
    (["train", "--data", "demo:sentiment", "--model", "resnet18"], "is an image model but the dataset is text"),
    (["train", "--data", "demo:digits", "--run-id", "../escape"], "Run id '../escape' is not allowed"),
    (["predict", "--run", "/no/such/run", "--text", "x"], "not found"),
])
def test_bad_input_exits_2_with_one_clear_line_and_no_traceback(args, fragment, tmp_path):
    proc = tunescope(*args, home=tmp_path, check=False)
    assert proc.returncode == 2, proc.stderr
    assert fragment in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("where", ["first", "last"])
def test_debug_flag_shows_the_traceback_wherever_it_is_given(where, tmp_path):
    args = ["predict", "--run", "/no/such/run", "--text", "x"]
    args = ["--debug", *args] if where == "first" else [*args, "--debug"]
    proc = tunescope(*args, home=tmp_path, check=False)
    assert proc.returncode == 2 and "Traceback" in proc.stderr


def test_a_folder_that_is_not_a_model_is_a_clear_error(sentiment_csv, tmp_path):
    junk = tmp_path / "not-a-model"
    junk.mkdir()
    (junk / "notes.txt").write_text("hello")
    proc = tunescope("train", "--data", str(sentiment_csv), "--model", str(junk), home=tmp_path, check=False)
    assert proc.returncode == 2 and "not a usable Hugging Face model" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "runs").exists()
