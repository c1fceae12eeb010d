"""Method agreement in both senses: where the evidence is (ranks of magnitudes) and which way it points
(signed ranks, only between methods whose scores carry a sign)."""

from __future__ import annotations

import numpy as np
import pytest

from core.explain.agreement import agreement_matrix, agreement_notes, comparable
from core.explain.catalog import METHODS


def test_signed_methods_that_point_at_the_same_parts_in_opposite_ways_are_called_out():
    a = np.array([1.0, -2, 3, -4, 5, 0.5])
    ag = agreement_matrix([("ig", a), ("deeplift", -a)])
    assert ag["spearman"][0][1] == pytest.approx(1.0)
    assert ag["signed_spearman"][0][1] == pytest.approx(-1.0)
    (note,) = agreement_notes(ag)
    assert note.startswith("Integrated Gradients and DeepLift point at the same parts") and "signed -1.00" in note


def test_agreeing_signed_methods_and_unsigned_ones_get_no_note():
    a = np.array([1.0, -2, 3, -4, 5, 0.5])
    same = agreement_matrix([("ig", a), ("deeplift", 1.5 * a)])
    assert same["signed_spearman"][0][1] == pytest.approx(1.0) and agreement_notes(same) == []
    # Saliency has no sign: its signed comparison is not a number, and never an "opposite way" note.
    mixed = agreement_matrix([("ig", a), ("saliency", np.abs(a))])
    assert mixed["signed"] == [True, False] and mixed["signed_spearman"][0][1] is None
    assert agreement_notes(mixed) == []


def test_unrelated_maps_are_not_said_to_agree_on_where():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=200), rng.normal(size=200)
    ag = agreement_matrix([("ig", a), ("occlusion", b)])
    assert abs(ag["spearman"][0][1]) < 0.2 and agreement_notes(ag) == []


def test_images_compare_signed_patch_totals():
    heat = np.zeros((28, 28))
    heat[:14, :14], heat[14:, 14:] = 1.0, -1.0
    assert comparable(heat, signed=True).sum() == pytest.approx(0.0)
    assert comparable(heat).sum() == pytest.approx(np.abs(heat).sum())
    ag = agreement_matrix([("ig", heat), ("input_x_gradient", -heat)])
    assert ag["signed_spearman"][0][1] < 0 and len(agreement_notes(ag)) == 1


def test_the_catalog_says_which_methods_have_no_sign():
    assert {n for n, m in METHODS.items() if not m.signed} == {"saliency", "gradcam", "smoothgrad"}
