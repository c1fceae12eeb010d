"""The stakeholder report: one self-contained HTML file (no scripts, images inline) about a set of
runs, readable by someone who will never open the app; and the same page printed to PDF by
headless Chromium.

First page: title, the question and the answer in one paragraph, one metrics row per experiment
(mean ± 95 % interval over seeds, test size, cost) and the verdicts (A − B, A the best group mean).
Then the dataset card, curves, confusion matrices, calibration and the explanations the author
chose, with their faithfulness and sanity check; an appendix holds one model card per experiment
(its seeds listed) and the paired tests. Every user-provided string goes through `html.escape`.
"""

from __future__ import annotations

import html
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from core import analysis, compare
from core.compare_labels import experiment_short_labels
from core.errors import ConfigError, RunError
from core.finetune import METHODS
from core.models.catalog import public_name
from core.report_explain import chosen_explanation, computed_explanations
from core.report_svg import COLOURS, DASHES, confusion_table, line_chart, share_bars
from core.runs import Run, default_runs_dir, resolve_run

CSS = """body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:62rem;margin:2rem auto;padding:0 1rem;
color:#222}h1{margin-bottom:.2rem}h2{border-bottom:2px solid #1f77b4;padding-bottom:.2rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ddd;padding:.25rem .5rem;font-size:.9rem;
text-align:left}th{background:#f5f5f5}.cm td{text-align:center;min-width:2.5rem}.bars td{border:none}
.card{border:1px solid #ddd;border-radius:6px;padding:.5rem 1rem;margin:.75rem 0;break-inside:avoid}
.muted{color:#666;font-size:.9rem}.subtitle{font-size:1.15rem;color:#444;margin:.2rem 0}
.byline{color:#666;font-size:.85rem}.ok{color:#1a7f37}.bad{color:#b42318}section{break-inside:avoid-page}
table.metrics td,table.metrics th{font-size:.8rem}table.metrics td{white-space:nowrap}
table.metrics td:first-child,table.metrics td:last-child{white-space:normal}h2.part{border-bottom-color:#999}
@page{size:A4;margin:14mm 12mm}
@media print{body{margin:0;max-width:none;font-size:10pt}h2{break-after:avoid;margin-top:1.1rem}
.first-page{break-after:page}.first-page section{break-inside:auto}.appendix{break-before:page}}"""


def _e(x: Any) -> str:
    return html.escape("" if x is None else str(x), quote=True)


def _pct(x: Any) -> str:
    return "–" if x is None else f"{float(x):.1%}"


def _num(x: Any, digits: int = 3) -> str:
    return "–" if x is None or pd.isna(x) else f"{float(x):.{digits}f}"


def _count(x: Any) -> str:
    return "–" if x is None else f"{int(x):,}"


def _runs(runs: Sequence[str | Path | Run], runs_dir: Path | None) -> list[Run]:
    out = []
    for r in runs:
        run = r if isinstance(r, Run) else resolve_run(r, runs_dir or default_runs_dir())
        if (run.status() or {}).get("state") != "succeeded" or not run.summary():
            raise RunError(f"Run {run.id} has not finished successfully; a report covers finished runs only.")
        out.append(run)
    if not out:
        raise ConfigError("Name at least one run for the report.")
    return out


def _label(run: Run) -> str:
    s = run.summary()
    return f"{run.id} ({s.get('method')}, seed {s.get('seed')})"


# -- sections ------------------------------------------------------------------------------------


def _table(runs: list[Run]) -> tuple[pd.DataFrame, list[compare.Experiment]]:
    frame = pd.DataFrame([compare.run_row(r) for r in runs])
    return compare.group_table(frame), compare.experiments(frame)


def _ranked(table: pd.DataFrame) -> list[str]:
    """Experiment keys, best group mean macro-F1 first (a group's mean over its seeds, never one lucky seed)."""
    return list(table.sort_values("macro_f1_mean", ascending=False, na_position="last")["key"])


def _seconds(x: Any) -> str:
    if x is None or pd.isna(x):
        return "–"
    x = float(x)
    return f"{x:.0f} s" if x < 120 else f"{x / 60:.1f} min" if x < 7200 else f"{x / 3600:.1f} h"


def _params(x: Any) -> str:
    if x is None or pd.isna(x):
        return "–"
    x = float(x)
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= size:
            return f"{x / size:.1f} {unit}"
    return f"{x:.0f}"


