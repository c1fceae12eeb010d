"""The run store: one directory per run; the files are the truth, written atomically.

Layout of `<runs_dir>/<run_id>/`:
  config.json      the RunConfig plus resolved values (learning rate, model source)
  status.json      state: running | succeeded | failed | cancelled, with a message
  metrics.jsonl    one JSON object per logged step and per epoch
  summary.json     final figures (written by core.train.pipeline.train)
  model/           tunescope_model.json + model.safetensors + tokenizer/ or image_spec.json, and
                   manifest.json: the SHA-256 of every other file, checked before the model is loaded
  predictions.parquet  one row per test example with class probabilities
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import DiskFullError, ModelIntegrityError, RunError

if TYPE_CHECKING:  # pandas costs a second to import; the CLI and the job store need none of it
    import pandas as pd

STATES = ("queued", "running", "succeeded", "failed", "cancelled", "interrupted")
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def check_run_id(run_id: str) -> str:
    """A run id is one plain path component: it can never point outside the runs directory."""
    if not RUN_ID.fullmatch(run_id) or ".." in run_id:
        raise RunError(f"Run id {run_id!r} is not allowed; use letters, digits, '.', '_' and '-' "
                       "(up to 128 characters, starting with a letter or digit).")
    return run_id


def tunescope_home() -> Path:
    return Path(os.environ.get("TUNESCOPE_HOME") or Path.home() / ".tunescope").expanduser()


def default_runs_dir() -> Path:
    return tunescope_home() / "runs"


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


MB = 1 << 20
_FULL_ERRNOS = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))


def free_bytes(path: Path) -> int:
    """Free space for this user on the disk that holds `path` (or would hold it: it may not exist yet)."""
    p = Path(path)
    while not p.exists() and p != p.parent:
        p = p.parent
    return shutil.disk_usage(p).free


def _mb(n: float) -> str:
    return f"{n / MB:.1f}" if n < 10 * MB else f"{n / MB:.0f}"


def disk_full_error(directory: Path, need: int, free: int | None = None) -> DiskFullError:
    if free is None:
        try:
            free = free_bytes(directory)
        except OSError:
            free = 0
    exc = DiskFullError(f"not enough disk space in {directory}: needs ~{_mb(need)} MB, {_mb(free)} MB free; free "
                        "some space (e.g. delete old runs) and start the run again.")
    exc.errno = errno.ENOSPC
    return exc


def ensure_free_space(directory: Path, need: int) -> None:
    """Refuse a write of about `need` bytes that cannot fit, before anything of it is written."""
    free = free_bytes(directory)
    if free < need:
        raise disk_full_error(directory, need, free)


def _ran_out_of_space(exc: BaseException, directory: Path, still_needed: int) -> bool:
    """Whether a failed write failed for lack of space. torch and safetensors report a full disk in
    their own words ("unexpected pos ...") without the errno, so the disk is asked as well."""
    seen: BaseException | None = exc
    for _ in range(8):  # the cause/context chain, not a cycle
        if seen is None:
            break
        if isinstance(seen, OSError) and seen.errno in _FULL_ERRNOS or "No space left" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    try:
        return free_bytes(directory) < max(still_needed, MB)
    except OSError:
        return False


def _tree_size(path: Path) -> int:
    try:
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    except OSError:
        return 0


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Readers see the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as exc:
        if exc.errno in _FULL_ERRNOS:
            raise disk_full_error(path.parent, len(data)) from exc
        raise
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, DiskFullError) and exc.errno in _FULL_ERRNOS:
            raise disk_full_error(path.parent, len(data)) from exc
        raise
    _fsync_dir(path.parent)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n").encode())


def _json_default(o: Any) -> Any:
    if hasattr(o, "item"):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def atomic_dir(final: Path, write: Callable[[Path], None], need_bytes: int | None = None) -> None:
    """Build a directory under a temporary name next to `final`, then rename it into place.

    With `need_bytes` (an estimate of what `write` puts there), a write that cannot fit is refused
    before it starts, and one that runs out of space on the way is a DiskFullError rather than the
    writer's own words; either way nothing of it is left behind."""
    if need_bytes is not None:
        ensure_free_space(final.parent, need_bytes)
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    except OSError as exc:
        if need_bytes is not None and exc.errno in _FULL_ERRNOS:
            raise disk_full_error(final.parent, need_bytes) from exc
        raise
    try:
        write(tmp)
        for p in tmp.rglob("*"):
            if p.is_file():
                with open(p, "rb") as f:
                    os.fsync(f.fileno())
        if final.exists():
            old = final.with_name(f".{final.name}.old-{secrets.token_hex(3)}")
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException as exc:
        full = (need_bytes is not None and isinstance(exc, Exception) and not isinstance(exc, DiskFullError)
                and _ran_out_of_space(exc, final.parent, need_bytes - _tree_size(tmp)))
        if full:
            try:
                free = free_bytes(final.parent)  # as it was when the write gave up
            except OSError:
                free = 0
        shutil.rmtree(tmp, ignore_errors=True)
        if full:
            raise disk_full_error(final.parent, need_bytes, free) from exc  # type: ignore[arg-type]
        raise
    _fsync_dir(final.parent)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


