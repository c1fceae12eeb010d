"""`tunescope export`: a finished run's model as a standard Hugging Face folder that loads without
tunescope and predicts identically.

- Text runs pooled through the encoder's pooler (BERT-like): `AutoModelForSequenceClassification`.
- Text runs with mean or [CLS] pooling (e.g. MiniLM, which pools by the mean): no Hugging Face head
  class pools that way, so the folder holds the encoder (`AutoModel`), the tokenizer, the linear head
  (`classifier.safetensors`) and `reference_logits()`'s few lines in the README.
- ViT-like image runs, and others (Swin, ...) whose Hugging Face head pools as the run did (checked):
  `AutoModelForImageClassification` plus an image processor with the run's size and normalisation;
  the README shows `reference_image_logits()`, which reads images exactly as tunescope does (EXIF
  rotation, transparency onto white, 16-bit scans, PIL's bilinear resize), which the processor alone
  does not.
- torchvision and EfficientNet-Lite runs: no Hugging Face class exists; the folder is the tunescope
  model (safetensors + spec), loadable with `core.models.load_bundle`.
LoRA runs are saved with their adapters merged, so they export like any other run.
"""

from __future__ import annotations

import inspect
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from core.errors import RunError
from core.models.catalog import public_name
from core.runs import Run, default_runs_dir, resolve_run

HEAD_FILE = "classifier.safetensors"
HEAD_SPEC = "tunescope_head.json"


def _label_maps(labels: list[str]) -> dict[str, Any]:
    return {"id2label": dict(enumerate(labels)), "label2id": {name: i for i, name in enumerate(labels)}}


