"""What the Explain page asks core/explain for: what a job's config looks like (built beside the code
that reads it), when work is long enough for the worker, and what an explanation is estimated to
cost before it runs. Torch is needed only where a job is run."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from run_factory import write_fake_run

from core.explain import catalog, jobs, timing

FORM = {"baseline": "mask", "steps": 10, "samples": 300, "noise_tunnel": True}


def test_the_inline_limit_is_read_on_every_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(jobs.INLINE_LIMIT_ENV, raising=False)
    assert jobs.inline_limit_s() == 20.0
    assert not jobs.needs_job(20.0) and jobs.needs_job(20.1)
    monkeypatch.setenv(jobs.INLINE_LIMIT_ENV, "0")
    assert jobs.needs_job(0.001) and not jobs.needs_job(0.0)


def test_a_sanity_check_goes_to_the_worker_when_its_stages_add_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(jobs.INLINE_LIMIT_ENV, "8")
    assert not jobs.sanity_needs_job(1.0, "some text")  # 8 stages × 1 s: not over 8 s
    assert jobs.sanity_needs_job(1.01, "some text")
    assert not jobs.sanity_needs_job(100.0, object())  # an in-memory image cannot travel to the worker


def test_the_form_settings_reach_only_the_methods_they_mean_something_to() -> None:
    assert catalog.method_params("ig", FORM) == {"steps": 10, "baseline": "mask", "noise_tunnel": True}
    assert catalog.method_params("kernel_shap", FORM) == {"samples": 300, "baseline": "mask"}
    assert catalog.method_params("gradient_shap", FORM) == {"baseline": "mask"}  # keeps its own 20 samples
    assert catalog.method_params("saliency", FORM) == {"noise_tunnel": True, "baseline": "mask"}
    assert catalog.method_params("gradcam", FORM) == {}


def test_the_method_offered_first_suits_the_model() -> None:
    assert catalog.suggested_method("text", False) == "ig"
    assert catalog.suggested_method("image", True) == "gradcam"
    assert catalog.suggested_method("image", False) == "saliency"
    for task, cnn in (("text", False), ("image", True), ("image", False)):
        assert catalog.suggested_method(task, cnn) in [m.name for m in catalog.methods_for(task, cnn)]


def test_job_configs_name_their_op_and_the_run(tmp_path: Path) -> None:
    run, other = tmp_path / "r1", tmp_path / "r2"
    ex = jobs.explain_config(run, "great film", ["ig", "kernel_shap"], "pos", 64, FORM)
    assert ex == {"op": "explain", "run": str(run), "value": "great film", "methods": ["ig", "kernel_shap"],
                  "target": "pos", "max_tokens": 64,
                  "params_by_method": {"ig": catalog.method_params("ig", FORM),
                                       "kernel_shap": catalog.method_params("kernel_shap", FORM)}}
    cmp = jobs.compare_config(run, other, "great film", "gradient_shap", None, FORM, 32)
    assert cmp["op"] == "compare" and cmp["other"] == str(other) and cmp["params"] == {"baseline": "mask"}
    san = jobs.sanity_config(run, "great film", "ig", 1, {"steps": 10}, 128)
    assert san["op"] == "sanity" and san["params"] == {"steps": 10} and san["target"] == 1
    assert jobs.dataset_config(run, 30) == {"op": "dataset", "run": str(run), "n": 30}
    assert {c["op"] for c in (ex, cmp, san)} | {"dataset"} == set(jobs.OPS)
    # The job list's title for each config, written by the module that builds them.
    assert jobs.explain_title(jobs.dataset_config(run, 30)) == "dataset view (IG) of run r1, test set (30 examples)"
    assert jobs.explain_title(san) == 'sanity check of IG on run r1, text "great film"'
    assert jobs.explain_title(ex) == 'IG + KernelShap on run r1, text "great film"'


class _Ctx:
    def __init__(self, config: dict[str, Any]) -> None:
        self.job = SimpleNamespace(config=config)
        self.phases: list[dict[str, Any]] = []

    def should_stop(self) -> bool:
        return False

    def update(self, **kw: Any) -> None:
        self.phases.append(kw)


def test_the_job_runner_reads_what_the_builders_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.explain import explainer

    run = write_fake_run(tmp_path / "runs", "text-run")
    seen: dict[str, Any] = {}

    def explain_methods(run_dir, value, methods, target, progress=None, params_by_method=None, **kw):
        seen.update(run=run_dir, value=value, methods=methods, target=target, params=params_by_method, **kw)
        return [SimpleNamespace(method=m, seconds=0.5) for m in methods]

    monkeypatch.setattr(explainer, "explain_methods", explain_methods)
    cfg = jobs.explain_config(run, "great film", ["ig", "saliency"], "pos", 64, FORM)
    out = jobs.run_explain_job(_Ctx(cfg))
    assert out == {"op": "explain", "methods": ["ig", "saliency"], "seconds": 1.0}
    assert seen["run"] == str(run) and seen["target"] == "pos" and seen["max_tokens"] == 64
    assert seen["params"] == cfg["params_by_method"]


def test_the_input_size_an_estimate_assumes() -> None:
    assert timing.input_size("a b c", "text") == (8, 3)
    assert timing.input_size("", "text") == (2, 1)
    assert timing.input_size("w " * 400, "text") == (512, 400)
    # Occlusion's cells on the run's own image size: 6 × 6 cells of 16 pixels at 96, not 14 × 14.
    assert timing.input_size("x.png", "image", 96) == (96, 36)
    assert timing.input_size("x.png", "image", 96, patch=8) == (96, 144)
    assert timing.input_size("x.png", "image", 32, patch=64) == (32, 1)
    assert timing.input_size("x.png", "image", None) == (224, 196)


def test_the_estimate_sums_the_methods_on_the_runs_device(tmp_path: Path) -> None:
    summary = {"device": "cuda:0", "total_params": 22_700_000}
    total, lines = timing.estimate_methods(tmp_path, summary, ["ig", "gradient_shap", "kernel_shap"], FORM,
                                           "a great film", "text")
    assert len(lines) == 3 and all(" on GPU" in line for line in lines)
    assert lines[0].startswith("Integrated Gradients, 10 steps: ~")
    assert lines[1].startswith("GradientShap, 20 samples: ~")  # the form's samples field is KernelShap's
    assert lines[2].startswith("KernelShap, 300 samples: ~")
    one = [timing.estimate(tmp_path, m, catalog.method_params(m, FORM), task="text", size=8, n_features=3,
                           total_params=22_700_000, device="cuda")[0] for m in ("ig", "gradient_shap", "kernel_shap")]
    assert total == pytest.approx(sum(one))
    _, cpu = timing.estimate_methods(tmp_path, {}, ["saliency"], {}, "a great film", "text")
    assert " on CPU" in cpu[0]