def _memory(x: Any) -> str:
    if x is None or pd.isna(x):
        return "–"
    return f"{float(x) / 1024:.1f} GB" if float(x) >= 1024 else f"{float(x):.0f} MB"


def _test_size(exp: compare.Experiment, by_id: dict[str, Run]) -> str:
    sizes = sorted({int((by_id[i].summary().get("test") or {}).get("n") or 0) for i in exp.seeds} - {0})
    return " / ".join(f"{n:,}" for n in sizes) or "–"


def summary_section(runs: list[Run], significance: list[dict[str, Any]]) -> str:
    """The question the runs answer and the answer in one paragraph, from group means over seeds."""
    table, exps = _table(runs)
    by_key = {r["key"]: r for r in table.to_dict("records")}
    s = runs[0].summary()
    datasets = list(dict.fromkeys(str((r.summary().get("dataset") or {}).get("name")) for r in runs))
    task = "texts" if s.get("task") == "text" else "images"
    labels = [str(x) for x in s.get("labels") or []]
    classes = (f"{len(labels)} classes ({_e(', '.join(labels[:8]))}{', …' if len(labels) > 8 else ''})")
    where = " and ".join(f"<b>{_e(d)}</b>" for d in datasets)
    if len(exps) >= 2:
        question = (f"Which of {len(exps)} ways of fine-tuning a model sorts {task} from {where} into {classes} "
                    "best, and what does each cost to train?")
    else:
        question = f"How well does <b>{_e(exps[0].label)}</b> sort {task} from {where} into {classes}?"
    ranked = [by_key[k] for k in _ranked(table)]
    lead = ranked[0]

    by_exp = {e.key: e for e in exps}
    by_id = {r.id: r for r in runs}

    def result(row: dict[str, Any]) -> str:
        n = row["seeds"]
        spread = f"mean ± 95 % interval over {n} seeds" if n > 1 else "one seed, no interval"
        size = _test_size(by_exp[row["key"]], by_id)
        return (f"accuracy {_e(row['accuracy'])} and macro-F1 {_e(row['macro_f1'])} ({spread}) on {_e(size)} "
                "test examples it never saw in training")

    cost = (f"; it trains {_params(lead['trainable_params'])} parameters in {_seconds(lead['train_seconds'])}"
            if lead.get("trainable_params") is not None else "")
    if len(ranked) == 1:
        answer = f"It scores {result(lead)}{cost}."
    else:
        first = next((r for r in significance if r.get("metric") == "macro_f1"), None)
        runner = ranked[1]
        if first is None:
            answer = (f"<b>{_e(lead['experiment'])}</b> has the highest mean, {result(lead)}{cost}, but it cannot be "
                      f"weighed against {_e(runner['experiment'])}: they were not scored on the same test examples "
                      "(see the dataset cards). Retrain on one split to compare them.")
        elif first.get("significant"):
            answer = (f"<b>{_e(lead['experiment'])}</b> is the better choice: {result(lead)}{cost}, against "
                      f"macro-F1 {_e(runner['macro_f1'])} for {_e(runner['experiment'])}. The difference is larger "
                      "than the noise of seeds and test examples (see the verdicts below).")
        else:
            answer = (f"No set-up is clearly better. <b>{_e(lead['experiment'])}</b> has the highest mean, "
                      f"{result(lead)}{cost}, but the difference to {_e(runner['experiment'])} (macro-F1 "
                      f"{_e(runner['macro_f1'])}) is within the noise of seeds and test examples; the cheaper one "
                      "to train is a fair pick, or add seeds or test examples to separate them.")
    answer += (f" The confidence of {_e(lead['experiment'])} is off by {_num(lead.get('ece_mean'))} on average "
               "(expected calibration error; lower is better).")
    return (f"<section><h2>Summary</h2><p><b>The question:</b> {question}</p><p><b>The answer:</b> {answer}</p>"
            "<p class='muted'>Test scores say how often a model is right on examples like the test set, nothing "
            "about inputs unlike them; see the limitations in the model cards.</p></section>")


def _test_split(run: Run) -> tuple[Any, ...]:
    """What tells one test split from another: the dataset, its recorded contents, the split seed
    and the test size."""
    s = run.summary()
    return ((s.get("dataset") or {}).get("name"), compare.dataset_fingerprint(run),
            (run.config().get("data") or {}).get("split_seed"), (s.get("test") or {}).get("n"))


