import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, log_loss, precision_recall_fscore_support
from sklearn.metrics import confusion_matrix as sk_confusion

from core.metrics import classification_report, confusion_matrix, expected_calibration_error, softmax


@pytest.fixture
def case():
    rng = np.random.default_rng(0)
    n, k = 300, 4
    y = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)) + 2.0 * np.eye(k)[y] * rng.random((n, 1))
    return softmax(logits), y, [f"c{i}" for i in range(k)]


def test_report_matches_scikit_learn(case):
    probs, y, labels = case
    pred = probs.argmax(1)
    r = classification_report(probs, y, labels)
    assert r["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert r["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro"))
    assert r["weighted_f1"] == pytest.approx(f1_score(y, pred, average="weighted"))
    p, rc, f, s = precision_recall_fscore_support(y, pred, zero_division=0)
    for i, name in enumerate(labels):
        assert r["per_class"][name]["precision"] == pytest.approx(p[i])
        assert r["per_class"][name]["recall"] == pytest.approx(rc[i])
        assert r["per_class"][name]["f1"] == pytest.approx(f[i])
        assert r["per_class"][name]["support"] == s[i]
    assert r["loss"] == pytest.approx(log_loss(y, probs, labels=list(range(4))))
    assert np.array_equal(np.array(r["confusion_matrix"]), sk_confusion(y, pred, labels=list(range(4))))


def test_class_never_predicted_scores_zero_like_sklearn():
    y = np.array([0, 0, 1, 1, 2])
    probs = np.eye(3)[[0, 0, 1, 1, 1]] * 0.9 + 0.1 / 3
    r = classification_report(probs, y, ["a", "b", "c"])
    assert r["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert r["macro_f1"] == pytest.approx(f1_score(y, probs.argmax(1), average="macro", zero_division=0))


def test_ece_is_zero_when_confidence_equals_accuracy_and_large_when_overconfident():
    y = np.array([0, 1] * 50)
    half = np.full((100, 2), 0.5)
    half[:, 0] += 1e-9  # always predicts class 0 with confidence 0.5 and is right half the time
    assert expected_calibration_error(half, y) == pytest.approx(0.0, abs=1e-6)
    over = np.tile([0.99, 0.01], (100, 1))
    assert expected_calibration_error(over, y) == pytest.approx(0.49, abs=1e-6)


def test_confusion_matrix_counts():
    cm = confusion_matrix(np.array([0, 1, 1, 2]), np.array([0, 2, 1, 2]), 3)
    assert cm.tolist() == [[1, 0, 0], [0, 1, 1], [0, 0, 1]]
