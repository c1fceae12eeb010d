"""Explain: why a run predicts what it predicts, and how far to trust each picture.

Pick a run and an input (typed, uploaded, from Predict, or a test example), pick methods, and see
highlighted words or an image overlay with a faithfulness badge, a one-click sanity check, method
agreement, attention maps, a comparison with another run, and a dataset-wide view (a background job).
Torch is imported only when the user asks for a computation.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import streamlit as st

from core.data import decode_upload as read_image
from core.explain import catalog, render
from core.explain.dataset_view import DEFAULT_N, latest_result
from core.explain.jobs import (
    compare_config,
    dataset_config,
    explain_config,
    needs_job,
    sanity_config,
    sanity_needs_job,
    stage_image,
)
from core.explain.timing import estimate_methods, first_load
from core.markup import escape_markdown as md
from dashboard import explain_charts as charts
from dashboard.ui import PAGES, actor, find_run, guard, owner, pick_finished_run, session_id

_RESULTS = "_ex_results"
_SANITY = "_ex_sanity"
_JOB = "_ex_job"
TEST_SET = "From the test set"


def _core() -> Any:
    from core.explain import explainer  # imports torch: only once the user asks for a computation

    return explainer


def _badge(f: dict[str, Any] | None) -> str:
    if not f:
        return "faithfulness: not computed"
    colour = {"better than random": "green", "barely better than random": "orange"}.get(f["badge"], "red")
    return f":{colour}[faithfulness: {f['badge']} ({f['score']:+.2f})]"


def _staged(data: bytes, name: str) -> tuple[str, str]:
    """An uploaded image as a file private to this session, so the same value works inline and in
    a background job (and the explanation cache knows it again): (path, fingerprint)."""
    digest = hashlib.sha256(data).hexdigest()
    held = st.session_state.setdefault("_ex_staged", {})  # once per image, not on every rerun
    if digest not in held or not Path(held[digest]).is_file():
        held[digest] = str(stage_image(session_id(), data, name))
    return held[digest], digest


def _seconds(s: float) -> str:
    return f"{s * 1000:.0f} ms" if s < 1 else f"{s:.2f} s"


def _pick_input(run_id: str, task: str, run_path: Path) -> tuple[Any, str, str]:
    """(value, fingerprint, description) of the input to explain; value None when not chosen yet."""
    request = st.session_state.get("explain_request") or {}
    sources = ["Type text" if task == "text" else "Upload an image", TEST_SET]
    key = f"ex_source_{run_id}"
    arrived = False
    if request.get("run_id") == run_id and request.get("kind") == task:
        sources.insert(0, "From Predict")
        fresh = (run_id, request.get("input"))
        if st.session_state.get("_ex_request_seen") != fresh:  # just arrived from Predict: show that input
            st.session_state["_ex_request_seen"] = fresh
            st.session_state[key] = "From Predict"
            arrived = True
    wrong, example = st.query_params.get("wrong") == "1", st.query_params.get("example")
    link = (run_id, wrong, example)
    # A link from an example list or a confusion-matrix cell (example=, wrong=1) opens the test set,
    # once per link: afterwards the user's own choice of input stands, although the URL still says it.
    if not arrived and (wrong or example) and st.session_state.get("_ex_link_seen") != link:
        st.session_state["_ex_link_seen"] = link
        st.session_state[key] = TEST_SET
        st.session_state["ex_wrong"] = wrong
    source = st.radio("Input", sources, horizontal=True, key=key)
    if source == "From Predict":
        if task == "text":
            text = request["input"]
            st.caption(f"Text from Predict: {md(text[:200])}")
            return text, hashlib.sha256(text.encode()).hexdigest(), "the Predict input"
        name, data = request["image"]
        img = read_image(data, name)
        st.image(img, caption=md(name), width=200)
        path, digest = _staged(data, name)
        return path, digest, name
    if source.startswith("Type"):
        text = st.text_area("Text to explain", key="ex_text", height=100,
                            placeholder="Type or paste a sentence, e.g. a movie review")
        return (text if text.strip() else None), hashlib.sha256(text.encode()).hexdigest(), "typed text"
    if source.startswith("Upload"):
        up = st.file_uploader("Image to explain", type=["png", "jpg", "jpeg", "webp", "bmp"], key="ex_image")
        if up is None:
            return None, "", ""
        data = up.getvalue()
        img = read_image(data, up.name)
        st.image(img, caption=md(up.name), width=200)
        path, digest = _staged(data, up.name)
        return path, digest, up.name
    import pandas as pd

    p = run_path / "predictions.parquet"
    if not p.is_file():
        st.info("This run has no stored test predictions.")
        return None, "", ""
    preds = pd.read_parquet(p)
    wrong_only = st.toggle("Only misclassified examples", key="ex_wrong")
    if wrong_only:
        preds = preds[~preds["correct"].astype(bool)].sort_values("confidence", ascending=False)
    if preds.empty:
        st.info("No misclassified test examples: the run got every one right.")
        return None, "", ""
    rows = preds.index.tolist()
    wanted = st.query_params.get("example")
    start = rows.index(int(wanted)) if wanted and wanted.isdigit() and int(wanted) in rows else 0

    def label(i: int) -> str:
        r = preds.loc[i]
        shown = str(r["input"])[:80] if task == "text" else Path(str(r["input"])).name
        return f"#{i} · true {r['label']} · predicted {r['pred']} ({r['confidence']:.0%}) · {shown}"

    i = st.selectbox("Test example", rows, index=start, format_func=label, key=f"ex_example_{run_id}_{wrong_only}")
    value = str(preds.loc[i, "input"])
    if task == "image":
        from core.data import open_image

        st.image(open_image(value), caption=md(Path(value).name), width=200)
    return value, hashlib.sha256(value.encode()).hexdigest(), f"test example #{i}"


def _missing_input(task: str, source: str, value: Any, methods: list[str]) -> str | None:
    """What the user still has to provide before Explain can run, in the words of the chosen input
    mode; None when nothing is missing."""
    if value is None:
        if source == TEST_SET:
            return "Choose a test example above to enable Explain."
        if source == "From Predict":
            return "The input from Predict is gone; make a prediction again, or choose another input."
        return ("Type or paste some text above to enable Explain." if task == "text" else
                "Upload an image above to enable Explain.")
    if not methods:
        return "Pick at least one method to enable Explain."
    return None


def _params_form(task: str, methods: list[str], labels: list[str]) -> tuple[dict[str, Any], Any, int]:
    with st.expander("Settings: target class, baseline, steps, SmoothGrad"):
        a, b, c = st.columns(3)
        target = a.selectbox("Explain class", ["(predicted class)", *labels], key="ex_target")
        baselines = catalog.TEXT_BASELINES if task == "text" else catalog.IMAGE_BASELINES
        baseline = b.selectbox("Baseline", baselines, key="ex_baseline",
                               help="The 'neutral' input that IG, DeepLift, GradientShap, occlusion and "
                                    "KernelShap compare against.")
        steps = c.number_input("IG steps", 4, 300, 50, step=2, key="ex_steps")
        d, e, f = st.columns(3)
        samples = d.number_input("KernelShap samples", 10, 2000, 200, step=10, key="ex_samples")
        smooth = e.toggle("SmoothGrad (noise tunnel) around gradient methods", key="ex_smooth")
        max_tokens = int(f.number_input("Max tokens", 8, 512, 128, step=8, key="ex_max_tokens")) \
            if task == "text" else 128
    params = {"baseline": baseline, "steps": int(steps), "samples": int(samples), "noise_tunnel": smooth}
    return params, (None if target.startswith("(") else target), max_tokens


SIGNED_TITLE = "Attribution (green: for, red: against)"
UNSIGNED_TITLE = "Attribution (orange: how much each part mattered, not which way)"


def _show_record(rec: Any, key: str, run_id: str, value: Any, target: Any, max_tokens: int,
                 results_key: Any = None) -> None:
    info = catalog.get_method(rec.method)
    with st.container(border=True):
        st.subheader(info.label)
        st.markdown(f"Predicted **{md(rec.predicted_label)}** ({max(rec.probabilities):.1%}) · explaining class "
                    f"**{md(rec.target_label)}** · {_seconds(rec.seconds)} on {rec.device}"
                    + (" (cached)" if rec.cached else "")
                    + (f" · scores add up to the score change within {rec.delta:.1e}" if rec.delta is not None
                       else "")
                    + f"  \n{_badge(rec.faithfulness)}",
                    help=render.COMPLETENESS_HELP if rec.delta is not None else None)
        if rec.task == "text":
            st.html(render.legend_html() + render.highlighted_text(rec.text, rec.word_spans or [],
                                                                   rec.word_scores, rec.words))
            if rec.truncated:
                st.caption(f"Only the first {len(rec.tokens)} of {rec.n_tokens} tokens were explained "
                           f"(limit {max_tokens}); raise 'Max tokens' in the settings to see more.")
            st.plotly_chart(charts.word_bars(rec.words or [], rec.word_scores, "Word scores"), width="stretch",
                            key=f"{key}_bars")
        else:
            signed = catalog.get_method(rec.method).signed
            st.plotly_chart(charts.image_overlay(rec.image, rec.heatmap, SIGNED_TITLE if signed else
                                                 UNSIGNED_TITLE, signed=signed,
                                                 class_name=rec.target_label),
                            width="stretch", key=f"{key}_overlay")
        f = rec.faithfulness or {}
        if f:
            with st.expander("Faithfulness details"):
                st.markdown(md(f.get("summary", "")))
                if rec.task == "image":
                    st.plotly_chart(charts.deletion_insertion(f), width="stretch", key=f"{key}_curves")
        sanity_key = f"{results_key!r}|{rec.method}|{key}"
        done = st.session_state.setdefault(_SANITY, {}).get(sanity_key)
        auto = st.session_state.get("_ex_sanity_auto") == sanity_key  # its background job just finished
        if done is None and (auto or st.button("Run the sanity check", key=f"{key}_sanity",
                                               help="Randomise the model layer by layer and see whether the "
                                                    "explanation changes (it should).")):
            st.session_state.pop("_ex_sanity_auto", None)
            if not auto and sanity_needs_job(rec.seconds, value):
                _submit(sanity_config(find_run(run_id).path, value, rec.method, target, rec.params, max_tokens))
                st.session_state["_ex_sanity_pending"] = sanity_key
                st.rerun()
            bar = st.progress(0.0, text="Randomising the model from the top down...")
            from core.explain.sanity import sanity_check

            done = sanity_check(find_run(run_id).path, value, rec.method, target, params=rec.params,
                                max_tokens=max_tokens,
                                progress=lambda i, n, name: bar.progress(min(1.0, i / max(n, 1)), text=f"{name}"))
            bar.empty()
            st.session_state[_SANITY][sanity_key] = done
        if done:
            word = render.sanity_word(done["passed"])
            show = {"passed": st.success, "failed": st.error}.get(word, st.warning)
            show(f"Sanity check {word}. {md(done['summary'])}")
            st.plotly_chart(charts.sanity_curve(done), width="stretch", key=f"{key}_sanity_chart")
        with st.expander(f"About {info.label}"):
            st.write(info.summary)
            st.caption(f"Caveat: {info.caveat}")
        _report_choice(rec, key, run_id, info.label)


def _report_choice(rec: Any, key: str, run_id: str, label: str) -> None:
    """'Add to report' / 'Remove from report': this session's report draft names the explanation."""
    from core import report_drafts
    from core.errors import ConfigError

    cache_key = (rec.extra or {}).get("cache_key")
    if not cache_key:
        return
    me = owner()
    try:
        if report_drafts.is_chosen(me, run_id, cache_key):
            left, right = st.columns([1, 3])
            if left.button("Remove from report", key=f"{key}_unreport"):
                report_drafts.remove(me, run_id, cache_key)
                st.rerun()
            right.caption("In your report draft: the report you download on Compare or Runs shows it, with its "
                          "sanity check when you ran one.")
        elif st.button("Add to report", key=f"{key}_report",
                       help="Put this explanation (and its sanity check, if run) in the stakeholder report you "
                            "download on the Compare or Runs page. Only what you add is shown there."):
            shown = (rec.text or "")[:60] if rec.task == "text" else "image"
            report_drafts.add(me, run_id, cache_key, f"{label} · {run_id} · {shown}")
            st.rerun()
    except ConfigError as exc:
        st.error(str(exc))