def datasets_section(runs: list[Run]) -> str:
    """A dataset card for every distinct test split the runs used, each saying which runs used it
    when there is more than one."""
    groups: dict[tuple[Any, ...], list[Run]] = {}
    for r in runs:
        groups.setdefault(_test_split(r), []).append(r)
    if len(groups) == 1:
        return dataset_section(runs[0])
    labels, _ = series_styles(runs)
    note = (f"<p class='bad'>These runs were tested on {len(groups)} different test splits: scores from different "
            "splits are not comparable, and no verdict is drawn between them.</p>")
    return note + "".join(dataset_section(g[0], used_by=[labels[r.id] for r in g]) for g in groups.values())


def dataset_section(run: Run, used_by: Sequence[str] = ()) -> str:
    s = run.summary()
    ds = s.get("dataset") or {}
    sizes = ds.get("sizes") or {}
    preds = run.predictions()
    balance = preds["label"].astype(str).value_counts().to_dict()
    warnings = ds.get("warnings") or []
    warn = ("<ul>" + "".join(f"<li>{_e(w)}</li>" for w in warnings) + "</ul>") if warnings else "<p>None.</p>"
    return ("<section><h2>Dataset card</h2><div class='card'>"
            f"<p><b>{_e(ds.get('name'))}</b> · source <code>{_e(public_name(ds.get('source')))}</code> · "
            f"task {_e(s.get('task'))} · split seed {_e((run.config().get('data') or {}).get('split_seed', '–'))}</p>"
            + (f"<p class='muted'>Test split of: {_e(', '.join(used_by))}</p>" if used_by else "")
            + "<table><tr><th>split</th><th>examples</th></tr>"
            + "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in sizes.items()) + "</table>"
            "<p>Class balance in the test split:</p>" + share_bars(balance)
            + "<p><b>Warnings found when loading:</b></p>" + warn + "</div></section>")


def model_card(exp: compare.Experiment, by_id: dict[str, Run]) -> str:
    """One card per experiment: what its runs share, with every seed (and its run) listed."""
    runs = [by_id[i] for i in exp.seeds]
    run = runs[0]
    s, c = run.summary(), run.config()
    train = c.get("train") or {}
    labels = [str(x) for x in s.get("labels") or []]
    keys = ["epochs", "batch_size", "lr", "weight_decay", "warmup_ratio"]
    method = METHODS.get(str(s.get("method")))
    keys += list(method.card_params) if method else []
    hyper = {k: train.get(k) for k in keys if train.get(k) is not None}
    hyper["learning rate used"] = s.get("lr")

    def mean(key: str, sub: str | None = None) -> Any:
        vals = [((r.summary().get(sub) or {}) if sub else r.summary()).get(key) for r in runs]
        vals = [float(v) for v in vals if v is not None]
        return sum(vals) / len(vals) if vals else None

    seeds = ", ".join(f"seed {r.summary().get('seed')} ({r.id})" for r in runs)
    test_n = _test_size(exp, by_id)
    per = " (mean over seeds)" if len(runs) > 1 else ""
    return (
        f"<div class='card'><h3>{_e(exp.label)}</h3><table>"
        f"<tr><th>seeds</th><td>{_e(seeds)}" + (f"; {_e(exp.note)}" if exp.note else "") + "</td></tr>"
        f"<tr><th>base model</th><td>{_e(public_name(s.get('model')))} — "
        f"{_e(public_name(s.get('model_source')))}; licence {_e(s.get('model_licence'))}</td></tr>"
        f"<tr><th>fine-tuning method</th><td>{_e(method.title if method else s.get('method'))}</td></tr>"
        f"<tr><th>trainable parameters</th><td>{_count(s.get('trainable_params'))} of "
        f"{_count(s.get('total_params'))}</td></tr>"
        f"<tr><th>hyper-parameters</th><td>{_e(', '.join(f'{k} {v}' for k, v in hyper.items()))}</td></tr>"
        f"<tr><th>hardware and time{per}</th><td>{_e(s.get('device'))} ({_e(s.get('precision'))}), "
        f"{_num(mean('train_seconds'), 1)} s, {_num(mean('train_samples_per_second'), 1)} samples/s, "
        f"peak memory {_num(mean('peak_memory_mb'), 0)} MB</td></tr>"
        f"<tr><th>test results{per}</th><td>accuracy {_num(mean('accuracy', 'test'))}, macro-F1 "
        f"{_num(mean('macro_f1', 'test'))}, ECE {_num(mean('ece', 'test'))} on {_e(test_n)} examples</td></tr>"
        f"<tr><th>intended use</th><td>Sorting {'texts' if s.get('task') == 'text' else 'images'} like those in "
        f"{_e((s.get('dataset') or {}).get('name'))} into: {_e(', '.join(labels))}.</td></tr>"
        "<tr><th>limitations</th><td>Only tested on examples drawn like the test split; expect lower accuracy "
        "on other sources, styles or languages. It always answers with one of the classes above, even for "
        "inputs that fit none. Check its confidence against the calibration chart before trusting it.</td></tr>"
        "</table></div>")


