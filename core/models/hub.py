"""Fetching pretrained weights: a local folder, then the local Hugging Face cache, then the network
with a short timeout, so a machine with no route fails fast instead of hanging. Torch-free."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from core.errors import ModelError, ModelUnavailableError

NETWORK_TIMEOUT_S = 20


@contextlib.contextmanager
def network_timeout(seconds: float) -> Iterator[None]:
    """Downloads on a machine with no route must fail fast, not hang."""
    old = socket.getdefaulttimeout()
    env_old = {k: os.environ.get(k) for k in ("HF_HUB_ETAG_TIMEOUT", "HF_HUB_DOWNLOAD_TIMEOUT")}
    socket.setdefaulttimeout(seconds)
    for k in env_old:
        os.environ.setdefault(k, str(int(seconds)))
    try:
        yield
    finally:
        socket.setdefaulttimeout(old)
        for k, v in env_old.items():
            if v is None:
                os.environ.pop(k, None)


def hf_load(loader: Callable[..., Any], name: str, **kwargs: Any) -> Any:
    """Local folder, then the local HF cache, then the hub (with a short timeout)."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # its per-tensor bar would drown the CLI's own progress
    if "trust_remote_code" in kwargs:  # never run code that ships with a model
        raise ModelError("trust_remote_code is not allowed.")
    if Path(name).is_dir():
        try:
            return loader(name, **kwargs)
        except (OSError, ValueError, KeyError) as exc:
            raise ModelError(f"Folder {name!r} is not a usable Hugging Face model ({type(exc).__name__}: "
                             f"{str(exc).splitlines()[0][:200]}); it needs config.json, weights and, for "
                             "text, tokenizer files.") from exc
    try:
        return loader(name, local_files_only=True, **kwargs)
    except OSError:
        pass
    try:
        with network_timeout(NETWORK_TIMEOUT_S):
            return loader(name, **kwargs)
    except (OSError, ValueError) as exc:
        raise ModelUnavailableError(
            f"Cannot load model {name!r}: it is not a local folder, not in the Hugging Face cache, and "
            f"the hub could not be reached ({type(exc).__name__}). Give a local folder, or use the "
            "offline default models (minilm for text, efficientnet_lite0 for images).") from exc
