"""The `explain` job kind: long explanations, sanity checks and dataset views in the worker.

Results land in the run's explanations cache, where the page (or a repeated CLI call) finds them;
the job's own result only says where. Job config: {"op": "explain" | "sanity" | "dataset", "run":
<run dir>, "value": <text or image path>, "methods" + "params_by_method" (explain), "method" +
"params" (sanity, dataset), "target", "n", "max_tokens"}."""

from __future__ import annotations

from typing import Any

from core.errors import ConfigError

OPS = ("explain", "sanity", "dataset")


def describe(config: dict[str, Any]) -> str:
    op = config.get("op")
    run = str(config.get("run", "")).rstrip("/").rsplit("/", 1)[-1]
    if op == "dataset":
        return f"dataset view of {run} ({config.get('n', 100)} examples)"
    return f"{op} {config.get('method', 'ig')} for {run}"


def run_explain_job(ctx: Any) -> dict[str, Any]:
    from core.worker import JobStopped

    cfg = dict(ctx.job.config)
    op = cfg.get("op")
    if op not in OPS:
        raise ConfigError(f"Explain job op must be one of {', '.join(OPS)}, got {op!r}.")

    def progress(done: int, total: int, name: str = "") -> None:
        if ctx.should_stop():
            raise JobStopped("Cancelled.")
        ctx.update(phase=f"{op} {name}".strip(), phase_done=done, phase_total=total)

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
                           params=cfg.get("params"), max_tokens=int(cfg.get("max_tokens", 128)),
                           progress=progress, **common)
        return {"op": op, "passed": res["passed"], "final_spearman": res["final_spearman"]}
    from core.explain.explainer import explain_methods

    recs = explain_methods(cfg["run"], cfg["value"], cfg.get("methods") or [cfg.get("method", "ig")],
                           cfg.get("target"), progress=progress, params_by_method=cfg.get("params_by_method"),
                           max_tokens=int(cfg.get("max_tokens", 128)), **common)
    return {"op": op, "methods": [r.method for r in recs], "seconds": round(sum(r.seconds for r in recs), 3)}
