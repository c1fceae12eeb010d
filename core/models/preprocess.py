"""Turn raw inputs (texts, images) into model batches.

Text is tokenised once up front and padded per batch to its longest member (dynamic padding);
images are decoded lazily per batch so a large image set never sits in memory decoded.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class TextPreprocessor:
    def __init__(self, tokenizer: Any, max_length: int) -> None:
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    def encode(self, texts: Sequence[str]) -> list[dict[str, list[int]]]:
        if not texts:
            return []
        enc = self.tokenizer(list(texts), truncation=True, max_length=self.max_length,
                             padding=False, return_attention_mask=False)
        keys = [k for k in ("input_ids", "token_type_ids") if k in enc]
        return [{k: enc[k][i] for k in keys} for i in range(len(texts))]

    @staticmethod
    def length(item: dict[str, list[int]]) -> int:
        return len(item["input_ids"])

    def collate(self, items: Sequence[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        width = max(len(x["input_ids"]) for x in items)
        n = len(items)
        ids = torch.full((n, width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((n, width), dtype=torch.long)
        types = torch.zeros((n, width), dtype=torch.long) if "token_type_ids" in items[0] else None
        for i, x in enumerate(items):
            k = len(x["input_ids"])
            ids[i, :k] = torch.tensor(x["input_ids"])
            mask[i, :k] = 1
            if types is not None:
                types[i, :k] = torch.tensor(x["token_type_ids"])
        batch = {"input_ids": ids, "attention_mask": mask}
        if types is not None:
            batch["token_type_ids"] = types
        return batch

    def save(self, directory: Path) -> None:
        self.tokenizer.save_pretrained(directory)


@dataclass(frozen=True)
class ImageSpec:
    size: int = 224
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ImageSpec:
        return cls(size=int(d["size"]), mean=tuple(d["mean"]), std=tuple(d["std"]))


class ImagePreprocessor:
    """Resize to a square, scale to [0, 1], normalise; optional light augmentation for training."""

    def __init__(self, spec: ImageSpec, open_image: Any) -> None:
        self.spec = spec
        self.open_image = open_image  # ref -> PIL image; injected so models do not import loaders
        self.mean = torch.tensor(spec.mean).view(3, 1, 1)  # (3, 1, 1) tensors: normalising and undoing it
        self.std = torch.tensor(spec.std).view(3, 1, 1)

    def encode(self, refs: Sequence[Any]) -> list[Any]:
        return list(refs)

    @staticmethod
    def length(item: Any) -> int:
        return 1

    def to_tensor(self, image: Image.Image, augment: bool = False, rng: random.Random | None = None
                  ) -> torch.Tensor:
        image = image.convert("RGB")
        s = self.spec.size
        if augment:
            rng = rng or random.Random()
            w, h = image.size
            scale = rng.uniform(0.8, 1.0)
            cw, ch = max(1, int(w * scale)), max(1, int(h * scale))
            x0, y0 = rng.randint(0, w - cw), rng.randint(0, h - ch)
            image = image.crop((x0, y0, x0 + cw, y0 + ch))
            if rng.random() < 0.5:
                image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        image = image.resize((s, s), Image.Resampling.BILINEAR)
        arr = torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1)
        return (arr.float() / 255.0 - self.mean) / self.std

    def collate(self, items: Sequence[Any], augment: bool = False, rng: random.Random | None = None
                ) -> dict[str, torch.Tensor]:
        tensors = []
        for ref in items:
            img = ref if isinstance(ref, Image.Image) else self.open_image(ref)
            tensors.append(self.to_tensor(img, augment=augment, rng=rng))
        return {"pixel_values": torch.stack(tensors)}

    def save(self, directory: Path) -> None:
        (directory / "image_spec.json").write_text(self.spec.to_json())
