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
Which form a run takes is its family's answer (`export_hf` in its `core.models` module); this
module builds the folder, falls back to the tunescope format and writes the README.
"""

from __future__ import annotations

import inspect
import shutil
import tempfile
from pathlib import Path
from typing import Any

from core.errors import RunError
from core.finetune import METHODS
from core.models.catalog import public_name
from core.runs import Run, default_runs_dir, resolve_run


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

    from core.models import load_bundle
    from core.models.catalog import family_module

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
            fmt = family_module(model.family).export_hf(model, bundle, labels, tmp)  # None: no HF form
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


def _export_note(method: object) -> str:
    """The README's words, in brackets, on how the method's weights were folded in (LoRA's adapters)."""
    entry = METHODS.get(str(method))
    return f" ({entry.export_note})" if entry and entry.export_note else ""


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
            + _export_note(s.get("method")) + ".\n\n"
            f"- Format: {fmt}\n- Classes: {', '.join(map(str, labels))}\n"
            f"- Test accuracy {test.get('accuracy', float('nan')):.3f}, "
            f"macro-F1 {test.get('macro_f1', float('nan')):.3f}"
            f" on {test.get('n', '?')} held-out examples\n\n## Use\n\nRun from this folder (or replace `.` by its "
            f"path):\n\n{snippet}\n\nThe predictions equal tunescope's own for the same inputs (checked at export "
            "in tunescope's tests).\n")