MODEL_MANIFEST = "manifest.json"
# (path, size, mtime_ns) -> SHA-256 of files hashed in this process: an unchanged file is not read again.
_HASHED: dict[tuple[str, int, int], str] = {}


def write_model_manifest(model_dir: Path) -> None:
    """Record the SHA-256 of every file of a saved model (as checkpoints do), inside the model folder
    so it is built and renamed into place together with the files it describes."""
    files = {p.relative_to(model_dir).as_posix(): sha256_file(p)
             for p in sorted(model_dir.rglob("*")) if p.is_file() and p.name != MODEL_MANIFEST}
    (model_dir / MODEL_MANIFEST).write_text(json.dumps({"algorithm": "sha256", "files": files}, indent=1))


def verify_model(run: Run) -> bool:
    """Check a run's model files against the hashes recorded at save. True when they match, False for
    a run saved before hashes were recorded (it loads unchecked); ModelIntegrityError naming the run
    and the file otherwise. A file is hashed once per (size, mtime) in a process."""
    model_dir = run.model_dir
    path = model_dir / MODEL_MANIFEST
    if not path.is_file():
        if run.summary().get("model_manifest"):  # it had one: losing it must not switch the check off
            raise ModelIntegrityError(f"Run {run.id}: model/{MODEL_MANIFEST} is missing, so the model cannot be "
                                      "checked; retrain the run or restore the model folder from a backup.")
        return False
    try:
        files = json.loads(path.read_bytes().decode("utf-8"))["files"]
        if not isinstance(files, dict) or not files:
            raise ValueError("no files listed")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelIntegrityError(f"Run {run.id}: model/{MODEL_MANIFEST} is damaged ({exc}), so the model cannot "
                                  "be checked; retrain the run or restore the model folder from a backup.") from exc
    for name, digest in files.items():
        target = model_dir / name
        if ".." in Path(name).parts or Path(name).is_absolute():
            raise ModelIntegrityError(f"Run {run.id}: model/{MODEL_MANIFEST} names a file outside the model "
                                      f"folder ({name!r}); restore the model folder from a backup.")
        try:
            st = target.stat()
        except OSError:
            raise ModelIntegrityError(f"Run {run.id}: model/{name} is missing; retrain the run or restore the "
                                      "model folder from a backup.") from None
        key = (str(target.resolve()), st.st_size, st.st_mtime_ns)
        actual = _HASHED.get(key)
        if actual is None:
            actual = _HASHED[key] = sha256_file(target)
        if actual != digest:
            raise ModelIntegrityError(f"Run {run.id}: model/{name} is damaged (its SHA-256 differs from the one "
                                      "recorded when the model was saved), so its predictions cannot be trusted; "
                                      "retrain the run or restore the file from a backup.")
    return True


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:24] or "run"


def new_run_id(*parts: str) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    middle = "-".join(_slug(p) for p in parts if p)
    return f"{stamp}-{middle}-{secrets.token_hex(3)}" if middle else f"{stamp}-{secrets.token_hex(3)}"


