"""Gradient accumulation gives the gradient of one big batch over the same examples: also for an
epoch's last, short accumulation group and for batches of unequal size (review item 12).

The engine runs on a tiny linear model behind a fake bundle; an AdamW subclass records the
accumulated gradient (and the weights it was taken at) at every optimiser step, and the model
records which examples each training forward saw, so every step can be checked against the
gradient of the mean loss over exactly that step's examples."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from core.config import TrainConfig
from core.data.dataset import LabeledData
from core.finetune import get_method
from core.train.engine import Engine

N_FEATURES, N_CLASSES = 5, 3


class IndexPreprocessor:
    """Items are row numbers; a batch carries the rows' features and the rows themselves."""

    def __init__(self, x: torch.Tensor) -> None:
        self.x = x

    def encode(self, inputs: list[int]) -> list[int]:
        return [int(i) for i in inputs]

    @staticmethod
    def length(item: int) -> int:
        return 1

    def collate(self, items: list[int]) -> dict[str, torch.Tensor]:
        idx = torch.tensor(items, dtype=torch.long)
        return {"x": self.x[idx], "idx": idx}


class RecordingLinear(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.classifier = nn.Linear(N_FEATURES, N_CLASSES)
        self.seen: list[list[int]] = []

    def width(self) -> int:
        return N_FEATURES

    def head_modules(self) -> list[nn.Module]:
        return [self.classifier]

    def forward(self, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.seen.append(idx.tolist())
        return self.classifier(x)


class RecordingAdamW(torch.optim.AdamW):
    steps: list[dict[str, list[torch.Tensor]]] = []

    def step(self, closure=None):  # noqa: ANN001 - torch's signature
        params = [p for g in self.param_groups for p in g["params"]]
        RecordingAdamW.steps.append({"weights": [p.detach().clone() for p in params],
                                     "grads": [p.grad.detach().clone() for p in params]})
        return super().step(closure)


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, list[torch.Tensor]]]:
    RecordingAdamW.steps = []
    monkeypatch.setattr(torch.optim, "AdamW", RecordingAdamW)
    return RecordingAdamW.steps


def toy(n: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor, LabeledData]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n + 6, N_FEATURES, generator=g)
    y = torch.arange(n + 6) % N_CLASSES
    frame = pd.DataFrame({"input": list(range(n + 6)), "label": [str(int(v)) for v in y], "label_id": y.numpy()})
    data = LabeledData("text", [str(c) for c in range(N_CLASSES)],
                       {"train": frame.iloc[:n].reset_index(drop=True), "validation": frame.iloc[n:]},
                       "toy", "toy")
    return x, y, data


def fit(n: int, batch_size: int, grad_accum: int, epochs: int = 1) -> tuple[RecordingLinear, TrainConfig]:
    x, _, data = toy(n)
    model = RecordingLinear()
    bundle = SimpleNamespace(model=model, preprocessor=IndexPreprocessor(x), task="text")
    cfg = TrainConfig(method="full", epochs=epochs, batch_size=batch_size, grad_accum=grad_accum, lr=0.05,
                      max_grad_norm=0.0, warmup_ratio=0.0, device="cpu", checkpoint_every=0)
    Engine(bundle, cfg, get_method("full")).fit(data)  # type: ignore[arg-type]
    return model, cfg


def big_batch_grads(n: int, rows: list[int], weights: list[torch.Tensor]) -> list[torch.Tensor]:
    """The gradient of the mean loss over `rows` at `weights`, in one batch."""
    x, y, _ = toy(n)
    ref = nn.Linear(N_FEATURES, N_CLASSES)
    with torch.no_grad():
        for p, w in zip(ref.parameters(), weights, strict=True):
            p.copy_(w)
    idx = torch.tensor(rows)
    nn.functional.cross_entropy(ref(x[idx]), y[idx]).backward()
    return [p.grad for p in ref.parameters()]


def step_groups(seen: list[list[int]], grad_accum: int, batches_per_epoch: int) -> list[list[int]]:
    """The examples behind each optimiser step: `grad_accum` batches, fewer at an epoch's end."""
    groups = []
    for e in range(0, len(seen), batches_per_epoch):
        epoch = seen[e:e + batches_per_epoch]
        groups += [[i for b in epoch[s:s + grad_accum] for i in b] for s in range(0, len(epoch), grad_accum)]
    return groups


def assert_each_step_is_one_big_batch(n: int, batch_size: int, grad_accum: int, batches: int, steps: int,
                                      recorder: list, epochs: int = 1) -> None:
    model, _ = fit(n, batch_size, grad_accum, epochs)
    assert len(model.seen) == batches * epochs and len(recorder) == steps * epochs
    groups = step_groups(model.seen, grad_accum, batches)
    assert len(groups) == len(recorder)
    for k, (group, rec) in enumerate(zip(groups, recorder, strict=True)):
        want = big_batch_grads(n, group, rec["weights"])
        for got, exp in zip(rec["grads"], want, strict=True):
            torch.testing.assert_close(got, exp, rtol=1e-5, atol=1e-7, msg=f"step {k + 1} ({len(group)} examples)")


def test_two_batches_of_32_accumulate_to_one_batch_of_64(recorder):
    accumulated, _ = fit(64, 32, 2)
    (acc_step,) = recorder
    recorder.clear()
    single, _ = fit(64, 64, 1)
    (one_step,) = recorder
    assert [len(b) for b in accumulated.seen] == [32, 32] and [len(b) for b in single.seen] == [64]
    assert sorted(i for b in accumulated.seen for i in b) == list(range(64))
    for a, b in zip(acc_step["grads"], one_step["grads"], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
    for a, b in zip(accumulated.parameters(), single.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_the_last_short_group_counts_as_much_as_a_full_one(recorder):
    # 80 examples in batches of 16: 5 batches, so with accumulation over 2 the third step has one batch.
    assert_each_step_is_one_big_batch(80, 16, 2, batches=5, steps=3, recorder=recorder, epochs=2)


def test_unequal_batches_are_weighted_by_their_examples(recorder):
    # 70 in batches of 32: 32, 32 and a final 6. Over 4 batches that is one step of unequal batches.
    assert_each_step_is_one_big_batch(70, 32, 4, batches=3, steps=1, recorder=recorder)
    # 33 in batches of 16: the straggler joins the batch before it (16 + 17), one step of both.
    recorder.clear()
    model, _ = fit(33, 16, 2)
    assert sorted(len(b) for b in model.seen) == [16, 17]
    (acc_step,) = recorder
    recorder.clear()
    fit(33, 33, 1)
    (one_step,) = recorder
    for a, b in zip(acc_step["grads"], one_step["grads"], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_accumulation_weights_are_each_batchs_share_of_its_group():
    from core.train.engine import accumulation_weights

    w = accumulation_weights([32, 32, 32, 32, 16], 2)
    np.testing.assert_allclose(w, [0.5, 0.5, 0.5, 0.5, 1.0])
    np.testing.assert_allclose(accumulation_weights([16, 17], 2), [16 / 33, 17 / 33])
    np.testing.assert_allclose(accumulation_weights([8, 8, 8], 1), [1.0, 1.0, 1.0])
    np.testing.assert_allclose(accumulation_weights([10, 10, 10, 5], 3), [1 / 3, 1 / 3, 1 / 3, 1.0])
    assert accumulation_weights([], 4) == []