def _job_status(job_id: str) -> None:
    from core import jobs

    @st.fragment(run_every=2.0)
    def poll() -> None:
        job = jobs.get(job_id)
        p = job.progress or {}
        done, total = p.get("phase_done"), p.get("phase_total")
        st.caption(f"Background job {job.id}: {job.state}" + (f" · {p.get('phase', '')} {done}/{total}"
                                                                   if total else f" · {p.get('phase', '')}"))
        if job.is_final:
            st.session_state.pop(_JOB, None)
            if job.state != "succeeded":
                st.session_state["_ex_job_error"] = (f"The background job ended {job.state}: "
                                                     f"{md(job.error or 'no details')}")
            elif job.config.get("op") == "explain":  # its results are cached now: show them at once
                st.session_state["_ex_autoload"] = st.session_state["_ex_job_done"] = True
            elif job.config.get("op") == "sanity":
                st.session_state["_ex_sanity_auto"] = st.session_state.pop("_ex_sanity_pending", None)
                st.session_state["_ex_autoload"] = st.session_state["_ex_job_done"] = True
            elif job.config.get("op") == "compare":  # both results are cached now: show them at once
                st.session_state["_ex_cmp_autoload"] = st.session_state["_ex_cmp_job_done"] = True
            st.rerun(scope="app")

    poll()


