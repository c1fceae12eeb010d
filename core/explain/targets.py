"""What an attribution method needs from one trained model and one raw input: an input tensor, a
forward function from that tensor to class scores, baselines, and the groups (words or image
patches) that perturbation methods switch off together.

Text is explained at the word-embedding layer (the tensor the embedding layer looks up), which is
what Captum's LayerIntegratedGradients on the embeddings computes, but as a plain input: every
Captum method, NoiseTunnel included, applies unchanged. Words are defined on the original text
(`\\w+` runs and single punctuation marks), not by the tokenizer, so two models with different
tokenizers are explained over the same words and can be compared.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageFilter

from core.errors import ConfigError, DataError
from core.explain.catalog import IMAGE_BASELINES, TEXT_BASELINES

WORD_RE = re.compile(r"\w+|[^\w\s]")


def split_words(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in WORD_RE.finditer(text)]


def _token_words(offsets: list[tuple[int, int]], spans: list[tuple[int, int]]) -> np.ndarray:
    """For each token, the index of the word its first character falls in (-1 for special tokens)."""
    starts = np.array([s for s, _ in spans], dtype=np.int64)
    ends = np.array([e for _, e in spans], dtype=np.int64)
    out = np.full(len(offsets), -1, dtype=np.int64)
    for i, (s, e) in enumerate(offsets):
        if e <= s:
            continue
        j = int(np.searchsorted(starts, s, side="right")) - 1
        if j >= 0 and s < ends[j]:
            out[i] = j
        elif j + 1 < len(spans) and starts[j + 1] < e:  # a token that starts on a space
            out[i] = j + 1
    return out


@dataclass
class TextTarget:
    """One text, tokenised for one model."""

    model: Any  # a TextClassifier (or anything with embed / logits_from_embeds)
    text: str
    input_ids: torch.Tensor  # (1, T)
    attention_mask: torch.Tensor  # (1, T)
    token_type_ids: torch.Tensor | None
    tokens: list[str]
    token_word: np.ndarray  # (T,) word index per token, -1 for special tokens
    words: list[str]
    word_spans: list[tuple[int, int]]
    pad_id: int
    mask_id: int | None
    truncated: bool
    n_tokens_total: int
    task: str = field(default="text", init=False)

    @classmethod
    def build(cls, model: Any, tokenizer: Any, text: str, max_tokens: int) -> TextTarget:
        if not isinstance(text, str) or not text.strip():
            raise DataError("The text to explain is empty; type a sentence.")
        full = tokenizer(text, truncation=False, add_special_tokens=True)["input_ids"]
        fast = bool(getattr(tokenizer, "is_fast", False))
        enc = tokenizer(text, truncation=True, max_length=max_tokens, return_offsets_mapping=fast,
                        return_tensors="pt")
        ids = enc["input_ids"]
        tokens = tokenizer.convert_ids_to_tokens(ids[0].tolist())
        specials = set(getattr(tokenizer, "all_special_ids", []) or [])
        if fast:
            offsets = [tuple(map(int, o)) for o in enc["offset_mapping"][0].tolist()]
            offsets = [(0, 0) if int(t) in specials else o for t, o in zip(ids[0].tolist(), offsets, strict=True)]
            spans = split_words(text)
            token_word = _token_words(offsets, spans)
            used = sorted({int(w) for w in token_word if w >= 0})
            remap = {w: i for i, w in enumerate(used)}
            spans = [spans[w] for w in used]
            token_word = np.array([remap.get(int(w), -1) for w in token_word], dtype=np.int64)
            words = [text[s:e] for s, e in spans]
        else:  # slow tokenizers give no character offsets: each token is its own "word"
            token_word = np.array([-1 if int(t) in specials else i for i, t in enumerate(ids[0].tolist())])
            keep = [i for i in range(len(tokens)) if token_word[i] >= 0]
            token_word = np.array([keep.index(i) if i in keep else -1 for i in range(len(tokens))])
            words = [tokens[i].removeprefix("##").lstrip("Ġ▁") for i in keep]
            spans = [(-1, -1)] * len(words)
        types = enc.get("token_type_ids")
        mask = getattr(tokenizer, "mask_token_id", None)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        return cls(model, text, ids, torch.ones_like(ids), types, tokens, token_word, words, spans,
                   int(pad), None if mask is None else int(mask), len(full) > ids.shape[1], len(full))

    # -- what attribution methods call -----------------------------------------------------------

    def to(self, device: torch.device) -> TextTarget:
        self.input_ids = self.input_ids.to(device)
        self.attention_mask = self.attention_mask.to(device)
        if self.token_type_ids is not None:
            self.token_type_ids = self.token_type_ids.to(device)
        return self

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model.encoder.get_input_embeddings()(ids)

    def inputs(self) -> torch.Tensor:
        with torch.no_grad():
            return self.embed(self.input_ids).detach()

    def forward(self, embeds: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        n = embeds.shape[0]
        mask = (self.attention_mask if attention_mask is None else attention_mask).expand(n, -1)
        types = None if self.token_type_ids is None else self.token_type_ids.expand(n, -1)
        out = self.model.encode(inputs_embeds=embeds, attention_mask=mask, token_type_ids=types)
        return self.model.head_forward(self.model.pool(out.last_hidden_state, mask))

    def special(self) -> np.ndarray:
        return self.token_word < 0

    def baseline(self, kind: str) -> torch.Tensor:
        """The 'neutral' input: every non-special token replaced by [PAD] or [MASK], or all zeros."""
        if kind not in TEXT_BASELINES:
            raise ConfigError(f"Text baseline must be one of {', '.join(TEXT_BASELINES)}, got {kind!r}.")
        x = self.inputs()
        if kind == "zeros":
            return torch.zeros_like(x)
        token = self.mask_id if kind == "mask" else self.pad_id
        if token is None:
            raise ConfigError("This model's tokenizer has no [MASK] token; use the pad or zeros baseline.")
        ids = self.input_ids.clone()
        keep = torch.as_tensor(self.special(), device=ids.device).unsqueeze(0)
        ids[~keep] = token
        with torch.no_grad():
            return self.embed(ids).detach()

    def n_features(self, patch: int = 0) -> int:
        return len(self.words)

    def feature_mask(self, patch: int = 0) -> torch.Tensor:
        """(1, T, 1) group ids: a word's sub-tokens share one id; special tokens come last."""
        ids = self.token_word.copy()
        n = len(self.words)
        for k, i in enumerate(np.flatnonzero(ids < 0)):
            ids[i] = n + k
        return torch.as_tensor(ids, device=self.input_ids.device).view(1, -1, 1)

    def reduce(self, attr: torch.Tensor) -> np.ndarray:
        """(1, T, D) attributions → (T,) one signed score per token."""
        return attr.detach().float().sum(dim=-1)[0].cpu().numpy()

    def reduce_groups(self, attr: torch.Tensor) -> np.ndarray:
        """Group attributions (each element holds its word's value) → (T,) so that a word's
        sub-tokens add up to the word's value."""
        per_token = attr.detach().float()[0, :, 0].cpu().numpy()
        groups = self.feature_mask()[0, :, 0].cpu().numpy()
        return per_token / np.bincount(groups)[groups]

    def word_scores(self, token_scores: np.ndarray) -> np.ndarray:
        """Sub-token scores summed into their words (special tokens dropped)."""
        out = np.zeros(len(self.words), dtype=np.float64)
        keep = self.token_word >= 0
        np.add.at(out, self.token_word[keep], token_scores[keep])
        return out

    def probabilities_without(self, removed: np.ndarray) -> torch.Tensor:
        """Class probabilities for each row of `removed` ((B, words) booleans): a removed word's
        tokens are masked out of attention, so the model no longer sees them (ERASER-style removal)."""
        removed = np.atleast_2d(removed)
        gone = removed[:, np.maximum(self.token_word, 0)] & (self.token_word >= 0)[None, :]
        mask = self.attention_mask.expand(len(removed), -1).clone()
        mask[torch.as_tensor(gone, device=mask.device)] = 0
        with torch.no_grad():
            embeds = self.inputs().expand(len(removed), -1, -1)
            return torch.softmax(self.forward(embeds, mask).float(), dim=-1)


