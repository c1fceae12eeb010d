"""Saved datasets: uploads a user chose to keep, validated once and reusable by name.

An upload first lands in a private staging folder (one per browser); it becomes visible to
everyone only through `save_dataset`, which reserves the name (an exclusive mkdir), validates the file
with the same loader training uses, and writes `dataset.json` last, so a folder without it is a save in
progress that nobody lists. A file that fails validation is never stored, and saving under a taken name
(or one being saved) is refused rather than overwriting what is there, except that saving the very same
file with the same columns again, by the same owner, returns the first save (a double click is not an error).
Who may see a saved dataset is in its owner record (`access.json`, see core.access); `core.workspace`
applies the rule, the functions here do not.

Layout of `$TUNESCOPE_HOME/datasets/<name>/`: the file itself (its original extension kept, so the
loader recognises the format), `access.json` (owner, shared) and `dataset.json` (task, labels, sizes,
warnings, when saved).
"""

from __future__ import annotations

import filecmp
import json
import os
import re
import secrets
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.access import LOCAL_OWNER, Access, make_private_dir, read_access, write_access
from core.data.load import load_dataset
from core.data.locations import META, NAME, SESSION_ID, datasets_dir, uploads_dir
from core.errors import DataError
from core.runs import atomic_write_bytes

SUFFIXES = (".csv", ".tsv", ".txt", ".jsonl", ".json", ".parquet", ".zip",
            ".csv.gz", ".tsv.gz", ".jsonl.gz", ".csv.bz2", ".csv.xz")


@dataclass(frozen=True)
class SavedDataset:
    name: str
    path: str  # the data file; give it to `--data` or DataConfig.source
    task: str
    labels: list[str]
    sizes: dict[str, int]
    rows: int
    original_name: str
    saved: float
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def suffix_of(filename: str) -> str:
    """The format suffix of an uploaded file name ('.csv', '.csv.gz', ...), or a DataError."""
    low = filename.lower()
    for s in sorted(SUFFIXES, key=len, reverse=True):
        if low.endswith(s):
            return s
    raise DataError(f"{filename!r} is not a supported file type; upload a text table "
                    "(.csv, .tsv, .jsonl, .json, .parquet) or an image .zip laid out as <label>/<image>.")


def slug(text: str) -> str:
    """A dataset name derived from free text (e.g. the upload's file name)."""
    s = re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-_")[:48]
    return s if s and NAME.fullmatch(s) else f"dataset-{secrets.token_hex(2)}"


def check_name(name: str) -> str:
    if not NAME.fullmatch(name or ""):
        raise DataError(f"Dataset name {name!r} is not allowed; use 1-48 lower-case letters, digits, '-' "
                        "or '_', starting with a letter or digit.")
    return name


def stage_upload(session_id: str, filename: str, data: bytes) -> Path:
    """Write an upload to this session's private staging folder and return its path.

    Staged files are scratch: a new upload from the same session replaces the previous one."""
    suffix = suffix_of(filename)
    if not SESSION_ID.fullmatch(session_id):
        raise DataError("Invalid upload session id.")
    if not data:
        raise DataError(f"{filename!r} is empty (0 bytes); upload a file with a header row and examples.")
    _forget_stale_uploads()
    folder = uploads_dir() / session_id
    if folder.exists():
        shutil.rmtree(folder, ignore_errors=True)
    make_private_dir(uploads_dir())
    make_private_dir(folder)  # 0700: other accounts on the machine must not read a student's upload
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(filename).name[: -len(suffix)])[:80].strip("._") or "upload"
    path = folder / f"{stem}{suffix}"  # the user's own file name, so messages name the file they know
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return path


STAGE_TTL_S = 24 * 3600


def _forget_stale_uploads(now: float | None = None) -> None:
    """Staged uploads nobody saved are scratch: drop those untouched for a day (sessions end silently)."""
    forget_stale_folders(uploads_dir(), now)


def forget_stale_folders(root: Path, now: float | None = None) -> None:
    """Remove the per-session folders under `root` untouched for STAGE_TTL_S."""
    now = now or time.time()
    if not root.is_dir():
        return
    for folder in root.iterdir():
        try:
            if folder.is_dir() and now - folder.stat().st_mtime > STAGE_TTL_S:
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            continue


def clear_stage(session_id: str) -> None:
    if SESSION_ID.fullmatch(session_id):
        shutil.rmtree(uploads_dir() / session_id, ignore_errors=True)