def _submit(config: dict[str, Any]) -> str:
    from core.workspace import submit_job

    (job_id,) = submit_job(actor(), config, kind="explain")
    st.session_state[_JOB] = job_id
    return job_id


st.title("Explain")
st.caption("Why does a model decide what it decides, and how far can you trust the picture? Every heatmap comes "
           "with a faithfulness score (does removing what it highlights change the prediction more than removing "
           "random parts?) and a one-click sanity check.")

with guard("explaining"):
    run_id, by_id = pick_finished_run("ex_run")
    ids = list(by_id)
    run = find_run(run_id)
    if run is None:
        st.error(f"Run {md(repr(run_id))} disappeared from the runs folder; reload the page.")
        st.stop()
    summary = run.summary()
    task = summary.get("task") or by_id[run_id]["task"] or "text"
    labels = [str(x) for x in summary.get("labels") or []]
    has_cnn = catalog.has_conv_layer(run.model_dir)

    job_error = st.session_state.pop("_ex_job_error", None)
    if job_error:
        st.error(job_error)
    tab_one, tab_attention, tab_compare, tab_dataset = st.tabs(
        ["Explain a prediction", "Attention", "Compare two runs", "Across the test set"])

    with tab_one:
        value, fingerprint, described = _pick_input(run_id, task, run.path)
        offered = catalog.methods_for(task, has_cnn)
        default = [catalog.suggested_method(task, has_cnn)]
        methods = st.multiselect("Methods", [m.name for m in offered], default=default, key=f"ex_methods_{task}",
                                 format_func=lambda n: catalog.METHODS[n].label,
                                 help="Pick two or more to see how far they agree.")
        params, target, max_tokens = _params_form(task, methods, labels)
        results_key = (run_id, fingerprint, tuple(methods), repr(sorted(params.items())), target, max_tokens)
        missing = _missing_input(task, st.session_state.get(f"ex_source_{run_id}", ""), value, methods)
        as_job = False
        if not missing:
            seconds, lines = estimate_methods(run.path, summary, methods, params, value, task)
            load_s, load_words = first_load(run.path, summary)
            seconds += load_s
            st.caption("Estimated cost: " + "; ".join(lines) + (f"; {_seconds(seconds)} in all, {load_words}"
                                                                if load_s else f"; {load_words}" if load_words
                                                                else ""))
            # Long work goes to the worker, for every kind of input (uploaded images are staged files).
            as_job = needs_job(seconds)
        if st.session_state.get(_JOB):
            st.button("Explain", type="primary", key="ex_go", disabled=True,
                      help="A background job of this page is running; wait for it to finish.")
            _job_status(st.session_state[_JOB])
        else:
            # Always shown, greyed out until there is something to explain, so nobody hunts for it.
            clicked = st.button("Explain", type="primary", key="ex_go", disabled=bool(missing), help=missing)
            if missing:
                st.caption(missing)
            if not missing and (clicked or st.session_state.pop("_ex_autoload", False)):
                if as_job and not st.session_state.pop("_ex_job_done", False):
                    _submit(explain_config(run.path, value, methods, target, max_tokens, params))
                    st.rerun()
                explainer = _core()
                bar = st.progress(0.0, text="Loading the model (first time only)...")
                records = []
                for i, m in enumerate(methods):
                    bar.progress(i / len(methods), text=f"{catalog.METHODS[m].label}...")
                    records.append(explainer.explain(run.path, value, m, target,
                                                     params=catalog.method_params(m, params), max_tokens=max_tokens))
                bar.empty()
                st.session_state[_RESULTS] = {"key": results_key, "records": records, "value": value}
                # Sanity results belong to the explanations they were run for, not to these new ones.
                st.session_state[_SANITY] = {k: v for k, v in st.session_state.get(_SANITY, {}).items()
                                             if k.startswith(repr(results_key))}
        saved = st.session_state.get(_RESULTS)
        if saved and saved["key"] == results_key:
            records = saved["records"]
            if len(records) > 1:
                from core.explain.agreement import agreement_matrix, agreement_notes

                agreement = agreement_matrix([(r.method, r.scores()) for r in records])
                st.plotly_chart(charts.agreement_heatmap(agreement), width="stretch", key="ex_agreement")
                st.caption("1 = the methods rank the words (or image patches) identically; 0 = unrelated. Low "
                           "agreement means at least one picture is not telling the whole story.")
                for note in agreement_notes(agreement):
                    st.warning(md(note))
            for i, rec in enumerate(records):
                _show_record(rec, f"ex_rec_{i}", run_id, saved["value"], target, max_tokens, results_key)

    with tab_attention:
        if task == "image" and has_cnn:
            st.info("This is a convolutional model: it has no attention to show. Use GradCAM in the first tab.")
        elif value is None:
            st.info("Choose an input in the first tab to see its attention maps.")
        elif st.button("Show attention", key="ex_attention_go"):
            from core.explain.attention import attention

            st.session_state["_ex_attention"] = {"key": (run_id, fingerprint, max_tokens),
                                                 "maps": attention(run.path, value, max_tokens=max_tokens)}
        att = st.session_state.get("_ex_attention")
        if att and att["key"] == (run_id, fingerprint, max_tokens) and value is not None:
            maps = att["maps"]
            if maps.truncated:
                st.caption(f"Showing the first {maps.attentions.shape[-1]} of {maps.n_tokens} tokens (limit "
                           f"{maps.max_tokens}).")
            st.caption("Attention shows where the model looks, not why it decides: it is a view of the "
                       "computation, not an explanation of the prediction (Jain & Wallace 2019).")
            if maps.task == "text":
                a, b = st.columns(2)
                layer = a.number_input("Layer", 1, maps.layers, maps.layers, key="ex_layer")
                head = b.number_input("Head", 1, maps.heads, 1, key="ex_head")
                st.plotly_chart(charts.head_view(maps.attentions[layer - 1, head - 1], maps.tokens,
                                                 f"Layer {layer}, head {head}: who attends to whom"),
                                width="stretch", key="ex_head_view")
                # The rollout row that matches how this model pools (mean over tokens, or [CLS]).
                st.plotly_chart(charts.rollout_bars(maps.tokens, maps.pooled_rollout(), row=maps.rollout_row),
                                width="stretch", key="ex_rollout")
                st.plotly_chart(charts.attention_grid(maps.attentions, maps.tokens), width="stretch",
                                key="ex_grid")
            else:
                pm = maps.cls_patch_maps()
                st.plotly_chart(charts.patch_maps(maps.image, pm, [*(f"layer {i + 1}" for i in range(len(pm) - 1)),
                                                                   "rollout"]), width="stretch", key="ex_patches")

    with tab_compare:
        others = [i for i in ids if i != run_id and by_id[i]["task"] == task]
        if not others:
            st.info("Train another run on the same kind of data to compare how two models explain the same input.")
        elif value is None:
            st.info("Choose an input in the first tab first.")
        else:
            other_id = st.selectbox("Compare with run", others, key="ex_other")
            other = find_run(other_id)
            both_cnn = has_cnn and other is not None and catalog.has_conv_layer(other.model_dir)
            method = st.selectbox("Method", [m.name for m in catalog.methods_for(task, both_cnn)], key="ex_cmp_method",
                                  format_func=lambda n: catalog.METHODS[n].label)
            cost = 0.0
            if other is not None:  # both explanations, each with its faithfulness check
                cost = sum(estimate_methods(r.path, r.summary(), [method], params, value, task)[0] +
                           first_load(r.path, r.summary())[0] for r in (run, other))
            if st.session_state.get(_JOB):
                _job_status(st.session_state[_JOB])
            elif st.button("Explain under both runs", key="ex_cmp_go") or st.session_state.pop("_ex_cmp_autoload",
                                                                                               False):
                from core.explain.agreement import explanation_diff

                if other is None:
                    st.error(f"Run {md(repr(other_id))} disappeared from the runs folder; reload the page.")
                    st.stop()
                if needs_job(cost) and not st.session_state.pop("_ex_cmp_job_done", False):
                    _submit(compare_config(run.path, other.path, value, method, target, params, max_tokens))
                    st.rerun()
                explainer = _core()
                a = explainer.explain(run.path, value, method, target, params=catalog.method_params(method, params),
                                      max_tokens=max_tokens)
                b = explainer.explain(other.path, value, method, a.target_label,
                                      params=catalog.method_params(method, params), max_tokens=max_tokens)
                st.session_state["_ex_diff"] = {"key": (run_id, other_id, fingerprint, method), "a": a, "b": b,
                                                "diff": explanation_diff(a, b)}
            cmp = st.session_state.get("_ex_diff")
            if cmp and cmp["key"] == (run_id, other_id, fingerprint, method):
                d, a, b = cmp["diff"], cmp["a"], cmp["b"]
                st.markdown(f"Rank correlation of the two explanations: **{d['spearman']:+.2f}** "
                            "(1 = same reasons, 0 = unrelated).")
                left, right = st.columns(2)
                for col, rec in ((left, a), (right, b)):
                    with col:
                        st.markdown(f"**{md(rec.run_id)}** predicts {md(rec.predicted_label)} "
                                    f"({max(rec.probabilities):.0%}); explaining class {md(rec.target_label)} · "
                                    f"{_badge(rec.faithfulness)}")
                        if task == "text":
                            st.html(render.highlighted_text(rec.text, rec.word_spans or [], rec.word_scores,
                                                            rec.words))
                        else:
                            st.plotly_chart(charts.image_overlay(
                                rec.image, rec.heatmap, rec.run_id, signed=catalog.get_method(rec.method).signed,
                                class_name=rec.target_label),
                                            width="stretch", key=f"ex_cmp_{rec.run_id}")
                if task == "text":
                    st.plotly_chart(charts.word_bars(d["words"], d["diff"], f"{b.run_id} minus {a.run_id} "
                                                     "(each scaled to its largest score)"),
                                    width="stretch", key="ex_cmp_diff")
                else:
                    st.plotly_chart(charts.image_overlay(d["image"], d["diff"], f"{b.run_id} minus {a.run_id}"),
                                    width="stretch", key="ex_cmp_diff")

    with tab_dataset:
        st.write("For a sample of test examples: the words (or image regions) most associated with each "
                 "predicted class, and the examples the model got wrong with the most confidence.")
        n = int(st.number_input("Examples", 10, 2000, DEFAULT_N, step=10, key="ex_dataset_n"))
        if st.session_state.get(_JOB):
            _job_status(st.session_state[_JOB])
        elif st.button("Start (background job)", key="ex_dataset_go"):
            _submit(dataset_config(run.path, n))
            st.rerun()
        result = latest_result(run.path)
        if result:
            st.caption(f"{result['method']} over {result['n']} test examples · {result['seconds']:.0f} s of "
                       "compute")
            if result["task"] == "text":
                cols = st.columns(min(4, len(result["classes"])) or 1)
                for i, c in enumerate(result["classes"]):
                    with cols[i % len(cols)]:
                        st.markdown(f"**{md(c['class'])}** ({c['examples']} predicted)")
                        st.dataframe([{"word": w["word"], "mean score": round(w["mean_score"], 4),
                                       "count": w["count"]} for w in c.get("top_words", [])],
                                     hide_index=True, width="stretch")
            else:
                st.plotly_chart(charts.class_maps(result["classes"]), width="stretch", key="ex_class_maps")
            if result["confidently_wrong"]:
                st.markdown("**Most confidently wrong test examples**")
                st.dataframe(result["confidently_wrong"], hide_index=True, width="stretch")
                st.page_link(PAGES["explain"], label="Explain the misclassified examples",
                             query_params={"run": run_id, "wrong": "1"})


