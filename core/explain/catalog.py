"""The explanation methods tunescope offers, one `MethodInfo` entry each: names, when each applies,
default parameters, how many forward/backward passes it costs, and what to tell a student about it.
Torch-free. Adding a method: one entry here plus one compute function in
`core/explain/attributions.py` (tests check that the two tables name the same methods)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import ConfigError
from core.models.catalog import saved_is_convolutional

TEXT_BASELINES = ("pad", "mask", "zeros")
IMAGE_BASELINES = ("blur", "black", "zeros")
DEFAULT_BASELINE = {"text": "pad", "image": "blur"}
DEFAULT_MAX_TOKENS = 128  # tokens of a text explained unless told otherwise


@dataclass(frozen=True)
class MethodInfo:
    name: str
    label: str
    summary: str  # one plain sentence: what the picture means
    caveat: str  # the main reason not to over-trust it
    # Forward(+backward) passes of one attribution from its parameters and the number of words or
    # patches; `noise_tunnel` multiplies it for gradient methods.
    cost: Callable[[dict[str, Any], int], int]
    tasks: tuple[str, ...] = ("text", "image")
    needs_cnn: bool = False  # GradCAM: a convolutional layer to read
    uses_baseline: bool = False
    # A gradient method: explains the logit, and SmoothGrad (the noise tunnel) can wrap it.
    gradient: bool = False
    # Scores one value per word / patch group (every element carries the group's value).
    grouped: bool = False
    defaults: dict[str, Any] = field(default_factory=dict)
    # (parameter, word) the cost sentence names, e.g. ("steps", "steps") -> ", 50 steps".
    cost_note: tuple[str, str] | None = None
    # Parameters the Explain form's shared fields leave at this method's defaults (the form's one
    # samples field is KernelShap's; GradientShap keeps its 20).
    keeps_own: tuple[str, ...] = ()
    # Scores carry a sign (for or against the class); Saliency's |gradient| and GradCAM's ReLU map do not.
    signed: bool = True
    short: str = ""  # a name for tight places (job titles); the label when empty

    @property
    def short_name(self) -> str:
        return self.short or self.label

    def params(self, given: dict[str, Any] | None = None) -> dict[str, Any]:
        """Defaults overlaid with the given values; unknown or out-of-range values are refused."""
        out = dict(self.defaults)
        for key, value in (given or {}).items():
            if value is None:
                continue
            if key not in PARAM_RANGES:
                raise ConfigError(f"Unknown parameter {key!r} for {self.label}; known: "
                                  f"{', '.join(sorted(PARAM_RANGES))}.")
            lo, hi = PARAM_RANGES[key]
            if isinstance(lo, (int, float)):
                v = type(lo)(value)
                if not lo <= v <= hi:
                    raise ConfigError(f"{key} must be between {lo} and {hi} for {self.label}, got {value}.")
                value = v
            out[key] = value
        return out

    def relevant(self, given: dict[str, Any]) -> dict[str, Any]:
        """The options of a form or command line shared by several methods that mean something to
        this one (one IG-steps field, one baseline choice, one SmoothGrad switch for all)."""
        out = {k: v for k, v in given.items() if k in self.defaults and v is not None}
        if given.get("noise_tunnel") and self.gradient:
            out["noise_tunnel"] = True
        if (self.uses_baseline or out.get("noise_tunnel")) and given.get("baseline") is not None:
            out["baseline"] = given["baseline"]
        return out

    def passes(self, params: dict[str, Any], n_features: int) -> int:
        """Forward(+backward) passes one attribution costs; `n_features` = tokens or image patches."""
        p = self.params(params)
        base = self.cost(p, n_features)
        if p.get("noise_tunnel") and self.gradient:
            base *= int(p.get("nt_samples", 10))
        return int(base)

    def cost_detail(self, params: dict[str, Any] | None) -> str:
        """What the cost sentence says after the label (", 50 steps"), or nothing."""
        if self.cost_note is None:
            return ""
        key, word = self.cost_note
        return f", {self.params(params).get(key)} {word}"


# Ranges double as the list of known parameters (kind of value from the lower bound's type).
PARAM_RANGES: dict[str, tuple[Any, Any]] = {
    "steps": (2, 500), "samples": (2, 2000), "nt_samples": (2, 200), "stdev": (0.0, 10.0),
    "patch": (2, 128), "baseline": ("", ""), "noise_tunnel": ("", ""), "internal_batch_size": (1, 1024),
}


def _one_pass(p: dict[str, Any], n_features: int) -> int:
    return 1


METHODS: dict[str, MethodInfo] = {m.name: m for m in (
    MethodInfo(
        "ig", "Integrated Gradients",
        "Adds up the model's gradients along a straight path from a neutral baseline to the input, so "
        "the scores sum to the change in the class score (the 'completeness' check shown as delta).",
        "The answer depends on the baseline: a different 'neutral' input gives a different picture.",
        cost=lambda p, n: p.get("steps", 50) + 1, cost_note=("steps", "steps"),
        uses_baseline=True, gradient=True, defaults={"steps": 50, "internal_batch_size": 16}, short="IG"),
    MethodInfo(
        "saliency", "Saliency (gradient)",
        "How much the class score would change for a tiny change of each input: the size of the gradient.",
        "Gradients are local and noisy; they say what is sensitive, not what was used.",
        cost=_one_pass, gradient=True, defaults={}, signed=False, short="Saliency"),
    MethodInfo(
        "input_x_gradient", "Input × Gradient",
        "The gradient times the input itself: a first-order guess of each part's contribution.",
        "Only exact for linear models; saturated units get no credit.",
        cost=_one_pass, gradient=True, defaults={}),
    MethodInfo(
        "deeplift", "DeepLift",
        "Compares each unit's activation with its value on the baseline and shares out the difference "
        "in the class score; fast, and complete like Integrated Gradients.",
        "Its rules are exact only for simple activations; attention and GELU fall back to gradients.",
        cost=lambda p, n: 2, uses_baseline=True, gradient=True, defaults={}),
    MethodInfo(
        "gradient_shap", "GradientShap",
        "Averages Input × Gradient at random points between noisy copies of the input and the "
        "baseline: an approximation of SHAP values.",
        "Random: two runs differ a little; more samples make it steadier.",
        cost=lambda p, n: p.get("samples", 20), cost_note=("samples", "samples"),
        uses_baseline=True, defaults={"samples": 20, "stdev": 0.1}, keeps_own=("samples",)),
    MethodInfo(
        "occlusion", "Occlusion",
        "Hides one word (or image patch) at a time and records how much the class probability drops.",
        "Ignores interactions: two words that each suffice look unimportant.",
        cost=lambda p, n: n + 1, uses_baseline=True, grouped=True, defaults={"patch": 16}),
    MethodInfo(
        "kernel_shap", "KernelShap",
        "Fits a weighted linear model to the predictions on many random on/off combinations of words "
        "(or patches): Shapley values without gradients.",
        "Sampled: costly, and noisy with few samples.",
        cost=lambda p, n: p.get("samples", 200), cost_note=("samples", "samples"),
        uses_baseline=True, grouped=True, defaults={"samples": 200, "patch": 16}),
    MethodInfo(
        "gradcam", "GradCAM",
        "Weights the last convolutional feature maps by their average gradient: a coarse map of the "
        "regions that raised the class score.",
        "Coarse (the last layer's resolution) and blind to evidence against the class.",
        cost=_one_pass, tasks=("image",), needs_cnn=True, defaults={}, signed=False),
    MethodInfo(
        "smoothgrad", "SmoothGrad",
        "Averages the gradient over noisy copies of the input, which removes much of the speckle of "
        "plain saliency.",
        "Sharper-looking is not the same as more faithful; check the faithfulness score.",
        cost=lambda p, n: p.get("nt_samples", 20), cost_note=("nt_samples", "samples"),
        defaults={"nt_samples": 20, "stdev": 0.1}, signed=False),
)}

ALIASES = {"integrated_gradients": "ig", "ixg": "input_x_gradient", "gradient": "saliency",
           "shap": "kernel_shap", "gradshap": "gradient_shap", "grad_cam": "gradcam",
           "noise_tunnel": "smoothgrad", "feature_ablation": "occlusion"}

# Views of the table for callers that want a list.
GRADIENT_METHODS = tuple(m.name for m in METHODS.values() if m.gradient)


def get_method(name: str) -> MethodInfo:
    key = ALIASES.get(name.lower().replace("-", "_"), name.lower().replace("-", "_"))
    if key not in METHODS:
        raise ConfigError(f"Unknown explanation method {name!r}; choose one of {', '.join(METHODS)}.")
    return METHODS[key]


def method_params(method: str, given: dict[str, Any]) -> dict[str, Any]:
    """The Explain form's shared settings that apply to `method`, less those it keeps its own."""
    info = get_method(method)
    return info.relevant({k: v for k, v in given.items() if k not in info.keeps_own})


