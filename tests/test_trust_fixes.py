"""The trust fixes that join several rooms: what a finished run records about its data, and the
checks that guard its model on every path out (export, the Runs page)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from apptest_support import open_app_page, plain

from core import inference


def test_a_run_records_its_saved_datasets_own_name_and_content_fingerprint(home: Path, tiny_bert_dir: Path,
                                                                          sentiment_csv: Path) -> None:
    # Item 15a: every uploaded dataset was recorded as "data", so a review CSV and a shapes ZIP both
    # read "data · minilm · head" and were offered as comparable.
    from core import api, compare
    from core.config import DataConfig, ModelConfig, RunConfig, TrainConfig
    from core.data import load_dataset
    from core.data.store import save_dataset
    from core.runs import Run

    saved = save_dataset("classdata", sentiment_csv)
    cfg = RunConfig(data=DataConfig(source=saved.path, max_samples=60),
                    model=ModelConfig(name=str(tiny_bert_dir), max_length=16, pooling="mean"),
                    train=TrainConfig(method="head", epochs=1, device="cpu"))
    run = Run(api.train(cfg, runs_dir=home / "runs"))
    ds = run.summary()["dataset"]
    assert ds["name"] == "classdata" and "-classdata-" in run.id
    expected = load_dataset(saved.path, max_samples=60).fingerprint
    assert ds["fingerprint"] == expected and len(expected) == 16
    assert compare.run_row(run)["dataset"] == "classdata"
    assert compare.run_row(run)["fingerprint"] == expected


def test_a_damaged_model_is_never_exported(trained_text_run: Path, tmp_path: Path) -> None:
    from core.errors import ModelIntegrityError
    from core.model_export import export_run as export

    run = tmp_path / "tiny-text"
    shutil.copytree(trained_text_run, run)
    weights = run / "model" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-16:] = bytes(16)  # one tensor's last bytes overwritten: loads fine, predicts wrong
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="model.safetensors"):
        export(run, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_the_runs_list_says_which_runs_are_damaged_and_why(fake_runs: Path) -> None:
    (fake_runs / "reviews-head-s1" / "summary.json").write_bytes(b"null")
    at = open_app_page("runs")
    warning = plain(next(w.value for w in at.warning if "Damaged runs" in w.value))
    assert "reviews-head-s1" in warning and "summary.json" in warning
    assert "reviews-full-s1" not in warning


def test_a_model_whose_hash_manifest_was_deleted_is_refused(trained_text_run: Path, tmp_path: Path) -> None:
    # Review finding: deleting model/manifest.json switched the check off for a damaged model.
    from core import api
    from core.errors import ModelIntegrityError

    run = tmp_path / "tiny-text"
    shutil.copytree(trained_text_run, run)
    (run / "model" / "manifest.json").unlink()
    inference._LOADED.clear()
    with pytest.raises(ModelIntegrityError, match="manifest.json is missing"):
        api.load_run_model(run)
