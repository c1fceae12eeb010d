"""Shared fixtures: tiny random-initialised models saved as real local model folders, so tests go
through the same loading code as a user's Hugging Face model, in well under a second each."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

POS = ["good", "great", "fun", "lovely", "superb", "moving", "brilliant", "charming"]
NEG = ["bad", "dull", "awful", "boring", "weak", "tedious", "poor", "messy"]
FILLER = ["the", "film", "movie", "was", "a", "story", "plot", "and", "really", "quite", "acting", "very"]


def make_sentiment_rows(n: int = 240, seed: int = 0) -> list[tuple[str, str]]:
    """A separable toy task: the label is carried by one sentiment word among fillers."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = "positive" if i % 2 == 0 else "negative"
        words = rng.sample(FILLER, 4) + [rng.choice(POS if label == "positive" else NEG)]
        rng.shuffle(words)
        rows.append((" ".join(words), label))
    return rows


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    d = tmp_path_factory.mktemp("tiny-bert")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *POS, *NEG, *FILLER,
             *"abcdefghijklmnopqrstuvwxyz", "<", ">", "/", "(", ")", "!", ".", ","]
    (d / "vocab.txt").write_text("\n".join(vocab) + "\n")
    (d / "tokenizer_config.json").write_text('{"tokenizer_class": "BertTokenizer", "do_lower_case": true}')
    tok = AutoTokenizer.from_pretrained(d)
    tok.save_pretrained(d)
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(vocab), hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=128, max_position_embeddings=64)
    BertModel(cfg).save_pretrained(d)
    return d


@pytest.fixture(scope="session")
def tiny_vit_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    d = tmp_path_factory.mktemp("tiny-vit")
    torch.manual_seed(0)
    cfg = ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                    intermediate_size=64)
    ViTModel(cfg).save_pretrained(d)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(d)
    return d


@pytest.fixture
def sentiment_csv(tmp_path: Path) -> Path:
    import csv

    p = tmp_path / "reviews.csv"
    with open(p, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        w.writerows(make_sentiment_rows())
    return p


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private $TUNESCOPE_HOME (runs and the job table) for one test."""
    h = tmp_path / "home"
    monkeypatch.setenv("TUNESCOPE_HOME", str(h))
    monkeypatch.delenv("TUNESCOPE_JOBS_DB", raising=False)
    return h


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    return tmp_path / "runs"


@pytest.fixture
def fake_runs(home: Path) -> Path:
    """$TUNESCOPE_HOME/runs with four finished fake runs: head and full, two seeds each."""
    from run_factory import write_fake_run

    root = home / "runs"
    for method, acc in (("head", 0.7), ("full", 0.9)):
        for seed in (1, 2):
            write_fake_run(root, f"reviews-{method}-s{seed}", accuracy=acc, method=method, seed=seed)
    return root


@pytest.fixture(scope="session")
def trained_text_run(tiny_bert_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real (tiny) finished text run with a saved model: predict and explain can load it."""
    import csv

    from core import api
    from core.config import DataConfig, ModelConfig, RunConfig, TrainConfig

    d = tmp_path_factory.mktemp("trained")
    src = d / "reviews.csv"
    with open(src, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        w.writerows(make_sentiment_rows(120))
    # Mean pooling and trainable embeddings let the tiny random encoder learn the sentiment word, so
    # explanations of this run have something real to find.
    cfg = RunConfig(data=DataConfig(source=str(src)),
                    model=ModelConfig(name=str(tiny_bert_dir), max_length=32, pooling="mean"),
                    train=TrainConfig(method="full", epochs=4, batch_size=16, lr=3e-3, train_embeddings=True,
                                      device="cpu"))
    return api.train(cfg, runs_dir=d / "runs", run_id="tiny-text")


@pytest.fixture
def text_run(home: Path, trained_text_run: Path) -> Path:
    """The tiny trained text run, copied into this test's $TUNESCOPE_HOME/runs (without cached
    explanations, so each page test starts from none)."""
    import shutil

    dest = home / "runs" / trained_text_run.name
    shutil.copytree(trained_text_run, dest, ignore=shutil.ignore_patterns("explanations"))
    return dest


@pytest.fixture(scope="session")
def shapes_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two visually distinct image classes (bright squares vs dark stripes), 24 images each."""
    from fixtures_data import shapes_entries, write_zip

    return write_zip(tmp_path_factory.mktemp("shapes") / "shapes.zip", shapes_entries())


@pytest.fixture(scope="session")
def trained_image_runs(tiny_vit_dir: Path, shapes_zip: Path, tmp_path_factory: pytest.TempPathFactory
                       ) -> dict[str, Path]:
    """Finished tiny image runs: a ViT (attention) and a random-init ResNet-18 (convolutions)."""
    from core import api
    from core.config import DataConfig, ModelConfig, RunConfig, TrainConfig

    root = tmp_path_factory.mktemp("image-runs") / "runs"
    out = {}
    for key, name, size in (("vit", str(tiny_vit_dir), None), ("resnet", "resnet18", 32)):
        cfg = RunConfig(data=DataConfig(source=str(shapes_zip)),
                        model=ModelConfig(name=name, pretrained=False, image_size=size),
                        train=TrainConfig(method="full", epochs=3, batch_size=8, lr=5e-3, device="cpu"))
        out[key] = api.train(cfg, runs_dir=root, run_id=f"tiny-{key}")
    return out


PASSWORD = "correct horse 42"  # every test account's password (classroom fixture)


@pytest.fixture
def fast_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2id with tiny costs: the tests check the flow, not the hardness (which is argon2-cffi's)."""
    from argon2 import PasswordHasher

    from core.accounts import passwords

    monkeypatch.setattr(passwords, "HASHER", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    monkeypatch.setattr(passwords, "_DUMMY", [])


@pytest.fixture
def classroom(home: Path, fast_hashing: None) -> dict[str, Path]:
    """Accounts teach (instructor), ann and bob (students), vic (viewer), all with PASSWORD, and one
    finished fake run each for ann and bob (private) and one shared run of ann's."""
    from run_factory import write_fake_run

    from core import accounts
    from core.access import Access, write_access

    for name, role in (("teach", "instructor"), ("ann", "student"), ("bob", "student"), ("vic", "viewer")):
        accounts.add_user(name, role, PASSWORD)
    runs = home / "runs"
    made = {}
    for run_id, owner, shared in (("20260101-000001-ann-private", "ann", False),
                                  ("20260101-000002-ann-shared", "ann", True),
                                  ("20260101-000003-bob-private", "bob", False)):
        made[run_id] = write_fake_run(runs, run_id, seed=len(made))
        write_access(made[run_id], Access(owner=owner, shared=shared))
    return made
