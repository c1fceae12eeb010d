"""Reading a table file: its format, its bytes (capped, decompressed), its text encoding, and its
rows as a `Table` of columns (CSV/TSV/TXT, JSON lines, JSON, Parquet).

Nothing here knows what a column means; `core.data.columns` decides that. Every read is bounded
by `DataLimits` before the data become Python objects.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import json
import lzma
import re
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.data import archive
from core.data.limits import DataLimits, decoded_too_large, too_many_cells, too_many_columns, too_many_rows
from core.data.messages import fmt_bytes, fmt_locs
from core.errors import (
    DataError,
    DecodedTooLargeError,
    EmptyFileError,
    EncodingError,
    FileTooLargeError,
    HeaderOnlyError,
    MalformedRowError,
    UnsupportedFormatError,
)

_TABLE_EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".txt": "txt", ".jsonl": "jsonl",
                     ".ndjson": "jsonl", ".json": "json", ".parquet": "parquet", ".pq": "parquet"}
_COMPRESSIONS = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz"}
_SUPPORTED = (".csv, .tsv, .txt, .jsonl, .json, .parquet (text; .gz/.bz2/.xz compressed too), "
              ".zip or a folder of <label>/<image> subfolders (images)")
_HINTS = {".xlsx": "save it as 'CSV UTF-8' from your spreadsheet app",
          ".xls": "save it as 'CSV UTF-8' from your spreadsheet app",
          ".ods": "save it as CSV from your spreadsheet app",
          ".tar": "re-pack it as a .zip", ".tgz": "re-pack it as a .zip", ".7z": "re-pack it as a .zip",
          ".rar": "re-pack it as a .zip"}


def stem(path: Path) -> str:
    name = path.name
    for _ in range(2):  # "reviews.csv.gz" -> "reviews"
        suffix = Path(name).suffix.lower()
        if suffix in _COMPRESSIONS or suffix in _TABLE_EXTENSIONS or suffix == ".zip":
            name = name[: -len(suffix)]
    return name or path.name


def kind_of(path: Path) -> str:
    """'folder', 'zip', or a table format; raises UnsupportedFormatError otherwise."""
    if path.is_dir():
        return "folder"
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".zip":
        return "zip"
    if suffixes and suffixes[-1] in _COMPRESSIONS:
        suffixes = suffixes[:-1]
    ext = suffixes[-1] if suffixes else ""
    if ext in _TABLE_EXTENSIONS:
        if _TABLE_EXTENSIONS[ext] == "parquet" and path.suffix.lower() in _COMPRESSIONS:
            raise UnsupportedFormatError(f"'{path.name}' is a compressed Parquet file; Parquet is "
                                         f"already compressed, so decompress it first.")
        return _TABLE_EXTENSIONS[ext]
    hint = _HINTS.get(ext) or ("zip images into <label>/ folders" if archive.is_image_name(ext)
                               else "convert it to CSV")
    raise UnsupportedFormatError(f"'{path.name}' has an unsupported type ('{ext or 'no extension'}'); "
                                 f"use {_SUPPORTED} — {hint}.")


def read_file_capped(path: Path, limits: DataLimits) -> bytes:
    try:
        size = path.stat().st_size
        if size > limits.max_file_bytes:
            raise FileTooLargeError(
                f"'{path.name}' is {fmt_bytes(size)}, over the limit of "
                f"{fmt_bytes(limits.max_file_bytes)}; use a smaller file (or a sample) "
                f"or raise max_file_bytes.")
        return path.read_bytes()
    except FileNotFoundError:  # the name only: messages never show the server's folders
        raise DataError(f"'{path.name}' does not exist; check the path.") from None
    except IsADirectoryError:
        raise DataError(f"'{path.name}' is a folder, not a file.") from None
    except PermissionError:
        raise DataError(f"'{path.name}' cannot be read (permission denied); check its permissions.") from None


def _read_table_bytes(path: Path, limits: DataLimits) -> bytes:
    data = read_file_capped(path, limits)
    kind = _COMPRESSIONS.get(path.suffix.lower())
    if kind:
        data = _decompress(path, data, kind, limits.max_file_bytes)
    if not data.strip(b" \t\r\n\x00\xef\xbb\xbf\xff\xfe"):
        raise EmptyFileError(f"'{path.name}' is empty; it needs a header row and at least one "
                             f"labelled example.")
    return data


def _decompress(path: Path, data: bytes, kind: str, cap: int) -> bytes:
    """Decompress in memory, stopping one byte past the cap so a bomb cannot fill memory."""
    openers = {"gzip": lambda f: gzip.GzipFile(fileobj=f), "bz2": bz2.BZ2File, "xz": lzma.LZMAFile}
    try:
        with openers[kind](io.BytesIO(data)) as fh:
            out = fh.read(cap + 1)
    except (OSError, EOFError, lzma.LZMAError, zlib.error) as exc:
        raise DataError(f"'{path.name}' is not a readable {kind} file ({exc}); re-compress it or "
                        f"use the uncompressed file.") from None
    if len(out) > cap:
        raise FileTooLargeError(f"'{path.name}' decompresses to more than the limit of "
                                f"{fmt_bytes(cap)}; use a smaller file or raise max_file_bytes.")
    return out


_BOMS = ((b"\x00\x00\xfe\xff", "utf-32-be", "UTF-32"), (b"\xff\xfe\x00\x00", "utf-32-le", "UTF-32"),
         (b"\xef\xbb\xbf", "utf-8", "UTF-8"), (b"\xff\xfe", "utf-16-le", "UTF-16"),
         (b"\xfe\xff", "utf-16-be", "UTF-16"))


def _decode(path: Path, data: bytes) -> tuple[str, list[str]]:
    """Text and warnings: BOM-marked UTF-8/16/32, plain UTF-8, else Windows-1252/Latin-1."""
    for bom, codec, label in _BOMS:
        if data.startswith(bom):
            return _decode_strict(path, data[len(bom):], codec, label), []
    utf16 = _sniff_utf16(data)
    if utf16:
        text = _decode_strict(path, data, utf16, "UTF-16")
        return text, [f"'{path.name}' is UTF-16 without a byte-order mark; it was read as {utf16}."]
    if data.startswith(b"PK\x03\x04"):
        raise EncodingError(f"'{path.name}' is a ZIP or Excel file, not text; save it as "
                            f"'CSV UTF-8' (or rename a ZIP of images to .zip).")
    if b"\x00" in data:
        line = data.count(b"\n", 0, data.index(b"\x00")) + 1
        raise EncodingError(f"'{path.name}' contains binary data (a NUL byte on line {line}), so it "
                            f"is not a text file; save it as UTF-8 text.")
    try:
        return data.decode("utf-8"), []
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
    try:
        text, codec = data.decode("cp1252"), "Windows-1252"
    except UnicodeDecodeError:  # cp1252 leaves five bytes undefined; Latin-1 maps every byte
        text, codec = data.decode("latin-1"), "Latin-1"
    return text, [f"'{path.name}' is not valid UTF-8 (first bad byte on line {line}), so it was "
                  f"read as {codec}; if accented letters look wrong, re-save it as UTF-8."]


def _decode_strict(path: Path, data: bytes, codec: str, label: str) -> str:
    try:
        return data.decode(codec)
    except UnicodeDecodeError as exc:
        raise EncodingError(f"'{path.name}' looks like {label} but byte {exc.start} cannot be "
                            f"decoded ({exc.reason}); re-save it as UTF-8.") from None


def _sniff_utf16(data: bytes) -> str | None:
    """UTF-16 without a BOM: ASCII-heavy text then has a NUL in every other byte."""
    sample = data[:4096]
    if len(sample) < 4 or len(sample) % 2:
        return None
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    half = len(sample) // 2
    if odd > 0.6 * half and even < 0.05 * half:
        return "utf-16-le"
    if even > 0.6 * half and odd < 0.05 * half:
        return "utf-16-be"
    return None


@dataclass
class Table:
    """Column-oriented rows of one file, with how a user finds each row in it."""

    path: Path
    columns: list[str]
    data: dict[str, list[Any]]
    numbers: Sequence[int]  # spreadsheet row (header = 1), JSONL line, or record index
    unit: str  # "row", "line" or "record"
    warnings: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.numbers)

    def column(self, name: str) -> list[Any]:
        return self.data[name]


def read_table(path: Path, kind: str, limits: DataLimits) -> Table:
    if kind == "parquet":
        return _read_parquet(path, limits)
    raw = _read_table_bytes(path, limits)
    if len(raw) > limits.max_decoded_bytes:
        raise decoded_too_large(path, len(raw), limits)
    text, notes = _decode(path, raw)
    del raw
    text = text.lstrip("\ufeff")  # a second BOM left by tools that add one unconditionally
    if not text.strip():
        raise EmptyFileError(f"'{path.name}' is empty; it needs a header row and at least one "
                             f"labelled example.")
    if kind in ("jsonl", "json"):
        _check_json_values(path, text, limits)
        table = _parse_jsonl(path, text, limits) if kind == "jsonl" else _parse_json(path, text, limits)
    else:
        table = _parse_delimited(path, text, _delimiter(kind, text), limits)
    table.warnings[:0] = notes
    return table


# A JSON string literal, in the unrolled form that matches in linear time.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')


def _check_json_values(path: Path, text: str, limits: DataLimits) -> None:
    """Refuse JSON that would parse into more than max_cells Python values, before parsing it.

    Every value but the first in an array or object follows a comma, so commas plus containers
    outside string literals bound the number of values; commas inside texts do not count.
    """
    def bound(t: str) -> int:
        return t.count(",") + t.count("[") + t.count("{") + 1

    # Counting is fast; stripping the strings first (slower) is only needed when the rough count,
    # commas inside texts included, is already over the limit.
    if bound(text) > limits.max_cells and bound(_JSON_STRING.sub("", text)) > limits.max_cells:
        raise DecodedTooLargeError(
            f"'{path.name}' holds more than {limits.max_cells:,} JSON values, the limit (max_cells); "
            f"drop the fields you do not need or use a sample, or raise max_cells.")


_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")


def _lines(text: str) -> Any:
    """The lines of `text` with their line breaks (\\n, \\r\\n or \\r), one at a time: a StringIO would hold a
    second, four-bytes-a-character copy of the whole file, a list one object per line."""
    return (m.group() for m in _LINE.finditer(text))


def _delimiter(kind: str, text: str) -> str:
    if kind == "tsv":
        return "\t"
    # The header rarely contains punctuation of its own, so the most frequent candidate in it
    # is the separator; a comma wins ties because it is the CSV default.
    header = text.split("\n", 1)[0]
    counts = {d: header.count(d) for d in (",", "\t", ";", "|")}
    best = max(counts, key=lambda d: (counts[d], d == ","))
    return best if counts[best] else ","


def _parse_delimited(path: Path, text: str, delimiter: str, limits: DataLimits) -> Table:
    csv.field_size_limit(max(csv.field_size_limit(), len(text)))  # long documents are fine
    reader = csv.reader(_lines(text), delimiter=delimiter)
    try:
        header = next(reader)
    except (StopIteration, csv.Error):
        header = []
    header = [h.strip() for h in header]
    while header and not header[-1]:  # "text,label," from some exporters
        header.pop()
    if not header:
        raise EmptyFileError(f"'{path.name}' has no header row; add one such as 'text,label'.")
    columns = _unique_names(header)
    if len(columns) > limits.max_columns:
        raise too_many_columns(path, len(columns), limits)
    rows, numbers, (interior, first_blank) = _read_rows(path, reader, len(columns), delimiter, limits)
    if not rows:
        raise HeaderOnlyError(f"'{path.name}' has a header ({', '.join(columns)}) but no data rows; "
                              f"add at least one labelled example per class.")
    data = dict(zip(columns, (list(col) for col in zip(*rows, strict=True)), strict=True))
    table = Table(path, columns, data, numbers, "row")
    if interior:
        shown = fmt_locs("row", first_blank) + (f" and {interior - len(first_blank)} more"
                                                if interior > len(first_blank) else "")
        table.warnings.append(f"'{path.name}' has {interior} empty row(s) ({shown}); they were skipped.")
    return table


def _read_rows(path: Path, reader: Any, width: int, delimiter: str, limits: DataLimits
               ) -> tuple[list[list[str]], list[int], tuple[int, list[int]]]:
    """Rows of exactly `width` fields, their spreadsheet row numbers, and the blank rows between data
    rows (how many, and the first few). Blank rows count towards max_rows: a file of nothing but
    line breaks must not get past the limits."""
    rows: list[list[str]] = []
    numbers: list[int] = []
    blanks, interior, first_blank = 0, 0, []
    row_no, last_line = 1, reader.line_num
    try:
        for fields in reader:
            row_no += 1
            first_line, last_line = last_line + 1, reader.line_num
            if row_no - 1 > limits.max_rows:
                raise too_many_rows(path, "row", limits)
            if not any(f.strip() for f in fields):
                blanks += 1
                if len(first_blank) < 5:
                    first_blank.append(row_no)
                continue
            interior = blanks  # blank rows before this data row are inside the table
            if len(fields) != width:
                fields = _fit_row(path, fields, width, row_no, first_line, last_line, delimiter)
            if (len(rows) + 1) * width > limits.max_cells:
                raise too_many_cells(path, len(rows) + 1, width, limits)
            rows.append(fields)
            numbers.append(row_no)
    except csv.Error as exc:
        raise MalformedRowError(f"'{path.name}' row {row_no + 1} cannot be parsed ({exc}); "
                                f"fix the quoting on that row.") from None
    first_blank = [n for n in first_blank if not numbers or n < numbers[-1]]
    return rows, numbers, (interior, first_blank)


def _fit_row(path: Path, fields: list[str], width: int, row_no: int, first_line: int,
             last_line: int, delimiter: str) -> list[str]:
    # Trailing empty fields ("a,b,,") are an exporter quirk, not a broken row.
    if len(fields) > width and not any(f.strip() for f in fields[width:]):
        return fields[:width]
    where = f"row {row_no}" + (f" (line {first_line} in a text editor)" if first_line != row_no else "")
    sep = {"\t": "tab", ",": "comma", ";": "semicolon", "|": "pipe"}[delimiter]
    if last_line - first_line > 1:
        fix = "a double quote on that row probably opens a quoted field that never closes"
    else:
        fix = f"wrap fields that contain a {sep} in double quotes"
    raise MalformedRowError(f"'{path.name}' {where} has {len(fields)} field(s) but the header has "
                            f"{width}; {fix}.")


def _unique_names(names: list[str]) -> list[str]:
    """Blank or repeated header names get suffixes, so a stray extra column cannot hide another."""
    seen: Counter[str] = Counter()
    out = []
    for i, name in enumerate(names):
        base = name or f"column_{i + 1}"
        seen[base] += 1
        out.append(base if seen[base] == 1 else f"{base}.{seen[base] - 1}")
    return out


def _parse_jsonl(path: Path, text: str, limits: DataLimits) -> Table:
    records, numbers = [], []
    # One line at a time (a list of every line would cost an object per line), on \n, \r\n or \r only,
    # not splitlines: U+2028 is valid inside JSON. Blank lines count towards max_rows too.
    for lineno, line in enumerate(_lines(text), 1):
        if lineno > limits.max_rows:
            raise too_many_rows(path, "line", limits)
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise MalformedRowError(f"'{path.name}' line {lineno} is not valid JSON ({exc.msg} at "
                                    f"column {exc.colno}); each line must be one object like "
                                    f'{{"text": "...", "label": "..."}}.') from None
        if not isinstance(obj, dict):
            raise MalformedRowError(f"'{path.name}' line {lineno} is a JSON {type(obj).__name__}, not "
                                    f'an object; each line must look like {{"text": "...", "label": "..."}}.')
        records.append(obj)
        numbers.append(lineno)
    return _records_table(path, records, numbers, "line", limits)


def _parse_json(path: Path, text: str, limits: DataLimits) -> Table:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        if text.lstrip().startswith("{") and exc.msg == "Extra data":
            return _parse_jsonl(path, text, limits)  # JSON lines saved with a .json extension
        raise MalformedRowError(f"'{path.name}' is not valid JSON ({exc.msg} on line {exc.lineno}, "
                                f"column {exc.colno}); fix that spot or export the data as JSON "
                                f"lines.") from None
    if isinstance(obj, dict):
        obj = _unwrap_json_object(obj)
    if not isinstance(obj, list):
        raise MalformedRowError(f"'{path.name}' must hold a list of objects like "
                                f'[{{"text": "...", "label": "..."}}].')
    for i, rec in enumerate(obj, 1):
        if not isinstance(rec, dict):
            raise MalformedRowError(f"'{path.name}' record {i} is a JSON {type(rec).__name__}, not an "
                                    f'object like {{"text": "...", "label": "..."}}.')
    return _records_table(path, obj, range(1, len(obj) + 1), "record", limits)


def _unwrap_json_object(obj: dict[str, Any]) -> list[Any]:
    """Accept {"data": [records]} wrappers and column-oriented {"text": [...], "label": [...]}."""
    lists = [v for v in obj.values() if isinstance(v, list)]
    if len(lists) == len(obj) >= 2 and len({len(v) for v in lists}) == 1:
        return [dict(zip(obj, values, strict=True)) for values in zip(*lists, strict=True)]
    if len(lists) == 1 and all(isinstance(r, dict) for r in lists[0]):
        return lists[0]
    return [obj]


def _records_table(path: Path, records: list[dict[str, Any]], numbers: Sequence[int],
                   unit: str, limits: DataLimits) -> Table:
    if not records:
        raise EmptyFileError(f"'{path.name}' has no records; add one object per example like "
                             f'{{"text": "...", "label": "..."}}.')
    if len(records) > limits.max_rows:
        raise too_many_rows(path, unit, limits)
    columns = list(dict.fromkeys(k for rec in records for k in rec))
    if len(columns) > limits.max_columns:
        raise too_many_columns(path, len(columns), limits)
    if len(columns) * len(records) > limits.max_cells:  # every record gets a cell in every column
        raise too_many_cells(path, len(records), len(columns), limits)
    data = {c: [rec.get(c) for rec in records] for c in columns}
    return Table(path, [str(c) for c in columns], {str(k): v for k, v in data.items()}, numbers, unit)


def _read_parquet(path: Path, limits: DataLimits) -> Table:
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = read_file_capped(path, limits)
    if not data:
        raise EmptyFileError(f"'{path.name}' is empty; it needs at least one labelled example.")
    try:
        pf = pq.ParquetFile(pa.BufferReader(data))
        strings = _check_parquet_metadata(path, pf, limits)
        # Strings stay dictionary-encoded in Arrow (repeats cost one copy), so what they decode to can
        # be measured before a single Python object is made.
        table = pq.ParquetFile(pa.BufferReader(data), read_dictionary=strings).read()
    except DataError:
        raise
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise DataError(f"'{path.name}' is not a readable Parquet file ({exc}); re-export it, or "
                        f"save it as CSV.") from None
    if table.num_rows == 0:
        raise HeaderOnlyError(f"'{path.name}' has columns ({', '.join(table.column_names)}) but no "
                              f"rows; add at least one labelled example per class.")
    decoded = sum(_arrow_decoded_bytes(chunk) for col in table.columns for chunk in col.chunks)
    if decoded > limits.max_decoded_bytes:
        raise decoded_too_large(path, decoded, limits)
    columns = _unique_names([str(c) for c in table.column_names])
    # Only plain columns are converted eagerly; nested ones (lists, structs) stay as Python objects.
    values = {name: table.column(i).to_pylist() for i, name in enumerate(columns)}
    return Table(path, columns, values, range(1, table.num_rows + 1), "record")


_PARQUET_WIDTHS = {"BOOLEAN": 1, "INT32": 4, "INT64": 8, "INT96": 12, "FLOAT": 4, "DOUBLE": 8}


def _check_parquet_metadata(path: Path, pf: Any, limits: DataLimits) -> list[str]:
    """Refuse from the footer alone what would decode past the limits; return the string leaves.

    Rows, columns and leaf values (a list column counts each element) are exact in the footer;
    the bytes of fixed-width values follow from their count, those of strings from the
    uncompressed page sizes, a lower bound when they are dictionary-encoded (checked after reading).
    """
    meta = pf.metadata
    columns = len(pf.schema_arrow.names)
    if meta.num_rows > limits.max_rows:
        raise too_many_rows(path, "record", limits)
    if columns > limits.max_columns:
        raise too_many_columns(path, columns, limits)
    schema = pf.schema
    strings = [schema.column(j).path for j in range(meta.num_columns)
               if schema.column(j).physical_type == "BYTE_ARRAY"]
    values = estimate = 0
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        for j in range(group.num_columns):
            chunk = group.column(j)
            values += chunk.num_values
            kind = chunk.physical_type
            if kind == "FIXED_LEN_BYTE_ARRAY":
                estimate += chunk.num_values * max(schema.column(j).length or 1, 1)
            elif kind in _PARQUET_WIDTHS:
                estimate += chunk.num_values * _PARQUET_WIDTHS[kind]
            else:
                estimate += chunk.total_uncompressed_size
    if values > limits.max_cells:
        raise DecodedTooLargeError(
            f"'{path.name}' holds {values:,} values, more than the limit of {limits.max_cells:,} cells "
            f"(max_cells); drop the columns you do not need or use a sample, or raise max_cells.")
    if estimate > limits.max_decoded_bytes:
        raise decoded_too_large(path, estimate, limits)
    return strings


def _arrow_decoded_bytes(arr: Any) -> int:
    """Bytes an Arrow array's values amount to once every dictionary entry is spelled out."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = arr.type
    if pa.types.is_dictionary(kind):
        entries = arr.dictionary
        if _is_bytes_type(kind.value_type):
            sizes = pc.binary_length(entries)
        else:  # a non-string dictionary (from a stored Arrow schema): its mean entry size
            sizes = pa.array([max(entries.nbytes // max(len(entries), 1), 1)] * len(entries), pa.int64())
        total = pc.sum(pc.take(sizes.cast(pa.int64()), arr.indices)).as_py()
        return int(total or 0) + 4 * len(arr)
    if _is_bytes_type(kind):
        return int(pc.sum(pc.binary_length(arr).cast(pa.int64())).as_py() or 0) + 4 * len(arr)
    if pa.types.is_struct(kind):
        return sum(_arrow_decoded_bytes(child) for child in arr.flatten())
    if pa.types.is_map(kind):
        return _arrow_decoded_bytes(arr.keys) + _arrow_decoded_bytes(arr.items)
    if isinstance(kind, (pa.ListType, pa.LargeListType, pa.FixedSizeListType)):
        return _arrow_decoded_bytes(arr.flatten()) + 4 * len(arr)
    return int(arr.nbytes)


def _is_bytes_type(kind: Any) -> bool:
    import pyarrow as pa

    return (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_binary(kind)
            or pa.types.is_large_binary(kind))
