"""Resumable training checkpoints, written so that a kill at any instant leaves a usable one.

Each checkpoint is a directory `step-<n>/` built under a temporary name, fsynced, given a manifest
with a SHA-256 per file, then renamed into place. Loading walks from the newest checkpoint back and
takes the first whose manifest and hashes check out, so a torn or corrupted write costs at most the
steps since the previous checkpoint. Tensors are stored as safetensors and the optimizer state
with `torch.save`, read back with `weights_only=True` (no arbitrary unpickling).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch

from core.runs import atomic_dir
from core.runs import sha256_file as _sha256

MANIFEST = "manifest.json"
KEEP = 2


def _nbytes(obj: Any) -> int:
    """Bytes of the tensors in a (nested) state: what a checkpoint of it takes on disk, about."""
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(_nbytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_nbytes(v) for v in obj)
    return 0


class Checkpointer:
    def __init__(self, directory: Path, keep: int = KEEP) -> None:
        self.directory = Path(directory)
        self.keep = keep

    def _existing(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        dirs = [p for p in self.directory.iterdir() if p.is_dir() and p.name.startswith("step-")]
        return sorted(dirs, key=lambda p: int(p.name.split("-")[1]))

    def save(self, step: int, tensors: dict[str, torch.Tensor], optimizer: dict[str, Any],
             state: dict[str, Any]) -> Path:
        from safetensors.torch import save_file

        final = self.directory / f"step-{step:09d}"

        def write(tmp: Path) -> None:
            save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp / "tensors.safetensors"))
            torch.save(optimizer, tmp / "optimizer.pt")
            (tmp / "state.json").write_text(json.dumps(state))
            files = {p.name: _sha256(p) for p in sorted(tmp.iterdir())}
            (tmp / MANIFEST).write_text(json.dumps({"step": step, "files": files}))

        # Both copies exist until the new one is in place; refuse early what cannot fit next to them.
        atomic_dir(final, write, need_bytes=int(1.1 * (_nbytes(tensors) + _nbytes(optimizer))) + (1 << 20))
        for old in self._existing()[:-self.keep]:
            shutil.rmtree(old, ignore_errors=True)
        return final

    def check(self, path: Path) -> str | None:
        """Why a checkpoint cannot be used (None if its files match their manifest)."""
        try:
            files = json.loads((path / MANIFEST).read_bytes())["files"]
        except FileNotFoundError:
            return "no manifest: it was not written completely"
        except (OSError, ValueError, KeyError, TypeError) as exc:
            return f"its manifest is unreadable ({type(exc).__name__})"
        for name, digest in files.items():
            try:
                if _sha256(path / name) != digest:
                    return f"{name} does not match its recorded SHA-256"
            except OSError:
                return f"{name} is missing or unreadable"
        return None

    def verify(self, path: Path) -> bool:
        return self.check(path) is None

    def scan(self) -> tuple[Path | None, list[tuple[str, str]]]:
        """The newest intact checkpoint, and (name, reason) of each newer one that was rejected."""
        rejected = []
        for p in reversed(self._existing()):
            why = self.check(p)
            if why is None:
                return p, rejected
            rejected.append((p.name, why))
        return None, rejected

    def latest_valid(self) -> Path | None:
        """The newest checkpoint whose files match their manifest (hashes only; loads nothing)."""
        return self.scan()[0]

    def load_latest(self) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, Any]] | None:
        """(tensors, optimizer state, state) of the newest intact checkpoint, on the CPU, or None."""
        from safetensors.torch import load_file

        path = self.latest_valid()
        if path is not None:
            tensors = load_file(str(path / "tensors.safetensors"))
            optimizer = torch.load(path / "optimizer.pt", map_location="cpu", weights_only=True)
            state = json.loads((path / "state.json").read_text())
            return tensors, optimizer, state
        return None

    def clear(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)
