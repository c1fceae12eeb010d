"""Tables leaving tunescope (predictions as CSV or Parquet): text cells that a spreadsheet would run
as a formula (starting with = + - @, tab or carriage return) get a leading quote."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from core.errors import ConfigError

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise_cell(value: Any) -> Any:
    """A text cell that a spreadsheet would run as a formula gets a leading quote; numbers stay."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def safe_table(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy with every text cell and column name neutralised."""
    out = frame.copy()
    out.columns = [neutralise_cell(str(c)) for c in out.columns]
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(neutralise_cell)
    return out


def safe_csv(frame: pd.DataFrame) -> bytes:
    return safe_table(frame).to_csv(index=False).encode("utf-8")


def write_table(frame: pd.DataFrame, path: Path) -> Path:
    """CSV or Parquet by the file's suffix, neutralised either way (Parquet files get opened in
    spreadsheets too)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise ConfigError(f"Write predictions as .csv or .parquet, not {path.name!r}.")
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        path.write_bytes(safe_csv(frame))
    else:
        safe_table(frame).to_parquet(path, index=False)
    return path
