"""Checkpoints: an interrupted run resumed from its newest intact checkpoint ends exactly where an
uninterrupted run ends; a torn checkpoint is skipped in favour of the previous one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core import api
from core.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from core.train.checkpoint import Checkpointer
from core.train.engine import Callback, TrainingCancelled


def cfg_for(source: Path, model_dir: Path, **train) -> RunConfig:
    train = {"method": "full", "epochs": 3, "batch_size": 16, "lr": 3e-3, "train_embeddings": True,
             "device": "cpu", "checkpoint_every": 4, "log_every": 2, **train}
    return RunConfig(data=DataConfig(source=str(source)),
                     model=ModelConfig(name=str(model_dir), max_length=32, pooling="mean"),
                     train=TrainConfig(**train))


class StopAt(Callback):
    def __init__(self, step: int) -> None:
        self.step, self.seen = step, 0

    def on_step(self, state) -> None:
        self.seen = state.step

    def should_stop(self) -> bool:
        return self.seen >= self.step


def summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def metric_rows(run_dir: Path) -> list[dict]:
    return [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("stop_at, train", [
    (6, {}),                                  # mid-epoch, after a step checkpoint
    (11, {"grad_accum": 2}),                  # second epoch, accumulation, after a step checkpoint
    (13, {"checkpoint_every": 0}),            # only epoch-end checkpoints: resume at a boundary
    (5, {"method": "lora", "lr": 2e-2}),      # adapters + dropout RNG
])
def test_resumed_run_matches_uninterrupted(stop_at, train, sentiment_csv, tiny_bert_dir, runs_dir):
    cfg = cfg_for(sentiment_csv, tiny_bert_dir, **train)
    ref = api.train(cfg, runs_dir=runs_dir, run_id="reference")
    with pytest.raises(TrainingCancelled):
        api.train(cfg, runs_dir=runs_dir, run_id="resumed", callbacks=[StopAt(stop_at)])
    assert any((runs_dir / "resumed" / "checkpoints").iterdir())
    out = api.train(cfg, runs_dir=runs_dir, run_id="resumed", resume=True)
    (resume_row,) = [r for r in metric_rows(out) if r["type"] == "resume"]
    assert 0 < resume_row["step"] <= stop_at
    a, b = summary(ref), summary(out)
    assert a["test"] == b["test"]
    assert a["validation"] == b["validation"]
    assert a["steps"] == b["steps"]
    # metrics.jsonl holds each step once (cut back to the checkpoint, then continued)
    steps = [r["step"] for r in metric_rows(out) if r["type"] == "step"]
    assert steps == sorted(set(steps)) == [r["step"] for r in metric_rows(ref) if r["type"] == "step"]
    assert not (out / "checkpoints").exists()  # cleared once finished


def test_corrupt_newest_checkpoint_falls_back_to_previous(sentiment_csv, tiny_bert_dir, runs_dir):
    cfg = cfg_for(sentiment_csv, tiny_bert_dir, checkpoint_every=2)
    ref = api.train(cfg, runs_dir=runs_dir, run_id="reference")
    with pytest.raises(TrainingCancelled):
        api.train(cfg, runs_dir=runs_dir, run_id="r", callbacks=[StopAt(7)])
    ck = Checkpointer(runs_dir / "r" / "checkpoints")
    newest, previous = ck._existing()[-1], ck._existing()[-2]
    data = (newest / "tensors.safetensors").read_bytes()
    (newest / "tensors.safetensors").write_bytes(data[: len(data) // 2])  # a torn write
    assert not ck.verify(newest) and ck.verify(previous)
    _, _, state = ck.load_latest()
    assert state["progress"]["step"] == int(previous.name.split("-")[1])
    out = api.train(cfg, runs_dir=runs_dir, run_id="r", resume=True)
    assert summary(out)["test"] == summary(ref)["test"]


def test_resume_without_checkpoint_restarts_cleanly(sentiment_csv, tiny_bert_dir, runs_dir):
    cfg = cfg_for(sentiment_csv, tiny_bert_dir, checkpoint_every=0, epochs=2)
    ref = api.train(cfg, runs_dir=runs_dir, run_id="reference")
    with pytest.raises(TrainingCancelled):
        api.train(cfg, runs_dir=runs_dir, run_id="r", callbacks=[StopAt(2)])
    assert not (runs_dir / "r" / "checkpoints").exists()
    out = api.train(cfg, runs_dir=runs_dir, run_id="r", resume=True)
    assert summary(out)["test"] == summary(ref)["test"]
    assert len([r for r in metric_rows(out) if r["type"] == "epoch"]) == 2


def test_resuming_a_finished_run_returns_it_untouched(sentiment_csv, tiny_bert_dir, runs_dir):
    cfg = cfg_for(sentiment_csv, tiny_bert_dir, epochs=1)
    run_dir = api.train(cfg, runs_dir=runs_dir, run_id="done")
    before = (run_dir / "summary.json").read_bytes()
    assert api.train(cfg, runs_dir=runs_dir, run_id="done", resume=True) == run_dir
    assert (run_dir / "summary.json").read_bytes() == before


def test_resume_with_other_settings_is_refused(sentiment_csv, tiny_bert_dir, runs_dir):
    from core.errors import ConfigError

    cfg = cfg_for(sentiment_csv, tiny_bert_dir)
    with pytest.raises(TrainingCancelled):
        api.train(cfg, runs_dir=runs_dir, run_id="r", callbacks=[StopAt(6)])
    other = cfg_for(sentiment_csv, tiny_bert_dir, batch_size=8)
    with pytest.raises(ConfigError, match="different configuration"):
        api.train(other, runs_dir=runs_dir, run_id="r", resume=True)


def test_checkpoint_check_says_why_one_is_rejected(tmp_path):
    import torch

    ck = Checkpointer(tmp_path / "checkpoints")
    for step in (2, 4):
        ck.save(step, {"w": torch.ones(3) * step}, {"state": {}, "param_groups": []}, {"step": step})
    old, new = ck._existing()
    assert ck.scan() == (new, [])
    (new / "tensors.safetensors").write_bytes(b"torn")
    assert ck.scan() == (old, [(new.name, "tensors.safetensors does not match its recorded SHA-256")])
    (old / "manifest.json").unlink()
    valid, rejected = ck.scan()
    assert valid is None and [r[0] for r in rejected] == [new.name, old.name]
    assert "no manifest" in rejected[1][1]


def test_resume_with_every_checkpoint_rejected_says_it_restarts_at_step_0(sentiment_csv, tiny_bert_dir, runs_dir,
                                                                           caplog):
    """Item 21: the restart from scratch is said in the log, naming the rejected checkpoints."""
    cfg = cfg_for(sentiment_csv, tiny_bert_dir, checkpoint_every=2, epochs=1)
    with pytest.raises(TrainingCancelled):
        api.train(cfg, runs_dir=runs_dir, run_id="r", callbacks=[StopAt(5)])
    ck = Checkpointer(runs_dir / "r" / "checkpoints")
    newest, previous = ck._existing()
    (newest / "tensors.safetensors").write_bytes(b"torn")
    (previous / "state.json").write_text("{}")
    with caplog.at_level("WARNING", logger="core.train.pipeline"):
        out = api.train(cfg, runs_dir=runs_dir, run_id="r", resume=True)
    text = caplog.text
    assert f"checkpoint {newest.name} rejected (tensors.safetensors" in text
    assert f"checkpoint {previous.name} rejected (state.json" in text
    assert "training restarts at step 0" in text
    rows = metric_rows(out)
    assert not [r for r in rows if r["type"] == "resume"] and rows[0]["step"] == 2  # logged afresh from step 1


def test_resume_without_any_checkpoint_says_it_restarts_at_step_0(sentiment_csv, tiny_bert_dir, runs_dir, caplog):
    cfg = cfg_for(sentiment_csv, tiny_bert_dir, checkpoint_every=0, epochs=1)
    with pytest.raises(TrainingCancelled):
        api.train(cfg, runs_dir=runs_dir, run_id="r", callbacks=[StopAt(1)])
    with caplog.at_level("WARNING", logger="core.train.pipeline"):
        api.train(cfg, runs_dir=runs_dir, run_id="r", resume=True)
    assert "no checkpoint" in caplog.text and "training restarts at step 0" in caplog.text
