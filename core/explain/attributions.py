"""Captum attribution methods behind one registry and one call.

`COMPUTE` holds one function per method of `core.explain.catalog.METHODS` (what a method is, costs
and allows lives there; how it is computed lives here).

`attribute(target, method, class_index, params)` works on any `TextTarget` / `ImageTarget` (or a
test double with the same surface) and returns raw scores; `core.explain.explainer.explain` adds
loading, caching, words and faithfulness around it.

Gradient methods explain the class logit (softmax gradients vanish when a model is confident);
perturbation methods (occlusion, KernelShap) explain the class probability, so their scores read
as "probability lost without this part".
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from core.errors import ModelError
from core.explain.catalog import DEFAULT_BASELINE, get_method


@dataclass
class RawAttribution:
    scores: np.ndarray  # (T,) per token or (S, S) per pixel, signed: positive supports the class
    delta: float | None  # |completeness error| where the method defines one
    passes: int


class _Forward(nn.Module):
    """Wraps a target's forward as a module: DeepLift and LayerGradCam hook modules, and hooks only
    fire on the model when it is a registered child."""

    def __init__(self, target: Any, probabilities: bool = False) -> None:
        super().__init__()
        self.model = target.model
        self._target = target
        self.probabilities = probabilities

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self._target.forward(x)
        return torch.softmax(out, dim=-1) if self.probabilities else out


_DEEPLIFT_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.ELU, nn.LeakyReLU, nn.Sigmoid, nn.Tanh, nn.Softmax)


class _Unshared(nn.Module):
    """Stands in for an activation module that a network calls several times per forward (ResNet's
    `self.relu`, EfficientNet-Lite's `_swish`): DeepLift keeps per-call state on the module, so
    each call gets its own copy, in call order."""

    def __init__(self, module: nn.Module, uses: int) -> None:
        super().__init__()
        self.copies = nn.ModuleList(copy.deepcopy(module) for _ in range(uses))
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.copies[self.calls % len(self.copies)](x)
        self.calls += 1
        return out


def deeplift_ready(target: Any) -> Any:
    """A shallow copy of `target` over a private model copy that DeepLift can hook: activations not
    in-place (torchvision's ResNet uses in-place ReLU) and none called twice per forward."""
    model = copy.deepcopy(target.model)
    for m in model.modules():
        if isinstance(m, _DEEPLIFT_ACTIVATIONS) and getattr(m, "inplace", False):
            m.inplace = False
    clone = copy.copy(target)
    clone.model = model
    calls: dict[int, int] = {}
    hooks = [m.register_forward_hook(lambda mod, i, o: calls.__setitem__(id(mod), calls.get(id(mod), 0) + 1))
             for m in model.modules() if isinstance(m, _DEEPLIFT_ACTIVATIONS)]
    try:
        with torch.no_grad():
            clone.forward(clone.inputs())
    finally:
        for h in hooks:
            h.remove()
    wrappers: dict[int, _Unshared] = {}
    for name, m in list(model.named_modules()):
        if name and calls.get(id(m), 0) > 1:
            w = wrappers.setdefault(id(m), _Unshared(m, calls[id(m)]))
            _set_child(model, name, w)
    return clone


def _set_child(root: nn.Module, path: str, value: nn.Module) -> None:
    parent_path, _, last = path.rpartition(".")
    parent = root.get_submodule(parent_path) if parent_path else root
    if last.isdigit() and isinstance(parent, (nn.Sequential, nn.ModuleList)):
        parent[int(last)] = value
    else:
        setattr(parent, last, value)


def cam_layer(model: nn.Module) -> nn.Module:
    layer = getattr(model, "cam_layer", lambda: None)()
    if layer is None:
        raise ModelError("GradCAM needs a convolutional layer and this model has none (a transformer); use "
                         "Integrated Gradients, Saliency or the attention rollout instead.")
    return layer


def _delta(value: Any) -> float | None:
    if value is None:
        return None
    return float(torch.as_tensor(value).detach().abs().max())


def _gradient(method: Any, x: torch.Tensor, c: int, p: dict[str, Any], *, complete: bool = False,
              nt_batch: int = 8, **kwargs: Any) -> tuple[torch.Tensor, Any]:
    """A gradient method's scores, or SmoothGrad around it (the same method averaged over noisy
    inputs) when `p` turns the noise tunnel on; `complete` methods also return their delta, which
    the noise tunnel does not define."""
    if p.get("noise_tunnel"):
        from captum.attr import NoiseTunnel

        spread = float((x.max() - x.min()).detach()) or 1.0
        attr = NoiseTunnel(method).attribute(
            x, nt_type="smoothgrad", nt_samples=int(p.get("nt_samples", 10)),
            stdevs=float(p.get("stdev", 0.1)) * spread, target=c, nt_samples_batch_size=nt_batch, **kwargs)
        return attr, None
    if complete:
        return method.attribute(x, target=c, return_convergence_delta=True, **kwargs)
    return method.attribute(x, target=c, **kwargs), None


def _ig(target: Any, x: torch.Tensor, c: int, p: dict[str, Any]) -> tuple[torch.Tensor, Any]:
    from captum.attr import IntegratedGradients

    # One noisy copy at a time: each already holds `steps` interpolated inputs.
    return _gradient(IntegratedGradients(_Forward(target)), x, c, p, complete=True, nt_batch=1,
                     baselines=target.baseline(p["baseline"]), n_steps=p["steps"],
                     internal_batch_size=p.get("internal_batch_size"))


def _saliency(target: Any, x: torch.Tensor, c: int, p: dict[str, Any]) -> tuple[torch.Tensor, Any]:
    from captum.attr import Saliency

    return _gradient(Saliency(_Forward(target)), x, c, p, abs=True)


def _input_x_gradient(target: Any, x: torch.Tensor, c: int, p: dict[str, Any]) -> tuple[torch.Tensor, Any]:
    from captum.attr import InputXGradient

    return _gradient(InputXGradient(_Forward(target)), x, c, p)


def _deeplift(target: Any, x: torch.Tensor, c: int, p: dict[str, Any]) -> tuple[torch.Tensor, Any]:
    from captum.attr import DeepLift

    target = deeplift_ready(target)
    return _gradient(DeepLift(_Forward(target)), x, c, p, complete=True, baselines=target.baseline(p["baseline"]))


def _gradient_shap(target: Any, x: torch.Tensor, c: int, p: dict[str, Any]) -> tuple[torch.Tensor, Any]:
    from captum.attr import GradientShap

    base = target.baseline(p["baseline"])
    spread = float((x - base).abs().max().detach()) or 1.0
    return GradientShap(_Forward(target)).attribute(
        x, baselines=base, n_samples=p["samples"],
        stdevs=p["stdev"] * spread, target=c, return_convergence_delta=True)


def _perturbation_batch(target: Any) -> int:
    return 16 if target.task == "image" else 32


def _occlusion(target: Any, x: torch.Tensor, c: int, p: dict[str, Any]) -> tuple[torch.Tensor, Any]:
    from captum.attr import FeatureAblation

    with torch.no_grad():
        attr = FeatureAblation(_Forward(target, probabilities=True)).attribute(
            x, baselines=target.baseline(p["baseline"]), target=c, feature_mask=target.feature_mask(p.get("patch", 16)),
            perturbations_per_eval=_perturbation_batch(target))
    return attr, None


def _kernel_shap(target: Any, x: torch.Tensor, c: int, p: dict[str, Any]) -> tuple[torch.Tensor, Any]:
    from captum.attr import KernelShap

    with torch.no_grad():
        attr = KernelShap(_Forward(target, probabilities=True)).attribute(
            x, baselines=target.baseline(p["baseline"]), target=c, feature_mask=target.feature_mask(p.get("patch", 16)),
            n_samples=p["samples"], perturbations_per_eval=_perturbation_batch(target))
    return attr, None


def _gradcam(target: Any, x: torch.Tensor, c: int, p: dict[str, Any]) -> tuple[torch.Tensor, Any]:
    from captum.attr import LayerGradCam

    layer = cam_layer(target.model)
    return LayerGradCam(_Forward(target), layer).attribute(x, target=c, relu_attributions=True), None


def _smoothgrad(target: Any, x: torch.Tensor, c: int, p: dict[str, Any]) -> tuple[torch.Tensor, Any]:
    from captum.attr import NoiseTunnel, Saliency

    spread = float((x.max() - x.min()).detach()) or 1.0
    return NoiseTunnel(Saliency(_Forward(target))).attribute(
        x, nt_type="smoothgrad", nt_samples=p["nt_samples"], stdevs=p["stdev"] * spread, target=c,
        nt_samples_batch_size=8), None


# Every method of the catalog, by name: its compute function (the noise tunnel, where the catalog
# allows one, is the function's own business).
COMPUTE: dict[str, Callable[[Any, torch.Tensor, int, dict[str, Any]], tuple[torch.Tensor, Any]]] = {
    "ig": _ig, "saliency": _saliency, "input_x_gradient": _input_x_gradient, "deeplift": _deeplift,
    "gradient_shap": _gradient_shap, "occlusion": _occlusion, "kernel_shap": _kernel_shap,
    "gradcam": _gradcam, "smoothgrad": _smoothgrad,
}


def resolve_params(method: str, task: str, params: dict[str, Any] | None) -> dict[str, Any]:
    """The method's defaults with the caller's values, a task-appropriate baseline, and the
    noise-tunnel settings only where they apply."""
    info = get_method(method)
    p = info.params(params)
    if info.uses_baseline or p.get("noise_tunnel"):
        p.setdefault("baseline", DEFAULT_BASELINE[task])
    else:
        p.pop("baseline", None)
    if p.get("noise_tunnel"):
        if not info.gradient:
            p.pop("noise_tunnel")
        else:
            p["noise_tunnel"] = True
            p.setdefault("nt_samples", 10)
            p.setdefault("stdev", 0.1)
    else:
        p.pop("noise_tunnel", None)
    if task == "text":
        p.pop("patch", None)
    return p


def attribute(target: Any, method: str, class_index: int, params: dict[str, Any] | None = None) -> RawAttribution:
    """Scores for `class_index` by `method` on `target` (a TextTarget or ImageTarget)."""
    info = get_method(method)
    if target.task not in info.tasks:
        raise ModelError(f"{info.label} applies to {' and '.join(info.tasks)} models, not {target.task} models.")
    p = resolve_params(info.name, target.task, params)
    x = target.inputs().detach().requires_grad_(True)
    was_training = target.model.training
    target.model.eval()
    try:
        with warnings.catch_warnings():
        # Captum notes that it set requires_grad or hooked activations: both expected here.
            warnings.filterwarnings("ignore", category=UserWarning, module=r"captum\..*")
            attr, delta = COMPUTE[info.name](target, x, class_index, p)
    finally:
        target.model.train(was_training)
    scores = target.reduce_groups(attr) if info.grouped else target.reduce(attr)
    return RawAttribution(scores, _delta(delta), info.passes(p, target.n_features(p.get("patch", 16))))
