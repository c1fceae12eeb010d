"""The `explain` job kind: long explanations, sanity checks and dataset views in the worker.

Results land in the run's explanations cache, where the page (or a repeated CLI call) finds them;
the job's own result only says where. Job config: {"op": "explain" | "sanity" | "dataset", "run":
<run dir>, "value": <text or image path>, "methods" + "params_by_method" (explain), "method" +
"params" (sanity, dataset, compare), "other": <second run dir> (compare), "target", "n", "max_tokens"}.
The `*_config` functions build these configs and `run_explain_job` reads them; `needs_job` and
`sanity_needs_job` decide what is long enough to go to the worker instead of running inline.

An image from an upload (or handed over from Predict) reaches a job as a file staged privately for
the browser that gave it (`stage_image`); a job reads an image only from there or from the
run's own test examples, never another path on the server."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePath
from typing import Any

from core.data.archive import is_image_name
from core.data.store import SESSION_ID, forget_stale_folders
from core.errors import ConfigError, DataError
from core.explain.catalog import DEFAULT_MAX_TOKENS, METHODS, method_params
from core.jobs.context import JobStopped
from core.runs import Run, atomic_write_bytes, tunescope_home

OPS = ("explain", "sanity", "dataset", "compare")
INLINE_LIMIT_ENV = "TUNESCOPE_EXPLAIN_INLINE_S"
# Re-explanations a sanity check makes, one per randomised stage (head, each block, then the
# embeddings or the stem): about 8 for MiniLM. Only its cost estimate reads this.
SANITY_STAGES = 8


def inline_limit_s() -> float:
    """Seconds of estimated work the UI still runs inline; longer work goes to the worker. Read on
    every call, so a server admin (or a test) can move the line without a restart."""
    return float(os.environ.get(INLINE_LIMIT_ENV, "20"))


def needs_job(seconds: float) -> bool:
    """Whether work estimated at `seconds` goes to the worker rather than running inline."""
    return seconds > inline_limit_s()


def sanity_needs_job(explain_seconds: float, value: Any) -> bool:
    """Whether the sanity check of an explanation that took `explain_seconds` goes to the worker.
    Every input is a text or a file by now (uploads are staged), so any can be a job; an in-memory
    image (the library's callers may pass one) cannot travel and stays inline."""
    return needs_job(explain_seconds * SANITY_STAGES) and isinstance(value, str)


def explain_config(run_dir: str | Path, value: Any, methods: Sequence[str], target: Any, max_tokens: int,
                   form: dict[str, Any]) -> dict[str, Any]:
    """An "explain" job: `methods` on `value`, each with the settings of `form` that apply to it."""
    return {"op": "explain", "run": str(run_dir), "value": value, "methods": list(methods), "target": target,
            "max_tokens": max_tokens, "params_by_method": {m: method_params(m, form) for m in methods}}


def compare_config(run_dir: str | Path, other_dir: str | Path, value: Any, method: str, target: Any,
                   form: dict[str, Any], max_tokens: int) -> dict[str, Any]:
    """A "compare" job: the same input and class explained under two runs."""
    return {"op": "compare", "run": str(run_dir), "other": str(other_dir), "value": value, "method": method,
            "target": target, "params": method_params(method, form), "max_tokens": max_tokens}


def sanity_config(run_dir: str | Path, value: Any, method: str, target: Any, params: dict[str, Any],
                  max_tokens: int) -> dict[str, Any]:
    """A "sanity" job for an explanation already made, with the parameters it was made with."""
    return {"op": "sanity", "run": str(run_dir), "value": value, "method": method, "target": target,
            "params": params, "max_tokens": max_tokens}


def dataset_config(run_dir: str | Path, n: int) -> dict[str, Any]:
    """A "dataset" job: the dataset view over `n` test examples with the task's default method."""
    return {"op": "dataset", "run": str(run_dir), "n": n}


def inputs_dir() -> Path:
    return tunescope_home() / "explain-inputs"


def stage_image(session_id: str, data: bytes, filename: str) -> Path:
    """Keep an uploaded image's bytes for this session's explanations (inline or in the worker),
    named by their hash so the explanation cache recognises the same image again. Staged images
    not touched for a day are removed (as staged dataset uploads are)."""
    if not SESSION_ID.fullmatch(session_id):
        raise DataError("Invalid session id for an uploaded image.")
    if not data:
        raise DataError(f"{filename!r} is empty (0 bytes); upload a PNG, JPEG, WebP or BMP image.")
    suffix = Path(filename).suffix.lower() if is_image_name(filename) else ".img"

    forget_stale_folders(inputs_dir())
    folder = inputs_dir() / session_id
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{hashlib.sha256(data).hexdigest()[:32]}{suffix}"
    if not path.is_file():
        atomic_write_bytes(path, data)
    path.touch()
    folder.touch()
    return path


def check_value(run_dir: str | Path, value: Any) -> None:
    """Refuse an image path a job may not read: only staged uploads and the run's test examples."""
    if not isinstance(value, str):
        return
    run = Run(Path(run_dir))
    if (run.summary().get("task") or run.config().get("task")) != "image":
        return  # text is explained as text, never opened
    staged = Path(value).is_absolute() and Path(value).resolve().is_relative_to(inputs_dir().resolve())
    if staged or value in set(run.predictions()["input"].astype(str)):
        return
    raise DataError("This explanation job names an image that is neither an uploaded image of its session nor a "
                    "test example of the run; upload the image again on the Explain page.")


def _method_name(method: Any) -> str:
    name = str(method or "ig")
    return METHODS[name].short_name if name in METHODS else name


def _run_name(path: Any) -> str:
    return PurePath(str(path or "?").rstrip("/")).name or "?"


def _input_kind(value: Any) -> str:
    if value is None:
        return "no input"
    text = str(value)
    if PurePath(text).suffix.lower() in (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".img"):
        return "an uploaded image" if "explain-inputs" in PurePath(text).parts else "a test image"
    snippet = " ".join(text.split())
    return f'text "{snippet[:40]}…"' if len(snippet) > 40 else f'text "{snippet}"'


def explain_title(config: Mapping[str, Any]) -> str:
    """What an explain job explains, from its stored config (see core.explain.jobs), e.g.
    'IG on run r-abc, a typed text' or 'dataset view of run r-abc, test set (100 examples)'."""
    op = config.get("op")
    run = _run_name(config.get("run"))
    if op == "dataset":
        n = config.get("n", 100)
        return f"dataset view ({_method_name(config.get('method'))}) of run {run}, test set ({n} examples)"
    methods = config.get("methods") or [config.get("method")]
    names = " + ".join(_method_name(m) for m in methods)
    kind = _input_kind(config.get("value"))
    if op == "sanity":
        return f"sanity check of {names} on run {run}, {kind}"
    if op == "compare":
        return f"{names} on runs {run} and {_run_name(config.get('other'))}, {kind}"
    return f"{names} on run {run}, {kind}"


def run_explain_job(ctx: Any) -> dict[str, Any]:
    cfg = dict(ctx.job.config)
    op = cfg.get("op")
    if op not in OPS:
        raise ConfigError(f"Explain job op must be one of {', '.join(OPS)}, got {op!r}.")

    def progress(done: int, total: int, name: str = "") -> None:
        if ctx.should_stop():
            raise JobStopped("Cancelled.")
        ctx.update(phase=f"{op} {name}".strip(), phase_done=done, phase_total=total)

    if op in ("explain", "sanity", "compare"):
        check_value(cfg["run"], cfg.get("value"))
    if op == "compare":
        check_value(cfg["other"], cfg.get("value"))
    ctx.update(phase=f"{op}: loading the model")
    common = {"device": cfg.get("device", "auto")}
    if op == "dataset":
        from core.explain.dataset_view import dataset_view

        res = dataset_view(cfg["run"], int(cfg.get("n", 100)), cfg.get("method"), cfg.get("params"),
                           progress=progress, **common)
        return {"op": op, "n": res["n"], "seconds": res["seconds"]}
    if op == "sanity":
        from core.explain.sanity import sanity_check

        res = sanity_check(cfg["run"], cfg["value"], cfg.get("method", "ig"), cfg.get("target"),
                           params=cfg.get("params"), max_tokens=int(cfg.get("max_tokens", DEFAULT_MAX_TOKENS)),
                           progress=progress, **common)
        return {"op": op, "passed": res["passed"], "final_spearman": res["final_spearman"]}
    if op == "compare":  # the same input and class under a second run, for the page's side-by-side view
        from core.explain.explainer import explain

        progress(0, 2, cfg.get("method", "ig"))
        a = explain(cfg["run"], cfg["value"], cfg.get("method", "ig"), cfg.get("target"), params=cfg.get("params"),
                    max_tokens=int(cfg.get("max_tokens", DEFAULT_MAX_TOKENS)), **common)
        progress(1, 2, cfg.get("method", "ig"))
        b = explain(cfg["other"], cfg["value"], a.method, a.target_label, params=cfg.get("params"),
                    max_tokens=int(cfg.get("max_tokens", DEFAULT_MAX_TOKENS)), **common)
        progress(2, 2, "done")
        return {"op": op, "methods": [a.method], "seconds": round(a.seconds + b.seconds, 3)}
    from core.explain.explainer import explain_methods

    recs = explain_methods(cfg["run"], cfg["value"], cfg.get("methods") or [cfg.get("method", "ig")],
                           cfg.get("target"), progress=progress, params_by_method=cfg.get("params_by_method"),
                           max_tokens=int(cfg.get("max_tokens", DEFAULT_MAX_TOKENS)), **common)
    return {"op": op, "methods": [r.method for r in recs], "seconds": round(sum(r.seconds for r in recs), 3)}