def save_dataset(name: str, source: str | Path, original_name: str | None = None,
                 text_column: str | None = None, label_column: str | None = None,
                 owner: str = LOCAL_OWNER) -> SavedDataset:
    """Validate `source` (a staged upload or any local file) and keep a copy under `name`.

    The name is reserved first, atomically, so of two saves of one name exactly one goes ahead and
    the other is refused at once. Raises the loader's DataError (naming the row or entry) and stores
    nothing, freeing the name again, when the data is invalid."""
    check_name(name)
    source = Path(source)
    original = original_name or source.name
    suffix = suffix_of(original)
    try:
        final = _reserve(name)
    except DataError:
        # The owner first: someone else's file is never compared with this one (its timing would tell).
        same = (already_saved(name, source, text_column, label_column)
                if read_access(datasets_dir() / name).owner == owner else None)
        if same is None:
            raise
        return same
    try:
        data = load_dataset(source, text_column=text_column, label_column=label_column)
        if data.task == "image" and suffix != ".zip":
            # Only the file is kept, not the images its paths name, so the saved copy could never load.
            raise DataError(f"{original!r} is a table of image paths, and a saved dataset keeps only that "
                            "file, not the images; upload a ZIP of <label>/<image> folders instead "
                            "(nothing was stored).")
        meta = SavedDataset(name=name, path=str(final / f"data{suffix}"), task=data.task, labels=data.labels,
                            sizes=data.sizes(), rows=sum(data.sizes().values()), original_name=original,
                            saved=time.time(), warnings=list(data.warnings))
        record = meta.to_dict()
        record["columns"] = {"text": text_column, "label": label_column}
        _copy_durably(source, final / f"data{suffix}")
        write_access(final, Access(owner=owner))
        # The record goes last: until it exists the folder is only a reservation, which nobody lists.
        atomic_write_bytes(final / META, json.dumps(record, indent=1).encode())
    except BaseException:
        shutil.rmtree(final, ignore_errors=True)  # our own reservation: nothing stored, the name free
        raise
    return meta


def already_saved(name: str, source: str | Path, text_column: str | None = None,
                  label_column: str | None = None) -> SavedDataset | None:
    """The saved dataset `name` when it holds exactly this file read with these columns, else None."""
    folder = datasets_dir() / check_name(name)
    found = _read(folder)
    if found is None or columns_of(name) != {"text": text_column, "label": label_column}:
        return None
    try:
        same = filecmp.cmp(source, found.path, shallow=False)
    except OSError:
        return None
    return found if same else None


RESERVATION_TTL_S = STAGE_TTL_S  # a save takes minutes at most; a day-old reservation is a crashed one


def _reserve(name: str) -> Path:
    """Create `datasets/<name>/` exclusively: the reservation two concurrent saves race for."""
    root = datasets_dir()
    root.mkdir(parents=True, exist_ok=True)
    final = root / name
    for _ in range(2):
        try:
            final.mkdir(mode=0o700)  # private to the server account; atomic create-exclusive, also between processes
            return final
        except FileExistsError:
            if not _reclaim_abandoned(final):
                break
    raise DataError(f"A dataset named {name!r} exists already (or is being saved); pick another name "
                    "(nothing was changed).")


def _reclaim_abandoned(folder: Path, now: float | None = None) -> bool:
    """Free a reservation left by a save that died before writing its record (and only that)."""
    try:
        if (folder / META).exists() or (now or time.time()) - folder.stat().st_mtime < RESERVATION_TTL_S:
            return False
        # Renaming first means two reclaimers cannot both take it: the second rename fails.
        trash = folder.with_name(f".abandoned-{folder.name}-{secrets.token_hex(3)}")
        folder.rename(trash)
    except OSError:
        return False
    shutil.rmtree(trash, ignore_errors=True)
    return True


def _copy_durably(source: Path, target: Path) -> None:
    """Copy under a hidden name, flush it to disk, then rename it into place."""
    tmp = target.with_name(f".{target.name}.partial")
    shutil.copyfile(source, tmp)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, target)


def _read(folder: Path) -> SavedDataset | None:
    try:
        d = json.loads((folder / META).read_text())
        return SavedDataset(**{k: d[k] for k in SavedDataset.__dataclass_fields__ if k in d})
    except (OSError, ValueError, TypeError):
        return None  # half-written or foreign folder: not listed


def list_datasets() -> list[SavedDataset]:
    root = datasets_dir()
    if not root.is_dir():
        return []
    found = [_read(p) for p in sorted(root.iterdir()) if p.is_dir() and NAME.fullmatch(p.name)]
    return sorted((d for d in found if d is not None), key=lambda d: -d.saved)


def get_dataset(name: str) -> SavedDataset:
    check_name(name)
    found = _read(datasets_dir() / name)
    if found is None:
        raise DataError(f"No saved dataset {name!r}; saved datasets are listed on the Data page "
                        "(or under $TUNESCOPE_HOME/datasets).")
    return found


def columns_of(name: str) -> dict[str, str | None]:
    """The text/label columns chosen when the dataset was saved (None: detected automatically)."""
    try:
        d = json.loads((datasets_dir() / check_name(name) / META).read_text())
    except (OSError, ValueError):
        return {"text": None, "label": None}
    cols = d.get("columns") or {}
    return {"text": cols.get("text"), "label": cols.get("label")}


def delete_dataset(name: str) -> None:
    folder = datasets_dir() / check_name(name)
    if not folder.is_dir() or not (folder / META).is_file():  # a save still in progress is not deletable
        raise DataError(f"No saved dataset {name!r}.")
    trash = folder.with_name(f".deleted-{name}-{secrets.token_hex(3)}")
    folder.rename(trash)  # atomic: readers see the dataset or nothing
    shutil.rmtree(trash, ignore_errors=True)
