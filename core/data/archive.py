"""Safe, read-only access to image ZIP archives.

Nothing is ever extracted to disk: `check_zip` vets the central directory (names, sizes, ratios,
entry count) before a single byte is decompressed, and members are read into memory with a cap,
so a hostile upload can neither write outside a folder nor fill the disk or memory.
"""

from __future__ import annotations

import os
import re
import stat
import threading
import zipfile
from pathlib import Path, PurePosixPath

from core.data.limits import DataLimits
from core.data.messages import fmt_bytes
from core.errors import ArchiveTooLargeError, CorruptImageError, DataError, UnsafeArchiveError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
ZIP_PREFIX = "zip://"
ZIP_SEPARATOR = "::"

# A member this small cannot amplify into anything dangerous, whatever its ratio; without this
# floor a blank BMP or a few bytes of padding would trip the ratio check on honest archives.
_RATIO_FLOOR_BYTES = 1 * 2**20
_DRIVE = re.compile(r"^[A-Za-z]:")
_HANDLE_CACHE_SIZE = 16


def is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def is_ignored_name(name: str) -> bool:
    """macOS resource forks and dotfiles (.DS_Store, ._cat.png) are archive noise, not data."""
    parts = [p for p in name.split("/") if p not in ("", ".")]  # "./cat/1.png" is not hidden
    return any(p == "__MACOSX" or p.startswith(".") for p in parts)


def unsafe_reason(info: zipfile.ZipInfo) -> str | None:
    """Why this entry could escape an extraction folder or point elsewhere, or None if it is safe."""
    name = info.filename
    if "\\" in name:
        return "contains a backslash"
    if "\x00" in name:
        return "contains a NUL character"
    if name.startswith("/"):
        return "is an absolute path"
    if _DRIVE.match(name):
        return "starts with a drive letter"
    if ".." in PurePosixPath(name).parts:
        return "climbs out of the archive with '..'"
    # The high 16 bits of external_attr hold the Unix mode when the ZIP was made on Unix.
    if stat.S_ISLNK(info.external_attr >> 16):
        return "is a symbolic link"
    return None


def check_zip(path: str | os.PathLike[str], limits: DataLimits) -> list[zipfile.ZipInfo]:
    """Vet a ZIP's central directory and return its image entries (safe, not ignored, not dirs).

    Raises UnsafeArchiveError for entries that could escape a folder, ArchiveTooLargeError for
    too many entries, implausible sizes or compression ratios, and DataError for an unreadable
    or encrypted archive. Non-image files are left out of the result; the caller decides whether
    to mention them.
    """
    path = Path(path)
    infos = _read_central_directory(path)
    if len(infos) > limits.max_archive_entries:
        raise ArchiveTooLargeError(
            f"'{path.name}' has {len(infos):,} entries, more than the limit of "
            f"{limits.max_archive_entries:,}; split the dataset or raise max_archive_entries.")
    for info in infos:
        reason = unsafe_reason(info)
        if reason:
            raise UnsafeArchiveError(
                f"ZIP entry '{info.filename}' in '{path.name}' {reason}; re-create the archive "
                f"with plain relative paths such as cat/1.png.")
    files = [i for i in infos if not i.is_dir() and not is_ignored_name(i.filename)]
    _check_sizes(path, files, limits)
    _check_duplicates(path, files)
    for info in files:
        if info.flag_bits & 0x1:
            raise DataError(f"ZIP entry '{info.filename}' in '{path.name}' is password-protected; "
                            f"re-create the archive without a password.")
    return [i for i in files if is_image_name(i.filename)]


def _read_central_directory(path: Path) -> list[zipfile.ZipInfo]:
    try:
        with zipfile.ZipFile(path) as zf:
            return zf.infolist()
    except zipfile.BadZipFile as exc:
        raise DataError(f"'{path.name}' is not a readable ZIP archive ({exc}); re-create it with "
                        f"your system's 'Compress' or 'zip' tool.") from None
    except OSError as exc:
        raise DataError(f"Cannot read '{path.name}': {exc.strerror or exc}.") from None


