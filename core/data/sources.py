"""What a dataset source names: a file or folder, a saved dataset, an upload, or `demo:NAME`.

Resolving a source decides the name people call it by and whether the image paths in it are
confined to its own folder (anything stored by tunescope is).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from core.data import demos, locations
from core.data.read import stem
from core.errors import DataError


@dataclass
class Source:
    """A resolved source: what was given, the file or folder it names, and the hints for reading it."""

    given: str
    path: Path
    name: str
    task: str | None
    text_column: str | None
    label_column: str | None
    confined: bool = False  # image paths in a table must resolve inside the table's own folder


def resolve_source(source: str | os.PathLike[str], task: str | None, text_column: str | None,
                   label_column: str | None, confine: bool = False) -> Source:
    given = os.fspath(source)
    if isinstance(given, str) and given.startswith("demo:"):
        return _resolve_demo(given, task, text_column, label_column)
    if not str(given).strip():
        raise DataError("The dataset source is empty; give a file, a folder, a ZIP or demo:NAME.")
    path = Path(given).expanduser()
    if not path.exists():
        if confine or _in_tunescope_storage(path):  # a server path says nothing to a dashboard user
            raise DataError(f"The dataset '{path.name}' is no longer there (it may have been deleted); "
                            "pick or upload it again.")
        raise DataError(f"'{given}' does not exist; check the path (or use demo:NAME for a demo).")
    saved_name = _saved_dataset_name(path)
    # Decided from where the file lives, not only from a keyword: a queued job carries just the
    # source path, and the worker must apply the same rule the page did.
    confined = confine or saved_name is not None or _in_tunescope_storage(path)
    return Source(str(given), path, saved_name or stem(path), task, text_column, label_column, confined)


def _in_tunescope_storage(path: Path) -> bool:
    """True inside the upload staging or saved-dataset areas of $TUNESCOPE_HOME (symlinks resolved)."""
    try:
        real = path.resolve()
        roots = [locations.uploads_dir().resolve(), locations.datasets_dir().resolve()]
    except (OSError, RuntimeError):
        return True  # cannot tell: the stricter rule is the safe one
    return any(real.is_relative_to(root) for root in roots)


def _saved_dataset_name(path: Path) -> str | None:
    """The name a dataset was saved under, when `path` is the `data.<ext>` file of a saved dataset's
    folder (its stem, "data", would otherwise name every saved dataset alike), else None."""
    meta = path.parent / locations.META
    if path.is_dir() or stem(path) != "data" or not meta.is_file():
        return None
    try:
        with open(meta, "rb") as fh:
            record = json.loads(fh.read(2**20))  # a saved dataset's own small record; cap a foreign one
    except (OSError, ValueError):
        return None
    name = record.get("name") if isinstance(record, dict) else None
    # The record must describe this very folder, so a stray dataset.json elsewhere changes nothing.
    return name if isinstance(name, str) and name == path.parent.name and locations.NAME.fullmatch(name) else None


def _resolve_demo(given: str, task: str | None, text_column: str | None,
                  label_column: str | None) -> Source:
    name = given[len("demo:"):].strip()
    try:
        spec = demos.get_demo(name)
        path = Path(demos.demo_path(name))
    except LookupError:
        raise DataError(f"There is no demo called '{name}'; check the name after 'demo:'.") from None
    return Source(given, path, getattr(spec, "name", name) or name,
                  task or getattr(spec, "task", None),
                  text_column or getattr(spec, "text_column", None),
                  label_column or getattr(spec, "label_column", None))
