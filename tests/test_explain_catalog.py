"""The explainer table: every method is one catalog entry plus one compute function, and what an
entry claims (gradient-based, grouped, its cost, its parameters) is what the code does."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from core.explain import catalog
from core.explain.attributions import COMPUTE, attribute, resolve_params


def test_the_catalog_and_the_compute_table_name_the_same_methods() -> None:
    assert set(catalog.METHODS) == set(COMPUTE)
    assert all(name == info.name for name, info in catalog.METHODS.items())


def test_aliases_and_derived_views_agree_with_the_table() -> None:
    assert set(catalog.ALIASES.values()) <= set(catalog.METHODS)
    assert tuple(n for n, m in catalog.METHODS.items() if m.gradient) == catalog.GRADIENT_METHODS
    assert len({m.label for m in catalog.METHODS.values()}) == len(catalog.METHODS)


@pytest.mark.parametrize("name", list(catalog.METHODS))
def test_every_entry_is_consistent(name: str) -> None:
    info = catalog.METHODS[name]
    assert set(info.defaults) <= set(catalog.PARAM_RANGES)
    assert set(info.keeps_own) <= set(info.defaults)
    assert info.tasks and set(info.tasks) <= {"text", "image"}
    if info.needs_cnn:
        assert info.tasks == ("image",)
    if info.grouped:  # perturbation over words / patches: no gradient, a baseline to put in
        assert not info.gradient and info.uses_baseline and "patch" in info.defaults
    if info.cost_note is not None:
        key, _ = info.cost_note
        assert key in info.defaults
        assert info.cost_detail({key: 7}).startswith(", 7 ")
    else:
        assert info.cost_detail({}) == ""
    for n in (1, 12):
        passes = info.passes({}, n)
        assert isinstance(passes, int) and passes >= 1
    # The noise tunnel is offered, costed and kept exactly for the gradient methods.
    tunnel = {"noise_tunnel": True, "nt_samples": 3}
    assert ("noise_tunnel" in info.relevant({"noise_tunnel": True})) == info.gradient
    assert info.passes(tunnel, 12) == info.passes({"nt_samples": 3}, 12) * (3 if info.gradient else 1)
    for task in info.tasks:
        assert bool(resolve_params(name, task, tunnel).get("noise_tunnel")) == info.gradient
        assert ("baseline" in resolve_params(name, task, {})) == info.uses_baseline


class _Linear:
    """A test double with the surface `attribute` needs: a linear model over four inputs."""

    task = "text"

    def __init__(self) -> None:
        torch.manual_seed(0)
        self.model = nn.Linear(4, 3)
        self.x = torch.tensor([[1.0, -2.0, 0.5, 3.0]])
        self.seen = [0]  # inputs through the model, shared with DeepLift's shallow copy of this target

    def inputs(self) -> torch.Tensor:
        return self.x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen[0] += x.shape[0]
        return self.model(x)

    def baseline(self, kind: str) -> torch.Tensor:
        return torch.zeros_like(self.x)

    def n_features(self, patch: int = 0) -> int:
        return 4

    def reduce(self, attr: torch.Tensor) -> np.ndarray:
        return attr.detach()[0].numpy()


@pytest.mark.parametrize("name", catalog.GRADIENT_METHODS)
def test_each_gradient_method_runs_inside_the_noise_tunnel(name: str) -> None:
    # Without noise SmoothGrad averages identical copies: the same scores as the plain method, no
    # completeness delta, the passes the catalog charges for the tunnel, and the model really sees
    # the noisy copies (a compute function that ignored the tunnel would see as few as plain).
    steps = {"steps": 8} if name == "ig" else {}
    once, noisy = _Linear(), _Linear()
    plain = attribute(once, name, 1, steps)
    tunnel = {"noise_tunnel": True, "nt_samples": 4, "stdev": 0.0, **steps}
    smooth = attribute(noisy, name, 1, tunnel)
    np.testing.assert_allclose(smooth.scores, plain.scores, rtol=1e-5, atol=1e-6)
    assert smooth.delta is None
    assert smooth.passes == 4 * plain.passes == catalog.get_method(name).passes(tunnel, 4)
    assert noisy.seen[0] > once.seen[0], (noisy.seen, once.seen)