def _check_sizes(path: Path, files: list[zipfile.ZipInfo], limits: DataLimits) -> None:
    total = sum(i.file_size for i in files)
    if total > limits.max_archive_bytes:
        raise ArchiveTooLargeError(
            f"'{path.name}' would unpack to {fmt_bytes(total)}, more than the limit of "
            f"{fmt_bytes(limits.max_archive_bytes)}; use fewer or smaller images.")
    for info in files:
        if info.file_size > limits.max_file_bytes:
            raise ArchiveTooLargeError(
                f"ZIP entry '{info.filename}' in '{path.name}' unpacks to "
                f"{fmt_bytes(info.file_size)}, more than the per-file limit of "
                f"{fmt_bytes(limits.max_file_bytes)}; shrink or remove it.")
        if info.file_size > _RATIO_FLOOR_BYTES and \
                info.file_size > limits.max_archive_ratio * max(info.compress_size, 1):
            ratio = info.file_size / max(info.compress_size, 1)
            raise ArchiveTooLargeError(
                f"ZIP entry '{info.filename}' in '{path.name}' is compressed {ratio:,.0f}:1, above "
                f"the limit of {limits.max_archive_ratio:g}:1 (a possible ZIP bomb); remove it.")
    packed = sum(i.compress_size for i in files)
    if total > _RATIO_FLOOR_BYTES and total > limits.max_archive_ratio * max(packed, 1):
        raise ArchiveTooLargeError(
            f"'{path.name}' is compressed {total / max(packed, 1):,.0f}:1 overall, above the limit "
            f"of {limits.max_archive_ratio:g}:1 (a possible ZIP bomb); re-create the archive.")


def _check_duplicates(path: Path, files: list[zipfile.ZipInfo]) -> None:
    # Two members with one name make "which image is this?" ambiguous; ZipFile silently picks one.
    seen: set[str] = set()
    for info in files:
        if info.filename in seen:
            raise UnsafeArchiveError(f"ZIP entry '{info.filename}' appears twice in '{path.name}'; "
                                     f"re-create the archive so every name is unique.")
        seen.add(info.filename)


def read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo | str, max_bytes: int,
                archive_name: str | None = None) -> bytes:
    """Read one member into memory, refusing to produce more than `max_bytes`.

    ZipFile already stops at the declared size, but the declared size is attacker-controlled,
    so the cap is enforced on what actually comes out of the decompressor.
    """
    name = info.filename if isinstance(info, zipfile.ZipInfo) else info
    where = f"ZIP entry '{name}' in '{archive_name or Path(str(zf.filename)).name}'"
    try:
        with zf.open(info) as fh:
            data = fh.read(max_bytes + 1)
    except KeyError:
        raise DataError(f"{where} does not exist; the archive changed since it was loaded, "
                        f"so load the dataset again.") from None
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, RuntimeError) as exc:
        # zlib errors, bad CRCs and truncated archives all mean the member's bytes are damaged.
        raise CorruptImageError(f"{where} is damaged ({exc}); re-create the archive.") from None
    if len(data) > max_bytes:
        raise ArchiveTooLargeError(f"{where} is larger than the per-file limit of "
                                   f"{fmt_bytes(max_bytes)}; shrink or remove it.")
    return data


# --- lazy image references -------------------------------------------------------------------

def make_ref(zip_path: str | os.PathLike[str], member: str) -> str:
    return f"{ZIP_PREFIX}{Path(zip_path).resolve()}{ZIP_SEPARATOR}{member}"


def is_zip_ref(ref: str) -> bool:
    return isinstance(ref, str) and ref.startswith(ZIP_PREFIX)


def parse_ref(ref: str) -> tuple[Path, str]:
    """Split `zip://<abs zip path>::<member>`; the first '::' whose left side is a file wins,
    so a member name containing '::' still resolves."""
    body = ref[len(ZIP_PREFIX):]
    start = 0
    first: tuple[Path, str] | None = None
    while (i := body.find(ZIP_SEPARATOR, start)) >= 0:
        candidate = (Path(body[:i]), body[i + len(ZIP_SEPARATOR):])
        first = first or candidate
        if candidate[0].is_file():
            return candidate
        start = i + 1
    if first is None:
        raise DataError(f"'{ref}' is not a valid image reference; expected "
                        f"zip://<archive path>::<entry name>.")
    return first


_handles: dict[tuple[int, str, int, int], zipfile.ZipFile] = {}
_handles_lock = threading.Lock()


def open_cached(zip_path: Path) -> zipfile.ZipFile:
    """An open ZipFile for this process, reused across reads.

    The key includes the pid (a forked DataLoader worker must not share its parent's file offset)
    and the file's mtime and size (a replaced archive must not be read through a stale index).
    """
    try:
        st = zip_path.stat()
    except OSError:
        raise DataError(f"The archive '{zip_path.name}' no longer exists; load the dataset again.") from None
    key = (os.getpid(), str(zip_path), st.st_mtime_ns, st.st_size)
    with _handles_lock:
        zf = _handles.get(key)
        if zf is None:
            if len(_handles) >= _HANDLE_CACHE_SIZE:
                _handles.pop(next(iter(_handles))).close()
            try:
                zf = zipfile.ZipFile(zip_path)
            except (zipfile.BadZipFile, OSError) as exc:
                raise DataError(f"'{zip_path.name}' is not a readable ZIP archive ({exc}).") from None
            _handles[key] = zf
        return zf


def close_cached() -> None:
    """Close every cached handle (tests, or before deleting an archive on Windows)."""
    with _handles_lock:
        for zf in _handles.values():
            zf.close()
        _handles.clear()

