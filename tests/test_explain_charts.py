"""Explain-page figures from plain arrays: each builds, and shows what its title says."""

from __future__ import annotations

import numpy as np
import pytest

from dashboard import explain_charts as charts


def test_rollout_bars_leave_out_the_first_token_and_rescale():
    fig = charts.rollout_bars(["[CLS]", "good", "film"], [0.8, 0.15, 0.05])
    bar = fig.data[0]
    assert list(bar.x) == ["1:good", "2:film"]
    assert sum(bar.y) == pytest.approx(1.0) and bar.y[0] == pytest.approx(0.75)


def test_rollout_bars_say_which_row_they_show():
    cls = charts.rollout_bars(["[CLS]", "good", "film"], [0.8, 0.15, 0.05])
    assert "[CLS]" in cls.layout.title.text and "mean" not in cls.layout.title.text
    mean = charts.rollout_bars(["[CLS]", "good", "film"], [0.2, 0.5, 0.3], row="mean")
    assert "averaged over all 3 tokens" in mean.layout.title.text and "mean-pools" in mean.layout.title.text
    bar = mean.data[0]
    assert list(bar.x) == ["0:[CLS]", "1:good", "2:film"]  # mean pooling reads every token, [CLS] too
    assert list(bar.y) == pytest.approx([0.2, 0.5, 0.3])
    with pytest.raises(ValueError, match="row"):
        charts.rollout_bars(["a"], [1.0], row="last")


def test_head_view_draws_only_weights_above_the_floor():
    m = np.array([[0.9, 0.1, 0.0], [0.02, 0.98, 0.0], [0.3, 0.3, 0.4]])
    fig = charts.head_view(m, ["a", "b", "c"], "L1 H1", min_weight=0.05)
    lines = [t for t in fig.data if t.mode == "lines"]
    assert len(lines) == int((m >= 0.05).sum())
    assert any(t.text == "a → a: 0.90" for t in lines)


def test_overlay_has_image_heatmap_and_symmetric_colour_bar():
    h = np.zeros((8, 8))
    h[2, 3], h[5, 5] = 2.0, -1.0
    fig = charts.image_overlay(np.zeros((8, 8, 3), dtype=np.uint8), h, "t")
    image, heat = fig.data
    assert image.type == "image" and heat.type == "heatmap"
    assert heat.zmin == -2.0 and heat.zmax == 2.0 and np.asarray(heat.z)[2, 3] == 2.0


def test_agreement_sanity_grid_and_class_maps_build():
    ag = {"methods": ["ig", "saliency"], "spearman": [[1, 0.5], [0.5, 1]], "top_k_overlap": [[1, 0.4], [0.4, 1]]}
    assert "Method agreement" in charts.agreement_heatmap(ag).layout.title.text
    sanity = {"stages": [{"stage": "head", "spearman": 0.4}], "threshold": 0.5}
    assert list(charts.sanity_curve(sanity).data[0].y) == [1.0, 0.4]
    grid = charts.attention_grid(np.full((2, 3, 4, 4), 0.25), ["a", "b", "c", "d"])
    assert len(grid.data) == 6
    maps = charts.class_maps([{"class": "x", "examples": 2, "mean_map": [[0.1, -0.2], [0.0, 0.3]],
                               "mean_image": [[10, 20], [30, 40]]}, {"class": "y", "examples": 0}])
    assert len(maps.data) == 2
    curves = {"fractions": [0, 0.5, 1], "deletion_curve": [0.9, 0.4, 0.1], "insertion_curve": [0.2, 0.6, 0.9],
              "random_deletion_curve": [0.9, 0.7, 0.1], "random_insertion_curve": [0.2, 0.3, 0.9]}
    assert len(charts.deletion_insertion(curves).data) == 4


def test_a_signed_map_reads_supports_and_against_over_a_grey_image():
    image = np.zeros((8, 8, 3), dtype=np.uint8)
    image[..., 0] = 200  # red: must come out grey, so only the heatmap carries colour
    h = np.zeros((8, 8))
    h[2, 3], h[5, 5] = 2.0, -1.0
    grey, heat = charts.image_overlay(image, h, "t", class_name="<b>cat</b>").data
    z = np.asarray(grey.z)
    assert (z[..., 0] == z[..., 1]).all() and (z[..., 1] == z[..., 2]).all() and z[0, 0, 0] == 60
    assert heat.zmin == -2.0 and heat.zmax == 2.0
    assert list(heat.colorbar.ticktext) == ["speaks against", "0", "supports &lt;b&gt;cat&lt;/b&gt;"]
    assert list(heat.colorbar.tickvals) == [-2.0, 0.0, 2.0]


def test_an_unsigned_map_gets_one_colour_from_no_effect_to_most_important():
    h = np.zeros((8, 8))
    h[2, 3] = 3.0
    _, heat = charts.image_overlay(np.zeros((8, 8, 3), dtype=np.uint8), h, "t", signed=False).data
    assert heat.zmin == 0.0 and heat.zmax == 3.0
    assert list(heat.colorbar.ticktext) == ["no effect", "most important"]
    assert len({c for _, c in heat.colorscale}) == 2 and heat.colorscale[0][1].endswith(",0)")