def model_cards_section(runs: list[Run]) -> str:
    _, exps = _table(runs)
    by_id = {r.id: r for r in runs}
    return ("<section><h2>Model cards</h2><p class='muted'>One card per experiment (runs that share every setting "
            "but the seed), with its seeds listed.</p>" + "".join(model_card(e, by_id) for e in exps) + "</section>")


def metrics_section(runs: list[Run]) -> str:
    table, exps = _table(runs)
    by_id = {r.id: r for r in runs}
    by_key = {e.key: e for e in exps}
    rows = "".join(
        f"<tr><td>{_e(r['experiment'])}</td><td>{r['seeds']}</td><td>{_e(_test_size(by_key[r['key']], by_id))}</td>"
        f"<td>{_e(r['accuracy'])}</td><td>{_e(r['macro_f1'])}</td><td>{_e(r['ece'])}</td>"
        f"<td>{_params(r['trainable_params'])}</td><td>{_seconds(r['train_seconds'])}</td>"
        f"<td>{_memory(r['peak_memory_mb'])}</td><td>{_e(r['note'])}</td></tr>"
        for r in (table.set_index("key").loc[_ranked(table)].reset_index().to_dict("records")))
    return ("<section><h2>Metrics</h2><table class='metrics'><tr>"
            "<th>experiment</th><th>seeds</th><th>test examples</th><th>accuracy</th><th>macro-F1</th><th>ECE</th>"
            "<th>trainable parameters</th><th>train time</th><th>peak memory</th><th>note</th></tr>"
            f"{rows}</table><p class='muted'>One row per experiment (runs that share every setting but the seed), "
            "best mean macro-F1 first. Scores: mean ± half-width of the 95 % t-interval over seeds (one seed: no "
            "interval; a seed that ran more than once counts once). Cost: mean over seeds; – where not recorded."
            "</p></section>")


def significance(runs: list[Run]) -> list[dict[str, Any]]:
    """Verdicts of the experiment with the best mean macro-F1 over its seeds (always A) against each
    other experiment (B, up to three), on macro-F1 and accuracy. Seeds of one experiment are never
    pitted against each other: their spread is the noise, not a finding."""
    table, exps = _table(runs)
    if len(exps) < 2:
        return []
    by_id = {r.id: r for r in runs}
    by_key = {e.key: e for e in exps}
    ranked = [by_key[k] for k in _ranked(table)]
    lead = ranked[0]
    a = [by_id[i] for i in lead.runs]
    out = []
    for other in ranked[1:4]:
        b = [by_id[i] for i in other.runs]
        names = (lead.label, other.label)
        reason = compare.not_comparable(a, b)
        if reason:
            out.append({"verdict": reason.replace("A and B", f"{lead.label} and {other.label}"), "tests": [],
                        "names": names})
            continue
        for metric in ("macro_f1", "accuracy"):
            try:
                v = compare.verdict(a, b, metric, name_a=names[0], name_b=names[1])
            except RunError as exc:
                out.append({"verdict": str(exc), "tests": [], "names": names})
                break
            out.append({"verdict": v.text, "tests": list(v.tests), "p_value": v.p_value,
                        "significant": v.significant, "names": names, "metric": metric})
    return out


def verdicts_section(results: list[dict[str, Any]]) -> str:
    if not results:
        return ("<section><h2>Verdicts</h2><p>One experiment only: nothing to test it against. Train another method "
                "to compare; its seeds' spread is in the metrics table.</p></section>")
    lead = results[0]["names"][0]
    return (f"<section><h2>Verdicts</h2><p class='muted'>Every difference is stated as A − B with A = {_e(lead)} "
            "(the best mean macro-F1) and B the experiment it is tested against; positive favours A.</p>"
            + "".join(f"<p>{_e(r['verdict'])}</p>" for r in results) + "</section>")