class Run:
    """Read access to one run directory."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.id = self.path.name

    def _json(self, name: str) -> dict[str, Any]:
        """A run file's JSON object ({} when the file does not exist yet). Anything else (not UTF-8,
        not JSON, `null`, a list) is a RunError naming the run and the file, never a crash later on."""
        p = self.path / name
        if not p.is_file():
            return {}
        try:
            raw = p.read_bytes()
        except OSError as exc:
            raise RunError(f"Run {self.id}: {name} cannot be read ({exc.strerror or exc}); check the "
                           f"file's permissions in {self.path}.") from exc
        try:
            obj = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise RunError(f"Run {self.id}: {name} is damaged (not UTF-8 text at byte {exc.start}); restore it "
                           "from a backup or delete the run.") from exc
        except json.JSONDecodeError as exc:
            raise RunError(f"Run {self.id}: {name} is damaged (not valid JSON: {exc.msg} at line {exc.lineno} "
                           f"column {exc.colno}); the run may have been interrupted, or restore the file from a "
                           "backup.") from exc
        if not isinstance(obj, dict):
            raise RunError(f"Run {self.id}: {name} is damaged (it holds {_json_kind(obj)} instead of a JSON "
                           "object); restore it from a backup or delete the run.")
        return obj

    def config(self) -> dict[str, Any]:
        return self._json("config.json")

    def summary(self) -> dict[str, Any]:
        return self._json("summary.json")

    def status(self) -> dict[str, Any]:
        return self._json("status.json")

    def metrics(self, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        """Rows appended since byte `offset`, and the new offset (cheap to poll)."""
        p = self.path / "metrics.jsonl"
        if not p.is_file():
            return [], offset
        with open(p, "rb") as f:
            f.seek(offset)
            chunk = f.read()
        end = chunk.rfind(b"\n") + 1  # a half-written last line waits for the next poll
        rows = [json.loads(line) for line in chunk[:end].splitlines() if line.strip()]
        return rows, offset + end

    def predictions(self) -> pd.DataFrame:
        p = self.path / "predictions.parquet"
        if not p.is_file():
            raise RunError(f"Run {self.id} has no test predictions (it may not have finished).")
        import pandas as pd

        return pd.read_parquet(p)

    @property
    def model_dir(self) -> Path:
        return self.path / "model"


class RunWriter(Run):
    """Write access; created only once the inputs have been validated."""

    @classmethod
    def create(cls, runs_dir: Path, run_id: str) -> RunWriter:
        path = Path(runs_dir) / check_run_id(run_id)
        Path(runs_dir).mkdir(parents=True, exist_ok=True)
        try:
            path.mkdir(mode=0o700)  # private to the server account: other people's runs are not files to browse
        except FileExistsError:
            raise RunError(f"Run {run_id!r} already exists in {runs_dir}; choose another run id "
                           "(or resume it).") from None
        return cls(path)

    def write_json(self, name: str, obj: Any) -> None:
        atomic_write_json(self.path / name, obj)

    def set_status(self, state: str, message: str = "", **extra: Any) -> None:
        assert state in STATES, state
        self.write_json("status.json", {"state": state, "message": message, "updated": time.time(), **extra})

    def append_metrics(self, row: dict[str, Any]) -> None:
        line = json.dumps(row, default=_json_default) + "\n"
        try:
            with open(self.path / "metrics.jsonl", "a", encoding="utf-8") as f:
                f.write(line)
                f.flush()
        except OSError as exc:
            if exc.errno in _FULL_ERRNOS:
                raise disk_full_error(self.path, len(line)) from exc
            raise

    def write_predictions(self, df: pd.DataFrame) -> None:
        buf = io.BytesIO()
        df.to_parquet(buf, index=False)
        atomic_write_bytes(self.path / "predictions.parquet", buf.getvalue())


def resolve_run(run: str | Path, runs_dir: Path | None = None) -> Run:
    """Accept a run directory or a run id (looked up in `runs_dir`)."""
    p = Path(run).expanduser()
    if not p.is_dir() and runs_dir is not None and RUN_ID.fullmatch(str(run)) \
            and (Path(runs_dir) / str(run)).is_dir():
        p = Path(runs_dir) / str(run)
    if not p.is_dir():
        raise RunError(f"Run {str(run)!r} not found: give a run directory (the last line `tunescope train` "
                       "printed) or a run id from `tunescope runs`.")
    if not (p / "config.json").is_file():
        raise RunError(f"{p} is not a tunescope run directory (no config.json).")
    return Run(p)


def list_runs(runs_dir: Path | None = None) -> list[dict[str, Any]]:
    """One flat row per run, newest first, for tables. A run with a damaged file has state "damaged"
    and says why in `reason` (None for every other run)."""
    root = Path(runs_dir) if runs_dir else default_runs_dir()
    if not root.is_dir():
        return []
    rows = []
    for p in sorted(root.iterdir(), reverse=True):
        if not p.is_dir() or p.name.startswith(".") or not (p / "config.json").is_file():
            continue
        run = Run(p)
        # Each file on its own: one damaged file marks this run as damaged, with what could still be
        # read from the others, and never hides the other runs.
        reasons: list[str] = []
        files: dict[str, dict[str, Any]] = {}
        for name, read in (("summary", run.summary), ("status", run.status), ("config", run.config)):
            try:
                files[name] = read()
            except RunError as exc:
                files[name] = {}
                reasons.append(str(exc))
        summary, status, config = files["summary"], files["status"], files["config"]
        test = _dict(summary.get("test"))
        train = _dict(config.get("train"))
        rows.append({
            "run_id": p.name, "state": "damaged" if reasons else status.get("state", "unknown"),
            "task": summary.get("task") or config.get("task"),
            "dataset": _dict(summary.get("dataset")).get("name") or config.get("dataset_name"),
            "model": summary.get("model") or config.get("model_name"),
            "method": summary.get("method") or train.get("method"),
            "seed": summary.get("seed", train.get("seed")),
            "accuracy": test.get("accuracy"), "macro_f1": test.get("macro_f1"),
            "train_seconds": summary.get("train_seconds"), "path": str(p),
            "reason": " ".join(reasons) or None,
        })
    return rows


def _dict(value: Any) -> dict[str, Any]:
    """A nested section of a run file, or {} when a hand-edited file has something else there."""
    return value if isinstance(value, dict) else {}


def _json_kind(obj: Any) -> str:
    if obj is None:
        return "null"
    if isinstance(obj, bool):
        return "true/false"
    return {list: "a list", str: "a string"}.get(type(obj), "a number")