def has_conv_layer(model_dir: Path) -> bool:
    """Whether a saved image model is convolutional (GradCAM applies; no attention), read from its
    saved spec without loading it."""
    return saved_is_convolutional(model_dir)


# The faithfulness check (core/explain/faithfulness.py) and its cost estimate read these together.
TEXT_FRACTIONS = (0.1, 0.2, 0.5)
IMAGE_STEPS = 10
IMAGE_GRID = 14
RANDOM_RANKINGS = 3


def faithfulness_forwards(task: str) -> int:
    """Forward passes (no backward) the faithfulness check adds to an explanation: the prediction,
    then each ranking (the explanation's and the random ones) at each fraction, removed and kept
    (text), or along the deletion and insertion curves (images)."""
    rankings = 1 + RANDOM_RANKINGS
    if task == "text":
        return 1 + rankings * len(TEXT_FRACTIONS) * 2
    return 1 + rankings * 2 * (IMAGE_STEPS + 1)


def methods_for(task: str, has_cnn: bool) -> list[MethodInfo]:
    """The methods that apply to a model of this kind, in the order the UI offers them."""
    return [m for m in METHODS.values() if task in m.tasks and (has_cnn or not m.needs_cnn)]


def suggested_method(task: str, has_cnn: bool) -> str:
    """The method offered first: Integrated Gradients for text (complete), GradCAM for a
    convolutional image model, Saliency for an image transformer (cheap, no layer to read)."""
    if task == "text":
        return "ig"
    return "gradcam" if has_cnn else "saliency"


def suggested_for(task: str, has_cnn: bool, examples: int) -> tuple[str, dict[str, Any]]:
    """`suggested_method` with settings cheap enough to explain `examples` inputs on a CPU: Integrated
    Gradients drops from its default steps to 32 for a handful (the report's two) and to 16 for more
    (the dataset view's hundred); the other suggestions are cheap at their defaults."""
    method = suggested_method(task, has_cnn)
    if method == "ig":
        return method, {"steps": 32 if examples <= 10 else 16}
    return method, {}


def estimate_seconds(method: str, params: dict[str, Any] | None, per_pass_s: float, n_features: int) -> float:
    return get_method(method).passes(params or {}, n_features) * per_pass_s


def describe_cost(method: str, params: dict[str, Any] | None, seconds: float, device: str) -> str:
    info = get_method(method)
    where = "GPU" if str(device).startswith("cuda") else "CPU"
    shown = f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    return f"{info.label}{info.cost_detail(params)}: ~{shown} on {where}"