def significance_section(results: list[dict[str, Any]]) -> str:
    """The paired tests behind the verdicts and how verdicts are decided (appendix)."""
    body = ""
    # Every verdict between the same two runs carries the same pair of paired tests: list them once.
    seen: set[tuple[str, str]] = set()
    for r in results:
        if not r.get("tests") or tuple(r["names"]) in seen:
            continue
        seen.add(tuple(r["names"]))
        body += (f"<p>A = {_e(r['names'][0])}, B = {_e(r['names'][1])}</p>"
                 "<table><tr><th>test</th><th>metric</th><th>A − B</th><th>p-value</th><th>detail</th></tr>"
                 + "".join(
                     f"<tr><td>{_e(t['test'])}</td><td>{_e(t.get('metric'))}</td><td>{float(t['diff']):+.3f}</td>"
                     f"<td>{_e(compare.fmt_p(t['p_value']))}</td><td>"
                     + (_e(f"A right only {t['only_a_right']}, B right only {t['only_b_right']}, odds ratio "
                           f"{t['odds_ratio']:.2f}") if t["test"] == "exact McNemar" else
                        _e(f"95 % interval {t['low']:+.3f} to {t['high']:+.3f}, {t['resamples']} resamples"))
                     + "</td></tr>" for t in r["tests"]) + "</table>")
    return (f"<section><h2>Significance tests</h2>{body}"
            f"<p class='muted'>{_e(compare.STATISTICS_NOTE)}</p></section>")


def short_names(exps: Sequence[compare.Experiment]) -> dict[str, str]:
    """Experiment key → the part of its label that tells it apart ('head', 'full', 'lr 0.001'): the
    same short labels the Compare page shows."""
    short = experiment_short_labels([e.label for e in exps])
    return {e.key: short[e.label] for e in exps}


def series_styles(runs: list[Run]) -> tuple[dict[str, str], dict[str, tuple[str, str]]]:
    """Run id → short label ('head · s1'), and label → (colour, dash): one colour per experiment,
    one dash pattern per seed within it."""
    _, exps = _table(runs)
    names = short_names(exps)
    by_id = {r.id: r for r in runs}
    labels: dict[str, str] = {}
    styles: dict[str, tuple[str, str]] = {}
    for i, exp in enumerate(exps):
        for j, run_id in enumerate(exp.runs):
            label = f"{names[exp.key]} · s{by_id[run_id].summary().get('seed')}"
            if label in styles:  # a seed that ran twice
                label = f"{label} ({j + 1})"
            labels[run_id] = label
            styles[label] = (COLOURS[i % len(COLOURS)], DASHES[j % len(DASHES)])
    return labels, styles


def curves_section(runs: list[Run]) -> str:
    labels, styles = series_styles(runs)
    loss, f1 = {}, {}
    for r in runs:
        rows = r.metrics()[0]
        steps = [x for x in rows if x.get("type") == "step"]
        epochs = [x for x in rows if x.get("type") == "epoch"]
        loss[labels[r.id]] = ([x["step"] for x in steps], [x.get("loss") for x in steps])
        f1[labels[r.id]] = ([x["epoch"] for x in epochs], [x.get("val_macro_f1") for x in epochs])
    return ("<section><h2>Training curves</h2><p class='muted'>One colour per experiment, one line style per seed "
            "(s1 = seed 1).</p>" + line_chart(loss, "Training loss", "step", "loss", styles=styles)
            + line_chart(f1, "Validation macro-F1", "epoch", "macro-F1", y_range=(0, 1), styles=styles)
            + "</section>")


def confusion_section(runs: list[Run]) -> str:
    """One matrix per experiment: the counts of its seeds added up (each seed counted once)."""
    import numpy as np

    _, exps = _table(runs)
    names = short_names(exps)
    by_id = {r.id: r for r in runs}
    parts = []
    for exp in exps:
        cms = [(by_id[i].summary().get("test") or {}).get("confusion_matrix") for i in exp.seeds]
        cms = [np.asarray(c) for c in cms if c]
        if not cms or len({c.shape for c in cms}) != 1:
            continue
        labels = [str(x) for x in by_id[exp.seeds[0]].summary().get("labels") or []]
        pooled = f" — {len(cms)} seeds added up" if len(cms) > 1 else ""
        parts.append(f"<div class='card'><h3>{_e(names[exp.key])}</h3><p class='muted'>{_e(exp.label)}{pooled}</p>"
                     f"{confusion_table(sum(cms).tolist(), labels)}</div>")
    return "<section><h2>Confusion matrices</h2><p class='muted'>Rows: the true class; columns: the prediction." \
           "</p>" + "".join(parts) + "</section>"


