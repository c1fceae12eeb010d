"""How data messages name things: sizes, rows and entries, lists of names.

Every DataError and warning in core/data names the file, the row as a spreadsheet shows it (header
is row 1) or the ZIP entry, and the fix; these helpers keep that wording alike across the stages.
The bottom of core/data: it imports nothing from the package.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def fmt_bytes(n: float) -> str:
    """Human-readable size for messages: '1,234 bytes', '3.5 MiB'."""
    if n < 1024:
        return f"{n:,.0f} bytes"
    for unit in ("KiB", "MiB", "GiB"):
        n /= 1024
        if n < 1024 or unit == "GiB":
            break
    return f"{n:,.1f} {unit}"


PLURAL = {"row": "rows", "line": "lines", "record": "records", "entry": "entries", "file": "files"}


def fmt_loc(unit: str, loc: Any) -> str:
    return f"{unit} '{loc}'" if isinstance(loc, str) else f"{unit} {loc}"


def fmt_locs(unit: str, locs: Sequence[Any], limit: int = 5) -> str:
    shown = ", ".join(f"'{x}'" if isinstance(x, str) else str(x) for x in locs[:limit])
    more = f" and {len(locs) - limit} more" if len(locs) > limit else ""
    return f"{unit if len(locs) == 1 else PLURAL[unit]} {shown}{more}"


def fix_rows(unit: str, n: int) -> str:
    return f"fill it in or delete that {unit}" if n == 1 else f"fill them in or delete those {PLURAL[unit]}"


def fmt_names(names: Sequence[Any], limit: int = 12, last: str = ", ") -> str:
    quoted = [f"'{n}'" for n in names[:limit]]
    shown = ", ".join(quoted[:-1]) + last + quoted[-1] if len(quoted) > 1 else "".join(quoted)
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
