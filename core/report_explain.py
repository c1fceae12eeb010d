"""The explanations a stakeholder report embeds: the ones its author chose, looked up by their
cache key in the run's explanation cache, each with its (current-version) sanity check; and, for
`tunescope report --explain`, two fresh ones per run. Imports core.explain lazily (torch)."""

from __future__ import annotations

import json
from typing import Any

from core.runs import Run


def _sanity_key(method: str, target: int, input_hash: str | None, params: Any, max_tokens: Any) -> str:
    return json.dumps([method, target, input_hash, params, max_tokens], sort_keys=True, default=str)


def _sanity_results(run: Run) -> dict[str, dict[str, Any]]:
    from core.explain.record import SANITY_VERSION

    out = {}
    for p in (run.path / "explanations").glob("sanity-*.json"):
        try:
            res = json.loads(p.read_text())
            if res.get("version") != SANITY_VERSION:  # made by an older, weaker check: not shown
                continue
            out[_sanity_key(res["method"], res["target"], res.get("input_hash"), res.get("params"),
                            res.get("max_tokens"))] = res
        except (OSError, ValueError, KeyError):
            continue
    return out


def _with_sanity(run: Run, rec: Any) -> tuple[Any, dict[str, Any] | None]:
    return rec, _sanity_results(run).get(_sanity_key(rec.method, rec.target, rec.extra.get("input_hash"),
                                                     rec.params, rec.extra.get("max_tokens")))


def chosen_explanation(run: Run, key: str) -> tuple[Any, dict[str, Any] | None] | None:
    """The cached explanation `key` of `run` with its sanity result, or None when it is gone."""
    from core.explain.record import Explanation
    from core.report_drafts import KEY

    if not KEY.fullmatch(key):
        return None
    path = run.path / "explanations" / f"{key}.npz"
    rec = Explanation.load(path) if path.is_file() else None
    return None if rec is None else _with_sanity(run, rec)


def computed_explanations(run: Run) -> list[tuple[Any, dict[str, Any] | None]]:
    """Explanations of the most confident right and wrong test examples (`tunescope report --explain`)."""
    if not (run.model_dir / "tunescope_model.json").is_file():
        return []
    from core.explain.catalog import has_conv_layer, suggested_for
    from core.explain.explainer import explain
    from core.explain.sanity import sanity_check

    preds = run.predictions()
    picks = [preds[preds["correct"]].nlargest(1, "confidence"), preds[~preds["correct"]].nlargest(1, "confidence")]
    task = run.summary().get("task")
    method, settings = suggested_for(task, task != "text" and has_conv_layer(run.model_dir), examples=len(picks))
    params = settings or None
    found = []
    for pick in picks:
        for row in pick.itertuples():
            rec = explain(run, str(row.input), method, params=params)
            found.append((rec, sanity_check(run, str(row.input), method, params=params)))
    return found
