"""`tunescope explain`: why a run predicts what it predicts, as JSON or a self-contained HTML page."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from core.cli.common import add_command, checked_run
from core.errors import ConfigError
from core.explain.catalog import METHODS, get_method


def add_commands(sub: Any) -> None:
    p = add_command(sub, "explain", cmd_explain,
                    help="Explain one prediction of a trained run (Captum attributions, "
                         "faithfulness, optional sanity check and comparison with another run).")
    p.add_argument("--run", required=True, help="Run directory or run id.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--text", help="Text to explain (text runs).")
    src.add_argument("--image", help="Image file to explain (image runs).")
    p.add_argument("--method", default="ig", help=f"Comma-separated methods: {', '.join(METHODS)} (default ig). "
                                                  "Several methods add an agreement matrix.")
    p.add_argument("--target", help="Class to explain (name or index; default: the predicted class).")
    p.add_argument("--steps", type=int, help="Integrated Gradients steps (default 50).")
    p.add_argument("--samples", type=int, help="Samples for GradientShap / KernelShap.")
    p.add_argument("--baseline", help="Baseline: pad, mask or zeros (text); blur, black or zeros (image).")
    p.add_argument("--smoothgrad", action="store_true", help="Wrap gradient methods in a SmoothGrad noise tunnel.")
    p.add_argument("--max-tokens", type=int, default=128, help="Explain at most this many tokens (default 128).")
    p.add_argument("--sanity", action="store_true", help="Also run the model-randomisation sanity check.")
    p.add_argument("--compare-run", help="Explain the same input under this run too and show the difference.")
    p.add_argument("--no-faithfulness", action="store_true", help="Skip the faithfulness scores.")
    p.add_argument("--format", choices=("json", "html"), default="json")
    p.add_argument("--out", help="Write to this file instead of standard output.")
    p.add_argument("--runs-dir")
    p.add_argument("--device", default="auto")


def _params(a: argparse.Namespace) -> dict[str, Any]:
    p: dict[str, Any] = {"steps": a.steps, "samples": a.samples, "baseline": a.baseline}
    if a.smoothgrad:
        p["noise_tunnel"] = True
    return {k: v for k, v in p.items() if v is not None}


def cmd_explain(a: argparse.Namespace) -> int:
    from core.explain.agreement import agreement_matrix, explanation_diff
    from core.explain.explainer import explain
    from core.explain.sanity import sanity_check

    value: Any = a.text
    if a.image:
        path = Path(a.image).expanduser()
        if not path.is_file():
            raise ConfigError(f"Image file {a.image!r} does not exist.")
        value = str(path.resolve())
    methods = [get_method(m.strip()).name for m in a.method.split(",") if m.strip()]
    if not methods:
        raise ConfigError("--method needs at least one method name.")
    given = _params(a)
    common = {"runs_dir": a.runs_dir, "max_tokens": a.max_tokens, "device": a.device}
    a.run = checked_run(a.run, a.runs_dir)
    records = [explain(a.run, value, m, a.target, params=get_method(m).relevant(given),
                       faithfulness=not a.no_faithfulness, **common) for m in methods]
    out: dict[str, Any] = {"explanations": [r.to_dict(arrays=a.format == "json") for r in records]}
    if len(records) > 1:
        out["agreement"] = agreement_matrix([(r.method, r.scores()) for r in records])
    first = records[0].params  # the first method's resolved settings: the sanity check and comparison reuse them
    if a.sanity:
        out["sanity"] = sanity_check(a.run, value, methods[0], a.target, params=first, **common)
    other = None
    if a.compare_run:
        other = explain(a.compare_run, value, methods[0], records[0].target_label, params=first,
                        faithfulness=not a.no_faithfulness, **common)
        diff = explanation_diff(records[0], other)
        out["compare"] = {"explanation": other.to_dict(arrays=a.format == "json"),
                          "spearman": diff["spearman"], **({"words": diff["words"], "diff": diff["diff"]}
                                                           if diff["task"] == "text" else {})}
    text = json.dumps(out, indent=2) if a.format == "json" else _html(records, out, other)
    if a.out:
        Path(a.out).write_text(text, encoding="utf-8")
        print(f"wrote {a.out}", file=sys.stderr)
    else:
        print(text)
    return 0


def _html(records: list[Any], out: dict[str, Any], other: Any) -> str:
    import html

    from core.explain.render import page_html, record_html, sanity_word

    sections = [record_html(r.to_dict()) for r in records]
    if "agreement" in out:
        ag = out["agreement"]
        rows = "".join("<tr><th>" + html.escape(m) + "</th>" + "".join(f"<td>{v:+.2f}</td>" for v in row) + "</tr>"
                       for m, row in zip(ag["methods"], ag["spearman"], strict=True))
        header = "".join(f"<th>{html.escape(m)}</th>" for m in ag["methods"])
        sections.append("<section><h2>Method agreement (Spearman of |scores|)</h2><table><tr><th></th>"
                        f"{header}</tr>{rows}</table></section>")
    if "sanity" in out:
        s = out["sanity"]
        rows = "".join(f"<tr><td>{html.escape(x['stage'])}</td><td>{x['spearman']:+.2f}</td></tr>" for x in s["stages"])
        outcome = sanity_word(s["passed"])
        sections.append(f"<section><h2>Sanity check: {outcome}</h2>"
                        f"<p>{html.escape(s['summary'])}</p><table><tr><th>randomised up to</th><th>Spearman</th>"
                        f"</tr>{rows}</table></section>")
    if other is not None:
        sections.append("<section><h2>Compared with another run</h2>"
                        f"<p>Rank correlation of the two explanations: {out['compare']['spearman']:+.2f}</p></section>")
        sections.append(record_html(other.to_dict()))
    return page_html(f"tunescope explanation of run {records[0].run_id}", sections)