def calibration_section(runs: list[Run]) -> str:
    labels, styles = series_styles(runs)
    series = {}
    notes = []
    for r in runs:
        cal = analysis.calibration(r.predictions())
        used = [b for b in cal["bins"] if b["count"]]
        series[labels[r.id]] = ([b["confidence"] for b in used], [b["accuracy"] for b in used])
        notes.append(f"<li>{_e(labels[r.id])}: ECE {cal['ece']:.3f}; mean confidence {cal['mean_confidence']:.1%} vs "
                     f"accuracy {cal['accuracy']:.1%}</li>")
    chart = line_chart(series, "Reliability: accuracy at each confidence level", "confidence", "accuracy",
                       y_range=(0, 1), x_range=(0, 1), diagonal=True, styles=styles)
    return ("<section><h2>Calibration</h2><p class='muted'>On the grey diagonal, a model that says 80 % is right "
            f"80 % of the time. Below it: over-confident.</p>{chart}<ul>{''.join(notes)}</ul></section>")


def explanations_section(runs: list[Run], compute: bool = False,
                         chosen: Sequence[tuple[str, str]] = ()) -> str:
    """Exactly the explanations the author chose ((run id, cache key) pairs, e.g. a report draft),
    each with its faithfulness and sanity check; with `compute`, also two fresh ones per run (the
    most confident right and the most confident wrong test example). Nothing is picked by itself."""
    from core.explain.render import record_html, sanity_word

    by_id = {r.id: r for r in runs}
    parts, missing, elsewhere = [], 0, 0
    picked: list[tuple[Any, dict[str, Any] | None]] = []
    for run_id, key in dict.fromkeys((str(a), str(b)) for a, b in chosen):
        run = by_id.get(run_id)
        if run is None:
            elsewhere += 1
            continue
        found = chosen_explanation(run, key)
        if found is None:
            missing += 1
        else:
            picked.append(found)
    if compute:
        for r in runs[:3]:
            picked += computed_explanations(r)
    for rec, sanity in picked:
        parts.append(record_html(rec.to_dict()))
        if sanity:
            word = sanity_word(sanity["passed"])
            css = {"passed": "ok", "failed": "bad"}.get(word, "muted")
            parts.append(f"<p class='{css}'>Sanity check {word}: {_e(sanity['summary'])}</p>")
        else:
            parts.append("<p class='muted'>Sanity check: not run for this explanation.</p>")
    notes = []
    if missing:
        notes.append(f"{missing} chosen explanation{'s are' if missing > 1 else ' is'} no longer stored with "
                     "its run and could not be shown.")
    if elsewhere:
        many = elsewhere > 1
        notes.append(f"{elsewhere} chosen explanation{'s belong' if many else ' belongs'} to runs not in this report "
                     f"and {'were' if many else 'was'} left out.")
    if not picked:
        parts.append("<p>No explanations were chosen for this report.</p>")
    parts += [f"<p class='muted'>{_e(n)}</p>" for n in notes]
    return ("<section><h2>Why the models decide: explanations</h2><p class='muted'>Chosen by the author. Each comes "
            "with its faithfulness (does removing what it highlights change the prediction more than removing "
            "random parts?) and the model-randomisation sanity check.</p>" + "".join(parts) + "</section>")


def default_title(runs: Sequence[Run]) -> str:
    """'<dataset>: <methods compared>' (the models too when they differ), never a list of run ids."""
    def uniq(xs: Sequence[Any]) -> list[str]:
        return list(dict.fromkeys(str(x) for x in xs if x))

    summaries = [r.summary() for r in runs]
    datasets = uniq([(s.get("dataset") or {}).get("name") for s in summaries])
    models = uniq([public_name(s.get("model")) for s in summaries])

    def method(s: dict[str, Any]) -> str:
        m = METHODS.get(str(s.get("method")))
        return m.title if m else str(s.get("method") or "?")

    if len(models) > 1:
        compared = uniq([f"{public_name(s.get('model'))} · {method(s)}" for s in summaries])
    else:
        compared = uniq([method(s) for s in summaries])
    return f"{' and '.join(datasets) or 'Dataset'}: {' vs '.join(compared)}"