@dataclass
class ImageTarget:
    """One image, resized and normalised for one model."""

    model: Any
    pixels: torch.Tensor  # (1, 3, S, S) normalised
    image: np.ndarray  # (S, S, 3) uint8, what the model sees, for overlays
    mean: torch.Tensor
    std: torch.Tensor
    task: str = field(default="image", init=False)

    @classmethod
    def build(cls, model: Any, preprocessor: Any, image: Any) -> ImageTarget:
        if not isinstance(image, Image.Image):
            image = preprocessor.open_image(str(image))
        image = image.convert("RGB")
        s = preprocessor.spec.size
        shown = image.resize((s, s), Image.Resampling.BILINEAR)
        pixels = preprocessor.to_tensor(image).unsqueeze(0)
        return cls(model, pixels, np.asarray(shown, dtype=np.uint8).copy(),
                   preprocessor.mean.view(1, 3, 1, 1), preprocessor.std.view(1, 3, 1, 1))

    def to(self, device: torch.device) -> ImageTarget:
        self.pixels, self.mean, self.std = self.pixels.to(device), self.mean.to(device), self.std.to(device)
        return self

    @property
    def size(self) -> int:
        return int(self.pixels.shape[-1])

    def inputs(self) -> torch.Tensor:
        return self.pixels

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=pixels)

    def _normalise(self, rgb: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(rgb.astype(np.float32) / 255.0).permute(2, 0, 1).unsqueeze(0)
        return (t.to(self.pixels.device) - self.mean) / self.std

    def baseline(self, kind: str) -> torch.Tensor:
        """Blurred copy of the image (default: keeps colours, removes detail), black, or zeros
        (the mean colour after normalisation)."""
        if kind not in IMAGE_BASELINES:
            raise ConfigError(f"Image baseline must be one of {', '.join(IMAGE_BASELINES)}, got {kind!r}.")
        if kind == "zeros":
            return torch.zeros_like(self.pixels)
        if kind == "black":
            return self._normalise(np.zeros_like(self.image))
        radius = max(2.0, self.size / 16)
        blurred = Image.fromarray(self.image).filter(ImageFilter.GaussianBlur(radius))
        return self._normalise(np.asarray(blurred))

    def grid(self, patch: int) -> int:
        return -(-self.size // max(1, min(patch, self.size)))

    def n_features(self, patch: int = 16) -> int:
        return self.grid(patch) ** 2

    def feature_mask(self, patch: int = 16) -> torch.Tensor:
        """(1, 1, S, S) patch ids on a square grid of `patch`-pixel cells."""
        g, p = self.grid(patch), max(1, min(patch, self.size))
        rows = torch.arange(self.size, device=self.pixels.device) // p
        return (rows.view(-1, 1) * g + rows.view(1, -1)).view(1, 1, self.size, self.size)

    def reduce(self, attr: torch.Tensor) -> np.ndarray:
        """(1, C, S, S) or (1, 1, h, w) attributions → (S, S) one signed score per pixel."""
        a = attr.detach().float()
        if a.shape[-1] != self.size:
            a = torch.nn.functional.interpolate(a, size=(self.size, self.size), mode="bilinear",
                                                align_corners=False)
        return a.sum(dim=1)[0].cpu().numpy()

    def reduce_groups(self, attr: torch.Tensor) -> np.ndarray:
        """Patch attributions (every pixel holds its patch's value) → (S, S)."""
        return attr.detach().float()[0, 0].cpu().numpy()
