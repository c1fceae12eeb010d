"""Optional MLflow logging, checked against a stand-in `mlflow` module that records every call
(MLflow itself is an optional dependency and not installed for the tests)."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest
from run_factory import write_fake_run

from core import tracking
from core.errors import ConfigError


@pytest.fixture
def fake_mlflow(monkeypatch: pytest.MonkeyPatch) -> dict:
    calls: dict = {"params": {}, "metrics": [], "artifacts": [], "tags": {}}
    mod = types.ModuleType("mlflow")

    class Active:
        info = types.SimpleNamespace(run_id="mlf-1")

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    mod.set_tracking_uri = lambda uri: calls.__setitem__("uri", uri)
    mod.set_experiment = lambda name: calls.__setitem__("experiment", name)
    mod.start_run = lambda run_name=None: (calls.__setitem__("run_name", run_name), Active())[1]
    mod.log_params = lambda p: calls["params"].update(p)
    mod.log_metrics = lambda m, step=None: calls["metrics"].append((m, step))
    mod.log_artifact = lambda path: calls["artifacts"].append(Path(path).name)
    mod.set_tags = lambda t: calls["tags"].update(t)
    monkeypatch.setitem(sys.modules, "mlflow", mod)
    return calls


def test_a_finished_run_logs_params_metrics_and_files(fake_mlflow: dict, tmp_path: Path) -> None:
    run = write_fake_run(tmp_path, "r1", accuracy=0.8, method="full")
    assert tracking.log_run(run, "file:///tmp/mlruns") == "mlf-1"
    assert fake_mlflow["uri"] == "file:///tmp/mlruns" and fake_mlflow["run_name"] == "r1"
    assert fake_mlflow["params"]["train.method"] == "full" and fake_mlflow["params"]["base_model"] == "minilm"
    epoch_metrics, step = fake_mlflow["metrics"][0]
    assert step == 100 and "val_accuracy" in epoch_metrics
    test_metrics = fake_mlflow["metrics"][-1][0]
    assert set(test_metrics) >= {"test_accuracy", "test_macro_f1", "test_ece"}
    assert {"config.json", "summary.json", "metrics.jsonl", "predictions.parquet"} <= set(fake_mlflow["artifacts"])
    assert fake_mlflow["tags"]["tunescope.run_id"] == "r1"


def test_nothing_is_logged_without_a_uri_and_the_env_var_is_honoured(fake_mlflow: dict, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    run = write_fake_run(tmp_path, "r2")
    monkeypatch.delenv(tracking.ENV, raising=False)
    assert tracking.maybe_log(run) is None and "uri" not in fake_mlflow
    monkeypatch.setenv(tracking.ENV, "http://tracker:5000")
    assert tracking.maybe_log(run) == "mlf-1" and fake_mlflow["uri"] == "http://tracker:5000"


def test_a_broken_tracking_server_only_warns(fake_mlflow: dict, tmp_path: Path, capsys) -> None:
    import mlflow

    def boom(*a, **k):
        raise ConnectionError("refused")

    mlflow.log_params = boom
    assert tracking.maybe_log(write_fake_run(tmp_path, "r3"), "http://down:5000") is None
    assert "could not log run r3 to MLflow" in capsys.readouterr().err


def test_missing_mlflow_is_a_clear_error_before_training(monkeypatch: pytest.MonkeyPatch, sentiment_csv: Path,
                                                        tmp_path: Path, capsys) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)  # import fails
    with pytest.raises(ConfigError, match="pip install mlflow"):
        tracking.log_run(write_fake_run(tmp_path, "r4"), "file:///x")
    from core.cli import main

    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None)
    assert main(["train", "--data", str(sentiment_csv), "--runs-dir", str(tmp_path / "runs"), "--mlflow",
                 "file:///x"]) == 2
    assert "pip install mlflow" in capsys.readouterr().err and not (tmp_path / "runs").exists()