def _header(title: str, subtitle: str | None, author: str | None, n_runs: int) -> str:
    date = time.strftime("%d %B %Y").lstrip("0")
    byline = f"Prepared by {_e(author)} · {date}" if author else f"{date}"
    return (f"<header><h1>{_e(title)}</h1>" + (f"<p class='subtitle'>{_e(subtitle)}</p>" if subtitle else "")
            + f"<p class='byline'>{byline} · made with tunescope from {n_runs} finished run"
            f"{'s' if n_runs != 1 else ''}. This file is self-contained: it needs no network and runs no code.</p>"
            "</header>")


def build_report(runs: Sequence[str | Path | Run], runs_dir: Path | None = None, title: str | None = None,
                 compute_explanations: bool = False, *, subtitle: str | None = None,
                 author: str | None = None, explanations: Sequence[tuple[str, str]] = ()) -> str:
    """The whole report as one HTML string. `title` defaults to `default_title`; `subtitle` and
    `author` are printed under it when given; `explanations` are the (run id, cache key) pairs the
    author chose (see core.report_drafts), embedded in that order."""
    rs = _runs(runs, runs_dir)
    sig = significance(rs)
    title = (title or "").strip() or default_title(rs)
    subtitle, author = (subtitle or "").strip() or None, (author or "").strip() or None
    datasets = datasets_section(rs)
    first_page = ("<div class='first-page'>" + _header(title, subtitle, author, len(rs)) + summary_section(rs, sig)
                  + metrics_section(rs) + verdicts_section(sig) + "</div>")
    body = [first_page, datasets, curves_section(rs), confusion_section(rs), calibration_section(rs),
            explanations_section(rs, compute_explanations, explanations),
            "<div class='appendix'><h2 class='part'>Appendix</h2>", model_cards_section(rs),
            significance_section(sig) if sig else "", "</div>"]
    return ("<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{_e(title)}</title><style>{CSS}</style></head><body>"
            + "".join(body) + "</body></html>")


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


def html_to_pdf(html_text: str, out: Path, timeout: float = 180) -> Path:
    """Print the HTML with headless Chromium (the same engine that shows it in a browser)."""
    chromium = find_chromium()
    if chromium is None:
        raise ConfigError("Making a PDF needs Chromium (e.g. `apt install chromium`); the HTML report was still "
                          "written and prints to PDF from any browser.")
    out = Path(out).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        src, printed = Path(tmp) / "report.html", Path(tmp) / "report.pdf"
        src.write_text(html_text, encoding="utf-8")
        cmd = [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               f"--user-data-dir={tmp}/profile", "--no-pdf-header-footer", f"--print-to-pdf={printed}", src.as_uri()]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        if proc.returncode != 0 or not printed.is_file() or printed.stat().st_size == 0:
            last = (proc.stderr or "").strip().splitlines()[-1:] or [""]
            raise ConfigError(f"Chromium could not print the report to PDF (exit {proc.returncode}): {last[0][:200]}")
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(printed), out)  # only a finished PDF replaces an older one
    return out


def pdf_bytes(html_text: str, timeout: float = 180) -> bytes:
    """The report printed to PDF, as bytes (a download button's payload)."""
    with tempfile.TemporaryDirectory() as tmp:
        return html_to_pdf(html_text, Path(tmp) / "report.pdf", timeout=timeout).read_bytes()


def write_report(runs: Sequence[str | Path | Run], out: Path, runs_dir: Path | None = None, pdf: bool = False,
                 compute_explanations: bool = False, *, title: str | None = None, subtitle: str | None = None,
                 author: str | None = None, explanations: Sequence[tuple[str, str]] = ()) -> list[Path]:
    text = build_report(runs, runs_dir, title, compute_explanations, subtitle=subtitle, author=author,
                        explanations=explanations)
    out = Path(out)
    if out.suffix.lower() == ".pdf":  # `--out report.pdf --pdf`: the HTML goes beside it, not under it
        out = out.with_suffix(".html")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    written = [out]
    if pdf:
        written.append(html_to_pdf(text, out.with_suffix(".pdf")))
    return written
