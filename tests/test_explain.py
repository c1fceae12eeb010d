"""Explanations: hand-checkable models first (a linear model, a model that reads one word), then the
real tiny runs: completeness, faithfulness, sanity check, attention, caching, CLI and rendering."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from core.errors import ConfigError, ModelError
from core.explain import agreement, attention, catalog, faithfulness, render
from core.explain.attributions import attribute
from core.explain.explainer import explain
from core.explain.sanity import sanity_check
from core.explain.targets import TextTarget

# ---------------------------------------------------------------------------------------------
# A linear model: Integrated Gradients must equal (x − baseline) · w exactly
# ---------------------------------------------------------------------------------------------


class LinearTarget:
    task = "text"

    def __init__(self, x: torch.Tensor, baseline: torch.Tensor) -> None:
        torch.manual_seed(0)
        self.model = nn.Linear(x.shape[-1], 3)
        self.x, self.b = x, baseline

    def inputs(self):
        return self.x

    def forward(self, x):
        return self.model(x)

    def baseline(self, kind):
        return self.b

    def n_features(self, patch=0):
        return self.x.shape[-1]

    def reduce(self, attr):
        return attr.detach()[0].numpy()


@pytest.mark.parametrize("method", ["ig", "deeplift", "gradient_shap"])
def test_linear_model_attribution_is_input_minus_baseline_times_weight(method):
    x = torch.tensor([[1.0, -2.0, 0.5, 3.0]])
    b = torch.tensor([[0.5, 0.0, -1.0, 1.0]])
    t = LinearTarget(x, b)
    params = {"samples": 200, "stdev": 0.0} if method == "gradient_shap" else {}
    raw = attribute(t, method, 2, params)
    expected = ((x - b) * t.model.weight[2]).detach()[0].numpy()
    np.testing.assert_allclose(raw.scores, expected, rtol=1e-5, atol=1e-6)
    assert raw.delta is not None and raw.delta < 1e-4


def test_input_x_gradient_on_a_linear_model_is_input_times_weight():
    x = torch.tensor([[1.0, -2.0, 0.5, 3.0]])
    t = LinearTarget(x, torch.zeros_like(x))
    raw = attribute(t, "input_x_gradient", 1)
    np.testing.assert_allclose(raw.scores, (x * t.model.weight[1]).detach()[0].numpy(), rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# A text model that reads one word only: every attribution and faithfulness must single it out
# ---------------------------------------------------------------------------------------------


class OneWordModel(nn.Module):
    """logit(positive) − logit(negative) = 6 × (number of times "great" appears)."""

    def __init__(self, vocab_size: int, word_id: int) -> None:
        super().__init__()
        torch.manual_seed(0)
        emb = nn.Embedding(vocab_size, 8)
        with torch.no_grad():
            emb.weight[:, 0] = 0.0  # only `word_id` has any weight on the one feature that counts
            emb.weight[word_id, 0] = 1.0
        self.encoder = nn.Module()
        self.encoder.emb = emb
        self.encoder.get_input_embeddings = lambda: emb

    def encode(self, inputs_embeds, attention_mask, token_type_ids=None, **_):
        return SimpleNamespace(last_hidden_state=inputs_embeds * attention_mask.unsqueeze(-1))

    def pool(self, hidden, mask):
        return hidden.sum(dim=1)

    def head_forward(self, feats):
        return torch.stack([-3 * feats[:, 0], 3 * feats[:, 0]], dim=-1)


@pytest.fixture(scope="module")
def one_word_target(tiny_bert_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_bert_dir)
    model = OneWordModel(tok.vocab_size, tok.convert_tokens_to_ids("great")).eval()
    return TextTarget.build(model, tok, "the plot was really great and the acting quite dull", 32)


@pytest.mark.parametrize("method", ["ig", "input_x_gradient", "deeplift", "occlusion", "kernel_shap"])
def test_a_model_reading_one_word_is_explained_by_that_word(one_word_target, method):
    t = one_word_target
    raw = attribute(t, method, 1, {"samples": 300} if method == "kernel_shap" else {})
    words = t.word_scores(raw.scores)
    great = t.words.index("great")
    assert int(np.argmax(words)) == great, dict(zip(t.words, words.round(4), strict=True))
    others = np.delete(words, great)
    assert np.abs(others).max() < 0.05 * words[great]


def test_faithfulness_singles_out_the_one_word_and_beats_random(one_word_target):
    t = one_word_target
    scores = np.zeros(len(t.words))
    scores[t.words.index("great")] = 1.0
    good = faithfulness.text_faithfulness(t, scores, 1)
    assert good["comprehensiveness"] > 0.45  # p(positive) falls from 0.998 to 0.5 without "great"
    assert good["sufficiency"] < 0.01  # keeping only "great" keeps the prediction
    assert good["random_comprehensiveness"] < good["comprehensiveness"]
    assert good["badge"] == "better than random"
    bad = faithfulness.text_faithfulness(t, -scores, 1)  # ranks "great" last
    assert bad["score"] < good["score"] and bad["comprehensiveness"] < 0.05


def test_removing_a_word_masks_it_from_attention(one_word_target):
    t = one_word_target
    removed = np.zeros((2, len(t.words)), dtype=bool)
    removed[1, t.words.index("great")] = True
    p = t.probabilities_without(removed)[:, 1].numpy()
    assert p[0] > 0.99 and p[1] == pytest.approx(0.5)


# ---------------------------------------------------------------------------------------------
# Real tiny runs
# ---------------------------------------------------------------------------------------------

TEXT = "the film was really great and quite lovely"


def test_ig_is_complete_on_tiny_bert_and_finds_the_sentiment_words(trained_text_run):
    rec = explain(trained_text_run, TEXT, "ig", params={"steps": 64}, use_cache=False, device="cpu")
    assert rec.predicted_label == "positive"
    assert rec.delta is not None and rec.delta < 1e-2
    assert rec.words == ["the", "film", "was", "really", "great", "and", "quite", "lovely"]
    top = {rec.words[i] for i in np.argsort(-rec.word_scores)[:2]}
    assert top & {"great", "lovely"}, dict(zip(rec.words, rec.word_scores.round(3), strict=True))
    assert rec.faithfulness["comprehensiveness"] > rec.faithfulness["random_comprehensiveness"]
    assert len(rec.token_scores) == len(rec.tokens) == 10  # [CLS] … [SEP]


def test_every_text_method_runs_with_sensible_output(trained_text_run):
    for info in catalog.methods_for("text", has_cnn=False):
        rec = explain(trained_text_run, TEXT, info.name, params={"samples": 40} if "shap" in info.name else None,
                      use_cache=False, device="cpu")
        assert rec.word_scores.shape == (8,) and np.isfinite(rec.word_scores).all(), info.name
        assert rec.seconds > 0 and rec.passes >= 1
        assert rec.faithfulness["badge"]


def test_smoothgrad_wraps_a_gradient_method(trained_text_run):
    rec = explain(trained_text_run, TEXT, "input_x_gradient", params={"noise_tunnel": True, "nt_samples": 4},
                  use_cache=False, device="cpu")
    assert rec.params["noise_tunnel"] and rec.passes == 4
    plain = explain(trained_text_run, TEXT, "input_x_gradient", use_cache=False, device="cpu")
    assert not np.allclose(rec.word_scores, plain.word_scores)


def test_target_defaults_to_the_prediction_and_can_be_chosen(trained_text_run):
    rec = explain(trained_text_run, TEXT, "saliency", use_cache=False, device="cpu")
    assert rec.target == rec.predicted
    other = explain(trained_text_run, TEXT, "input_x_gradient", target="negative", use_cache=False, device="cpu")
    assert other.target_label == "negative"
    with pytest.raises(ConfigError, match="not one of this run's classes"):
        explain(trained_text_run, TEXT, "ig", target="neutral", device="cpu")


def test_long_text_is_truncated_with_a_note(trained_text_run):
    rec = explain(trained_text_run, " ".join(["great"] * 60), "saliency", max_tokens=16, use_cache=False,
                  device="cpu")
    assert rec.truncated and rec.n_tokens == 62 and len(rec.tokens) == 16


def test_results_are_cached_per_input_method_and_parameters(trained_text_run):
    first = explain(trained_text_run, TEXT, "ig", params={"steps": 20}, device="cpu")
    again = explain(trained_text_run, TEXT, "ig", params={"steps": 20}, device="cpu")
    assert not first.cached and again.cached
    np.testing.assert_array_equal(first.word_scores, again.word_scores)
    assert again.faithfulness == first.faithfulness
    assert not explain(trained_text_run, TEXT, "ig", params={"steps": 21}, device="cpu").cached
    assert not explain(trained_text_run, TEXT + "!", "ig", params={"steps": 20}, device="cpu").cached
    timing = json.loads((trained_text_run / "explanations" / "timing.json").read_text())
    assert timing["cpu"]["per_pass"] > 0 and timing["cpu"]["units"] > 0


def test_a_damaged_cache_entry_is_recomputed(trained_text_run):
    rec = explain(trained_text_run, "dull and boring", "saliency", device="cpu")
    for p in (trained_text_run / "explanations").glob("*.npz"):
        p.write_bytes(b"not a numpy file")
    again = explain(trained_text_run, "dull and boring", "saliency", device="cpu")
    assert not again.cached and np.allclose(again.word_scores, rec.word_scores)


def test_sanity_check_shows_a_clear_drop_after_randomisation(trained_text_run):
    seen = []
    res = sanity_check(trained_text_run, TEXT, "ig", params={"steps": 20}, use_cache=False, device="cpu",
                       progress=lambda i, n, name: seen.append(name))
    stages = [s["stage"] for s in res["stages"]]
    assert stages == ["head", "block 2", "block 1", "embeddings"]
    assert res["final_spearman"] < 0.5 and res["passed"]
    assert "passes" in res["summary"] and seen[-1] == "done"
    assert sanity_check(trained_text_run, TEXT, "ig", params={"steps": 20}, device="cpu")["cached"]


def test_unknown_method_and_bad_parameters_are_refused(trained_text_run):
    with pytest.raises(ConfigError, match="Unknown explanation method"):
        explain(trained_text_run, TEXT, "magic")
    with pytest.raises(ConfigError, match="steps must be between"):
        explain(trained_text_run, TEXT, "ig", params={"steps": 1})
    with pytest.raises(ConfigError, match="baseline must be one of"):
        explain(trained_text_run, TEXT, "ig", params={"baseline": "blur"}, use_cache=False)
    with pytest.raises(ModelError, match="applies to image"):
        explain(trained_text_run, TEXT, "gradcam", use_cache=False)


def test_text_attention_shapes_rollout_and_truncation(trained_text_run):
    maps = attention.attention(trained_text_run, TEXT, device="cpu")
    assert maps.attentions.shape == (2, 2, 10, 10)
    np.testing.assert_allclose(maps.attentions.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(maps.rollout.sum(-1), 1.0, atol=1e-6)
    short = attention.attention(trained_text_run, TEXT, max_tokens=5, device="cpu")
    assert short.truncated and short.attentions.shape[-1] == 5 and short.n_tokens == 10


def test_rollout_is_read_from_the_row_the_model_pools(trained_text_run):
    maps = attention.attention(trained_text_run, TEXT, device="cpu")
    assert maps.pooling == "mean" and maps.rollout_row == "mean"  # the tiny run mean-pools
    np.testing.assert_allclose(maps.pooled_rollout(), maps.rollout.mean(axis=0), atol=1e-12)
    assert not np.allclose(maps.pooled_rollout(), maps.rollout[0])


@pytest.mark.parametrize("pooling", ["cls", "pooler"])
def test_cls_and_pooler_models_show_the_cls_rollout(tiny_bert_dir, pooling):
    from core.models import build_model

    bundle = build_model(str(tiny_bert_dir), "text", 2, pretrained=False, max_length=32, pooling=pooling,
                         attn_implementation="eager")
    target = TextTarget.build(bundle.model.eval(), bundle.preprocessor.tokenizer, TEXT, 32)
    maps = attention._text_attention(target, 32)
    assert maps.pooling == pooling and maps.rollout_row == "cls"
    np.testing.assert_allclose(maps.pooled_rollout(), maps.rollout[0])


def test_mean_pooled_rollout_averages_only_the_real_tokens():
    att = np.zeros((1, 1, 3, 3))
    att[0, 0] = [[0.5, 0.5, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]  # the third token is padding
    roll = attention.rollout(att)
    maps = attention.AttentionMaps("text", att, roll, ["[CLS]", "good", "[PAD]"], pooling="mean",
                                   real=np.array([True, True, False]))
    np.testing.assert_allclose(maps.pooled_rollout(), roll[:2].mean(axis=0))
    assert maps.pooled_rollout()[2] == 0.0
    cls = attention.AttentionMaps("text", att, roll, ["[CLS]", "good", "[PAD]"])
    assert cls.rollout_row == "cls" and np.allclose(cls.pooled_rollout(), roll[0])


def test_rollout_by_hand():
    ident = np.tile(np.eye(3), (2, 4, 1, 1))
    np.testing.assert_allclose(attention.rollout(ident), np.eye(3))
    uniform = np.full((1, 1, 2, 2), 0.5)
    np.testing.assert_allclose(attention.rollout(uniform), [[0.75, 0.25], [0.25, 0.75]])


def test_vit_attention_overlay_and_cnn_has_none(trained_image_runs, shapes_zip, tmp_path):
    import zipfile

    img = tmp_path / "square.png"
    img.write_bytes(zipfile.ZipFile(shapes_zip).read("square/0.png"))
    maps = attention.attention(trained_image_runs["vit"], str(img), device="cpu")
    assert maps.attentions.shape == (2, 2, 17, 17) and maps.grid == 4
    patch_maps = maps.cls_patch_maps()
    assert patch_maps.shape == (3, 4, 4)
    np.testing.assert_allclose(patch_maps.sum(axis=(1, 2)), 1.0, atol=1e-6)
    with pytest.raises(ModelError, match="no attention"):
        attention.attention(trained_image_runs["resnet"], str(img), device="cpu")


def test_image_methods_deeplift_on_reused_relus_and_gradcam(trained_image_runs, shapes_zip, tmp_path):
    import zipfile

    img = tmp_path / "square.png"
    img.write_bytes(zipfile.ZipFile(shapes_zip).read("square/0.png"))
    resnet = trained_image_runs["resnet"]
    for method in ("deeplift", "gradcam", "saliency", "occlusion"):
        rec = explain(resnet, str(img), method, use_cache=False, device="cpu")
        assert rec.heatmap.shape == (32, 32) and rec.image.shape == (32, 32, 3), method
        assert np.isfinite(rec.heatmap).all()
        f = rec.faithfulness
        assert len(f["deletion_curve"]) == len(f["fractions"]) == 11
    with pytest.raises(ModelError, match="GradCAM needs a convolutional layer"):
        explain(trained_image_runs["vit"], str(img), "gradcam", use_cache=False, device="cpu")


def test_text_given_to_an_image_run_is_refused(trained_image_runs):
    from core.errors import DataError

    with pytest.raises(DataError, match="image model"):
        explain(trained_image_runs["vit"], "some words", "saliency")


def test_explanation_diff_between_two_runs(trained_text_run, tmp_path):
    import shutil

    other = tmp_path / "copy"
    shutil.copytree(trained_text_run, other)
    a = explain(trained_text_run, TEXT, "input_x_gradient", device="cpu")
    b = explain(other, TEXT, "input_x_gradient", device="cpu")
    d = agreement.explanation_diff(a, b)
    assert d["words"] == a.words and d["spearman"] == pytest.approx(1.0)
    assert np.allclose(d["diff"], 0, atol=1e-6)


def test_agreement_matrix_by_hand():
    m = agreement.agreement_matrix([("a", np.array([1.0, 2, 3, 4, 5])), ("b", np.array([1.0, 2, 3, 4, 5])),
                                    ("c", np.array([5.0, 4, 3, 2, 1]))])
    assert m["spearman"][0][1] == pytest.approx(1.0) and m["spearman"][0][2] == pytest.approx(-1.0)
    assert m["k"] == 1 and m["top_k_overlap"][0][2] == 0.0
    assert agreement.rank_correlation(np.ones(4), np.arange(4)) == 0.0


# ---------------------------------------------------------------------------------------------
# Rendering, cost, jobs, CLI
# ---------------------------------------------------------------------------------------------


def test_user_markup_renders_as_text_never_as_markup():
    text = 'a <script>alert(1)</script> "b" <img src=x onerror=alert(2)>'
    from core.explain.targets import split_words

    spans = split_words(text)
    out = render.highlighted_text(text, spans, np.linspace(-1, 1, len(spans)))
    assert "<script" not in out and "<img" not in out
    assert "&lt;" in out and "alert" in out and "&quot;" in out
    page = render.page_html("<b>title</b>", [out])
    assert "<b>title</b>" not in page and "&lt;b&gt;title" in page


def test_cost_estimate_counts_passes_and_uses_measured_time(tmp_path):
    assert catalog.get_method("ig").passes({"steps": 50}, 10) == 51
    assert catalog.get_method("occlusion").passes({}, 12) == 13
    assert catalog.get_method("saliency").passes({"noise_tunnel": True, "nt_samples": 5}, 3) == 5
    from core.explain.timing import estimate, record_pass_time

    s, measured, text = estimate(tmp_path, "ig", {"steps": 50}, task="text", size=128, n_features=100,
                                 total_params=22_700_000, faithfulness=False)
    assert not measured and "rough" in text and s == pytest.approx(51 * 0.043, rel=0.01)
    short, _, _ = estimate(tmp_path, "ig", {"steps": 50}, task="text", size=16, n_features=10,
                           total_params=22_700_000, faithfulness=False)
    assert short == pytest.approx(51 * 0.043 * (0.5 + 0.5 / 8), rel=0.01)  # half the cost is fixed per pass
    record_pass_time(tmp_path, "cpu", "text", 0.02, 64)
    s, measured, text = estimate(tmp_path, "ig", {"steps": 50}, task="text", size=128, n_features=100,
                                 total_params=None, faithfulness=False)
    assert measured and s == pytest.approx(51 * 0.03) and text.startswith("Integrated Gradients, 50 steps: ~1.5 s")
    record_pass_time(tmp_path, "cpu", "text", 0.03, 128)  # agrees with the first: the average stays
    assert estimate(tmp_path, "saliency", {}, task="text", size=128, n_features=100, total_params=None,
                    faithfulness=False)[0] == pytest.approx(0.03)
    assert catalog.describe_cost("saliency", {}, 0.012, "cpu") == "Saliency (gradient): ~12 ms on CPU"


def test_cost_estimate_includes_the_faithfulness_check(tmp_path):
    # Trust fixes, item 8: the estimate that decides inline vs background left out faithfulness.
    from core.explain.timing import FORWARD_SHARE, estimate, record_pass_time

    record_pass_time(tmp_path, "cpu", "image", 0.045, 224)
    bare, _, _ = estimate(tmp_path, "gradcam", {}, task="image", size=224, n_features=196, total_params=None,
                          faithfulness=False)
    full, _, text = estimate(tmp_path, "gradcam", {}, task="image", size=224, n_features=196, total_params=None)
    assert catalog.faithfulness_forwards("image") == 89 and catalog.faithfulness_forwards("text") == 25
    assert full - bare == pytest.approx(89 * 0.045 * FORWARD_SHARE)
    assert "faithfulness check" in text


def test_dataset_view_job_writes_a_result_the_page_can_read(trained_text_run, home):
    from core.explain.dataset_view import latest_result
    from core.explain.jobs import run_explain_job

    updates = []
    ctx = SimpleNamespace(job=SimpleNamespace(config={"op": "dataset", "run": str(trained_text_run), "n": 12,
                                                      "device": "cpu"}),
                          should_stop=lambda: False, update=lambda **kw: updates.append(kw))
    out = run_explain_job(ctx)
    assert out["n"] == 12
    res = latest_result(trained_text_run)
    assert res["n"] == 12 and {c["class"] for c in res["classes"]} == {"negative", "positive"}
    positive = next(c for c in res["classes"] if c["class"] == "positive")
    assert positive["top_words"] and all(w["count"] >= 1 for w in positive["top_words"])
    assert updates[-1]["phase_done"] == updates[-1]["phase_total"] == 12


def test_cli_explain_json_and_html(trained_text_run, tmp_path, capsys):
    from core.cli import main

    assert main(["explain", "--run", str(trained_text_run), "--text", TEXT, "--method", "ig,saliency",
                 "--steps", "16", "--device", "cpu"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [e["method"] for e in out["explanations"]] == ["ig", "saliency"]
    assert out["explanations"][0]["params"]["steps"] == 16 and len(out["agreement"]["spearman"]) == 2
    html_file = tmp_path / "e.html"
    assert main(["explain", "--run", str(trained_text_run), "--text", "<script>alert(1)</script> great",
                 "--method", "saliency", "--sanity", "--compare-run", str(trained_text_run), "--format", "html",
                 "--out", str(html_file), "--device", "cpu"]) == 0
    page = html_file.read_text()
    assert "<script" not in page and "Sanity check" in page and "Compared with another run" in page
    assert main(["explain", "--run", str(trained_text_run), "--image", str(tmp_path / "none.png")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_image_dataset_view_has_a_mean_map_per_predicted_class(trained_image_runs):
    from core.explain.dataset_view import dataset_view

    res = dataset_view(trained_image_runs["resnet"], 8, device="cpu")
    assert res["method"] == "gradcam" and res["n"] == 8
    shown = [c for c in res["classes"] if c["examples"]]
    assert shown and all(np.asarray(c["mean_map"]).shape == (32, 32) for c in shown)
    assert sum(c["examples"] for c in res["classes"]) == 8


def _ctx(config, stop=False):
    return SimpleNamespace(job=SimpleNamespace(config=config), should_stop=lambda: stop,
                           update=lambda **kw: None)


def test_explain_and_sanity_jobs_fill_the_cache_and_honour_cancel(trained_text_run):
    from core.explain.jobs import run_explain_job
    from core.jobs.context import JobStopped

    cfg = {"op": "explain", "run": str(trained_text_run), "value": "a lovely film", "methods": ["saliency", "ig"],
           "params_by_method": {"ig": {"steps": 8}}, "device": "cpu"}
    assert run_explain_job(_ctx(cfg))["methods"] == ["saliency", "ig"]
    assert explain(trained_text_run, "a lovely film", "ig", params={"steps": 8}, device="cpu").cached
    sanity = {"op": "sanity", "run": str(trained_text_run), "value": "a lovely film", "method": "saliency",
              "device": "cpu"}
    with pytest.raises(JobStopped):
        run_explain_job(_ctx(sanity, stop=True))
    assert "passed" in run_explain_job(_ctx(sanity))
    with pytest.raises(ConfigError, match="op must be one of"):
        run_explain_job(_ctx({"op": "paint"}))


def test_which_saved_image_models_are_convolutional(trained_image_runs, trained_text_run):
    assert catalog.has_conv_layer(trained_image_runs["resnet"] / "model")
    assert not catalog.has_conv_layer(trained_image_runs["vit"] / "model")
    assert not catalog.has_conv_layer(trained_text_run / "model")


def test_dataset_view_ranks_words_that_carry_a_class_often_above_one_off_words(trained_text_run):
    from core.explain.dataset_view import dataset_view

    res = dataset_view(trained_text_run, 24, device="cpu")
    positive = next(c for c in res["classes"] if c["class"] == "positive")["top_words"]
    scores = [w["rank_score"] for w in positive]
    assert scores == sorted(scores, reverse=True)
    sentiment = {"good", "great", "fun", "lovely", "superb", "moving", "brilliant", "charming"}
    assert sentiment & {w["word"] for w in positive[:3]}, positive[:5]


def test_patch_maps_skip_extra_tokens_before_the_patches():
    att = np.zeros((1, 1, 6, 6))  # [CLS], [DIST], then a 2 × 2 grid of patches
    att[0, 0, 0] = [0.1, 0.5, 0.1, 0.1, 0.1, 0.1]
    att[0, 0, 1:] = np.eye(6)[1:]
    maps = attention.AttentionMaps("image", att, attention.rollout(att), ["t"] * 6, grid=2)
    np.testing.assert_allclose(maps.cls_patch_maps()[0], np.full((2, 2), 0.25))  # [DIST]'s 0.5 left out


def test_diff_without_character_offsets_lines_up_equal_words_and_refuses_others():
    from types import SimpleNamespace as R

    def rec(words, scores):
        return R(task="text", text="x", words=words, word_spans=[(-1, -1)] * len(words),
                 word_scores=np.array(scores, float), run_id="r", method="ig")

    d = agreement.explanation_diff(rec(["a", "b", "c"], [1, 2, 3]), rec(["a", "b", "c"], [3, 2, 1]))
    assert d["spearman"] == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="different words"):
        agreement.explanation_diff(rec(["a", "b"], [1, 2]), rec(["a", "bc"], [1, 2]))


def test_a_flat_explanation_makes_the_sanity_check_not_applicable(trained_text_run, monkeypatch):
    from core.explain import explainer

    real = explainer.attribute

    def flat(target, method, c, params=None):
        raw = real(target, method, c, params)
        raw.scores = np.zeros_like(raw.scores)
        return raw

    monkeypatch.setattr(explainer, "attribute", flat)
    res = sanity_check(trained_text_run, "flat scores here", "saliency", use_cache=False, device="cpu")
    assert res["passed"] is None and "does not apply" in res["summary"]


def test_attention_maps_refuse_models_they_would_misdraw(tmp_path):
    # Swin attends within windows (its layers' maps differ in shape: stacking them was a raw error),
    # and a model that pools its patches instead of reading [CLS] would be shown a [CLS] map it never uses.
    from types import SimpleNamespace

    import torch
    from test_image_pooling import write_tiny_swin

    from core.errors import ModelError
    from core.explain.attention import _image_attention
    from core.models import build_model

    bundle = build_model(str(write_tiny_swin(tmp_path / "swin")), "image", 2, pretrained=False, image_size=64)
    target = SimpleNamespace(model=bundle.model, pixels=torch.zeros(1, 3, 64, 64), image=None)
    with pytest.raises(ModelError, match="local windows"):
        _image_attention(target)
    import transformers as T
    from test_image_pooling import write_tiny_backbone

    siglip = T.SiglipVisionConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2,
                                  num_attention_heads=2, intermediate_size=64)
    bundle = build_model(str(write_tiny_backbone(tmp_path / "siglip", siglip, 32)), "image", 2)
    target = SimpleNamespace(model=bundle.model, pixels=torch.zeros(1, 3, 32, 32), image=None)
    with pytest.raises(ModelError, match="does not decide from a \\[CLS\\] token"):
        _image_attention(target)