def _check(run: Run, out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise RunError(f"{out} is a file; give a new folder for the export.")
    if not (run.model_dir / "tunescope_model.json").is_file():
        raise RunError(f"Run {run.id} has no saved model (state: {run.status().get('state', 'unknown')}); only "
                       "finished runs can be exported.")
    if out.exists() and any(out.iterdir()):
        raise RunError(f"{out} already exists and is not empty; choose a new folder (nothing was overwritten).")


def export_run(run: str | Path | Run, out_dir: str | Path, runs_dir: str | Path | None = None) -> dict[str, Any]:
    """Write the export folder; return {"path", "format", "identical"}."""
    from transformers.utils import logging as hf_logging

    from core.models import HFImageClassifier, TextClassifier, load_bundle

    hf_logging.disable_progress_bar()  # save_pretrained's shard bar is noise in a CLI's output
    r = run if isinstance(run, Run) else resolve_run(run, Path(runs_dir) if runs_dir else default_runs_dir())
    out = Path(out_dir)
    _check(r, out)
    from core.runs import verify_model

    verify_model(r)  # a damaged model is refused, never exported
    bundle, labels = load_bundle(r.model_dir)
    model = bundle.model
    out.parent.mkdir(parents=True, exist_ok=True)
    # Built beside the target under a fresh private name, then renamed: a failed export leaves nothing.
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        fmt = None
        try:
            if isinstance(model, TextClassifier) and model.pooling == "pooler":
                fmt = _export_text_pooler(model, bundle, labels, tmp)
            elif isinstance(model, TextClassifier):
                fmt = _export_text_encoder(model, bundle, labels, tmp)
            elif isinstance(model, HFImageClassifier) and hasattr(getattr(model.backbone, "embeddings", None),
                                                                   "patch_embeddings"):
                fmt = _export_vit(model, bundle, labels, tmp)
        except (RunError, RuntimeError, ValueError, KeyError):
            fmt = None  # this architecture's Hugging Face head does not match the run's: keep tunescope's format
        if fmt is None:
            for f in list(tmp.iterdir()):
                shutil.rmtree(f) if f.is_dir() else f.unlink()
            fmt = _export_native(r, tmp)
        (tmp / "README.md").write_text(_readme(r, fmt, labels), encoding="utf-8")
        if out.exists():
            out.rmdir()  # empty (checked above)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"path": str(out), "format": fmt}


def export_zip(run: str | Path | Run, runs_dir: str | Path | None = None) -> bytes:
    """The export folder as a ZIP (for a download button), its root named `<run id>-hf`."""
    import io
    import tempfile
    import zipfile

    r = run if isinstance(run, Run) else resolve_run(run, Path(runs_dir) if runs_dir else default_runs_dir())
    buf = io.BytesIO()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"{r.id}-hf"
        export_run(r, out)
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
            for f in sorted(out.rglob("*")):
                if f.is_file():
                    z.write(f, f.relative_to(tmp).as_posix())
    return buf.getvalue()


def _export_text_pooler(model: Any, bundle: Any, labels: list[str], out: Path) -> str:
    from transformers import AutoModelForSequenceClassification

    config = model.encoder.config.__class__.from_dict(model.encoder.config.to_dict())
    config.num_labels = len(labels)
    config.problem_type = "single_label_classification"
    for k, v in _label_maps(labels).items():
        setattr(config, k, v)
    hf = AutoModelForSequenceClassification.from_config(config)
    base = getattr(hf, hf.base_model_prefix)
    missing, unexpected = base.load_state_dict(model.encoder.state_dict(), strict=False)
    classifier = getattr(hf, "classifier", None)
    if missing or unexpected or classifier is None or not hasattr(classifier, "weight") \
            or tuple(classifier.weight.shape) != tuple(model.classifier.weight.shape):
        raise RunError(f"{type(hf).__name__} does not match this run's encoder and head; export failed.")
    classifier.load_state_dict(model.classifier.state_dict())
    hf.save_pretrained(out)
    _save_tokenizer(bundle, out)
    _verify_text(model, bundle, out, lambda d: AutoModelForSequenceClassification.from_pretrained(d))
    return f"Hugging Face {type(hf).__name__} (AutoModelForSequenceClassification)"


def _save_tokenizer(bundle: Any, out: Path) -> None:
    """With tunescope's own length limit, so `truncation=True` cuts where tunescope did."""
    tok = bundle.preprocessor.tokenizer
    old = tok.model_max_length
    tok.model_max_length = bundle.preprocessor.max_length
    try:
        tok.save_pretrained(out)
    finally:
        tok.model_max_length = old


VERIFY_TEXTS = ["a short example", "another, somewhat longer example sentence to check the export " * 40]


def _verify_text(model: Any, bundle: Any, out: Path, load: Any) -> None:
    """Reload the export and compare its logits with the run's on two texts (one past the limit)."""
    import torch
    from transformers import AutoTokenizer

    hf = load(out).eval()
    tok = AutoTokenizer.from_pretrained(out)
    with torch.no_grad():
        got = hf(**tok(VERIFY_TEXTS, padding=True, truncation=True, return_tensors="pt")).logits
        want = model.eval()(**bundle.preprocessor.collate(bundle.preprocessor.encode(VERIFY_TEXTS)))
    if not torch.allclose(got, want, atol=1e-4):
        raise RunError("The exported model's predictions differ from the run's.")


def _export_text_encoder(model: Any, bundle: Any, labels: list[str], out: Path) -> str:
    from safetensors.torch import save_file

    model.encoder.save_pretrained(out)
    _save_tokenizer(bundle, out)
    save_file({k: v.contiguous() for k, v in model.classifier.state_dict().items()}, str(out / HEAD_FILE))
    (out / HEAD_SPEC).write_text(json.dumps({"pooling": model.pooling, "labels": labels,
                                             "max_length": bundle.preprocessor.max_length}, indent=2))
    return f"Hugging Face AutoModel encoder + linear head ({model.pooling} pooling)"


def _export_vit(model: Any, bundle: Any, labels: list[str], out: Path) -> str:
    from transformers import AutoModelForImageClassification, ViTImageProcessor

    config = model.backbone.config.__class__.from_dict(model.backbone.config.to_dict())
    config.num_labels = len(labels)
    for k, v in _label_maps(labels).items():
        setattr(config, k, v)
    hf = AutoModelForImageClassification.from_config(config)
    base = getattr(hf, hf.base_model_prefix)
    state = {k: v for k, v in model.backbone.state_dict().items() if not k.startswith("pooler.")}
    missing, unexpected = base.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise RunError(f"{type(hf).__name__} does not match this run's backbone; export failed.")
    hf.classifier.load_state_dict(model.classifier.state_dict())
    hf.save_pretrained(out)
    spec = bundle.preprocessor.spec
    ViTImageProcessor(size={"height": spec.size, "width": spec.size}, image_mean=list(spec.mean),
                      image_std=list(spec.std), resample=2).save_pretrained(out)  # 2 = bilinear, as in training
    import torch

    reloaded = AutoModelForImageClassification.from_pretrained(out).eval()
    pixels = torch.randn(2, 3, spec.size, spec.size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():  # e.g. Swin and DINOv2 heads pool differently from tunescope's [CLS] head
        if not torch.allclose(reloaded(pixel_values=pixels).logits, model.eval()(pixel_values=pixels), atol=1e-4):
            raise RunError("The exported model's predictions differ from the run's.")
    return f"Hugging Face {type(hf).__name__} (AutoModelForImageClassification)"


def _export_native(run: Run, out: Path) -> str:
    for f in run.model_dir.iterdir():
        if f.is_symlink():
            continue
        if f.is_dir():
            shutil.copytree(f, out / f.name, symlinks=False)
        elif f.is_file():
            shutil.copy2(f, out / f.name)
    return "tunescope model (no Hugging Face class exists for this architecture)"


def reference_logits(folder, texts):
    """Logits of an exported mean/[CLS]-pooled text model using only transformers, safetensors and
    torch. Self-contained on purpose: the export's README shows this function as it is."""
    import json
    from pathlib import Path

    import torch
    from safetensors.torch import load_file
    from transformers import AutoModel, AutoTokenizer

    folder = Path(folder)
    head = json.loads((folder / "tunescope_head.json").read_text())
    tokenizer = AutoTokenizer.from_pretrained(folder)
    encoder = AutoModel.from_pretrained(folder).eval()
    w = load_file(str(folder / "classifier.safetensors"))
    batch = tokenizer(texts, padding=True, truncation=True, max_length=head["max_length"], return_tensors="pt")
    with torch.no_grad():
        hidden = encoder(**batch).last_hidden_state
        if head["pooling"] == "mean":
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        else:
            pooled = hidden[:, 0]
        return pooled @ w["weight"].T + w["bias"]



def reference_image_logits(folder, paths):
    """Logits of an exported image model for image files, preprocessed exactly as tunescope trains
    and predicts (EXIF rotation applied, transparency flattened onto white, 16-bit scans scaled to
    8 bits, a bilinear resize to the square input size), with only PIL, numpy, torch and
    transformers. Self-contained on purpose: the export's README shows this function as it is."""
    import json
    from pathlib import Path

    import numpy as np
    import torch
    from PIL import Image, ImageOps
    from transformers import AutoModelForImageClassification

    folder = Path(folder)
    prep = json.loads((folder / "preprocessor_config.json").read_text())
    size = prep["size"]["height"]
    mean = torch.tensor(prep["image_mean"]).view(3, 1, 1)
    std = torch.tensor(prep["image_std"]).view(3, 1, 1)

    def load(path):
        image = Image.open(path)
        image.load()
        if image.getexif().get(0x0112, 1) != 1:  # phones store photos sideways with a rotation tag
            image = ImageOps.exif_transpose(image)
        if image.mode.startswith(("I", "F")):  # 16-bit or float grayscale: scaled by its nominal range
            values = np.asarray(image, dtype=np.float64)
            peak = float(values.max()) if values.size else 0.0
            top = 1.0 if peak <= 1.0 and image.mode == "F" else 255.0 if peak <= 255 else 65535.0
            image = Image.fromarray((values / top * 255).clip(0, 255).astype(np.uint8), "L")
        if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
            rgba = image.convert("RGBA")  # transparent pixels become white, not their hidden colour
            image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
        image = image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
        pixels = torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1)
        return (pixels.float() / 255.0 - mean) / std

    model = AutoModelForImageClassification.from_pretrained(folder).eval()
    with torch.no_grad():
        return model(pixel_values=torch.stack([load(p) for p in paths])).logits

_SNIPPETS = {
    "AutoModelForSequenceClassification": """```python
from transformers import AutoModelForSequenceClassification, AutoTokenizer
import torch

tokenizer = AutoTokenizer.from_pretrained("{folder}")
model = AutoModelForSequenceClassification.from_pretrained("{folder}").eval()
batch = tokenizer(["an example text"], padding=True, truncation=True, return_tensors="pt")
with torch.no_grad():
    probs = model(**batch).logits.softmax(-1)
print(model.config.id2label[int(probs.argmax())])
```""",
    "tunescope model": """```bash
tunescope predict --run <this run> --image photo.jpg
```
or in Python: `core.models.load_bundle(Path("{folder}"))` (tunescope installed).""",
}


def _readme(run: Run, fmt: str, labels: list[str]) -> str:
    s = run.summary()
    test = s.get("test") or {}
    if "AutoModel encoder" in fmt:  # the very function the tests check, so the README cannot drift from it
        snippet = (f"```python\n{inspect.getsource(reference_logits)}\n\n"
                   f"print(reference_logits('.', ['an example text']).argmax(-1))\n```")
    elif "AutoModelForImageClassification" in fmt:  # the image processor alone would skip EXIF and alpha
        snippet = (f"```python\n{inspect.getsource(reference_image_logits)}\n\n"
                   'from transformers import AutoConfig\n\nlogits = reference_image_logits(".", ["photo.jpg"])\n'
                   'print(AutoConfig.from_pretrained(".").id2label[int(logits.argmax())])\n```')
    else:
        snippet = next(v for k, v in _SNIPPETS.items() if k in fmt).format(folder=".")
    return (f"# {run.id}\n\nExported by tunescope: a `{s.get('method')}` fine-tune of `{public_name(s.get('model'))}` "
            f"({public_name(s.get('model_source'))}; licence {s.get('model_licence')}) on the dataset "
            f"`{(s.get('dataset') or {}).get('name')}`"
            + (" (LoRA adapters merged into the weights)" if s.get("method") == "lora" else "") + ".\n\n"
            f"- Format: {fmt}\n- Classes: {', '.join(map(str, labels))}\n"
            f"- Test accuracy {test.get('accuracy', float('nan')):.3f}, "
            f"macro-F1 {test.get('macro_f1', float('nan')):.3f}"
            f" on {test.get('n', '?')} held-out examples\n\n## Use\n\nRun from this folder (or replace `.` by its "
            f"path):\n\n{snippet}\n\nThe predictions equal tunescope's own for the same inputs (checked at export "
            "in tunescope's tests).\n")
