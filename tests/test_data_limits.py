"""What a table decodes to is bounded, not only the bytes uploaded (review item 4): Parquet is checked from
its metadata and dictionary pages before its values become Python objects; CSV, JSON and JSONL are
capped in rows, columns, cells and values; the Data page's cache is bounded in bytes."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.data import DataLimits, inspect_columns, load_dataset
from core.data.dataset import ByteBoundedCache, LabeledData
from core.errors import ConfigError, FileTooLargeError

SMALL = DataLimits(max_decoded_bytes=8 * 2**20, max_rows=50_000, max_columns=50, max_cells=200_000)


def _parquet(path: Path, table: pa.Table, **kw) -> Path:
    buf = io.BytesIO()
    pq.write_table(table, buf, **kw)
    path.write_bytes(buf.getvalue())
    return path


def test_a_tiny_parquet_that_decodes_huge_is_refused_before_it_is_decoded(tmp_path: Path) -> None:
    n = 20_000  # one 1,000-character review repeated: 20 MB of text in a file of a few kB
    table = pa.table({"text": pa.array(["a long repeated review " * 43] * n), "label": pa.array(["p", "n"] * (n // 2))})
    path = _parquet(tmp_path / "bomb.parquet", table)
    assert path.stat().st_size < 64 * 1024
    start = time.perf_counter()
    with pytest.raises(FileTooLargeError) as err:
        load_dataset(path, limits=SMALL)
    assert time.perf_counter() - start < 2.0
    message = str(err.value)
    assert "'bomb.parquet' decodes to" in message and "8.0 MiB" in message and "max_decoded_bytes" in message
    with pytest.raises(FileTooLargeError, match="max_decoded_bytes"):
        inspect_columns(path, limits=SMALL)  # the Data page's column boxes read the file too


def test_parquet_bounds_from_metadata_rows_columns_and_nested_values(tmp_path: Path) -> None:
    rows = _parquet(tmp_path / "rows.parquet", pa.table({"text": [f"t{i}" for i in range(60_000)],
                                                         "label": ["a", "b"] * 30_000}))
    with pytest.raises(FileTooLargeError, match=r"more than 50,000 records.*max_rows"):
        load_dataset(rows, limits=SMALL)
    wide = _parquet(tmp_path / "wide.parquet", pa.table({f"c{i}": [1, 2] for i in range(60)}))
    with pytest.raises(FileTooLargeError, match=r"60 columns.*limit of 50.*max_columns"):
        load_dataset(wide, limits=SMALL)
    # 2,000 rows whose list column holds 500 zeros each: 1,000,000 values from a few kB
    nested = _parquet(tmp_path / "nested.parquet", pa.table({"text": [f"t{i}" for i in range(2000)],
                                                             "label": ["a", "b"] * 1000,
                                                             "extra": [[0] * 500] * 2000}))
    with pytest.raises(FileTooLargeError, match=r"max_cells"):
        load_dataset(nested, limits=SMALL)
    repeated = _parquet(tmp_path / "tags.parquet", pa.table({"text": [f"t{i}" for i in range(200)],
                                                             "label": ["a", "b"] * 100,
                                                             "tags": [["x" * 1000] * 50] * 200}))
    with pytest.raises(FileTooLargeError, match=r"decodes to .*max_decoded_bytes"):
        load_dataset(repeated, limits=SMALL)  # dictionary-encoded strings inside a list column


def test_an_ordinary_parquet_still_loads_within_the_limits(tmp_path: Path) -> None:
    n = 2000
    table = pa.table({"text": [f"review number {i} with words" for i in range(n)], "label": ["pos", "neg"] * (n // 2),
                      "score": pa.array(range(n), pa.int64()), "tags": [["a", "b"]] * n})
    data = load_dataset(_parquet(tmp_path / "ok.parquet", table), limits=SMALL)
    assert sum(data.sizes().values()) == n and data.labels == ["neg", "pos"]


def test_csv_is_capped_in_rows_columns_and_cells(tmp_path: Path) -> None:
    many = tmp_path / "many.csv"
    many.write_text("text,label\n" + "x,a\ny,b\n" * 30_000)
    with pytest.raises(FileTooLargeError, match=r"'many\.csv' has more than 50,000 rows.*max_rows"):
        load_dataset(many, limits=SMALL)
    wide = tmp_path / "wide.csv"
    wide.write_text(",".join(f"c{i}" for i in range(80)) + "\n" + ",".join("1" * 80) + "\n")
    with pytest.raises(FileTooLargeError, match=r"80 columns.*limit of 50.*max_columns"):
        load_dataset(wide, limits=SMALL)
    cells = tmp_path / "cells.csv"
    cells.write_text(",".join(f"c{i}" for i in range(40)) + "\n" + ("," * 39 + "\n").join(["a"] * 6000))
    with pytest.raises(FileTooLargeError, match=r"more than 200,000 cells.*max_cells"):
        load_dataset(cells, limits=SMALL)


def test_json_and_jsonl_are_capped_before_python_objects_pile_up(tmp_path: Path) -> None:
    columns = tmp_path / "columns.json"  # one record with a million keys is a million columns
    columns.write_text(json.dumps([{f"k{i}": 1 for i in range(1000)}]))
    with pytest.raises(FileTooLargeError, match=r"max_cells|max_columns"):
        load_dataset(columns, limits=DataLimits(max_cells=500))
    flat = tmp_path / "flat.json"  # column-oriented: huge lists inside a single object
    flat.write_text(json.dumps({"text": ["ab"] * 300_000, "label": ["a"] * 300_000}))
    with pytest.raises(FileTooLargeError, match=r"'flat\.json' holds more than 200,000 JSON values.*max_cells"):
        load_dataset(flat, limits=SMALL)
    lines = tmp_path / "lines.jsonl"
    lines.write_text("".join(json.dumps({"text": f"t{i}", "label": "ab"[i % 2]}) + "\n" for i in range(60_000)))
    with pytest.raises(FileTooLargeError, match=r"max_cells|max_rows"):
        load_dataset(lines, limits=SMALL)
    # commas inside texts are not values: a normal file with long, comma-rich reviews loads
    ok = tmp_path / "ok.jsonl"
    ok.write_text("".join(json.dumps({"text": f"{i}, " + "and, so, on, " * 200, "label": "ab"[i % 2]}) + "\n"
                          for i in range(400)))
    assert ok.read_text().count(",") > SMALL.max_cells  # so the rough count alone would refuse it
    assert sum(load_dataset(ok, limits=SMALL).sizes().values()) == 400


@pytest.mark.parametrize("field_name", ["max_decoded_bytes", "max_rows", "max_columns", "max_cells"])
def test_new_limits_are_validated(field_name: str) -> None:
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ConfigError, match=field_name):
            DataLimits(**{field_name: bad})


def _data(n: int, width: int = 100, name: str = "d") -> LabeledData:
    frame = pd.DataFrame({"input": ["x" * width + str(i) for i in range(n)], "label": ["a"] * n, "label_id": [0] * n})
    empty = frame.iloc[:0]
    return LabeledData("text", ["a"], {"train": frame, "validation": empty, "test": empty}, "s", name)


def test_the_dataset_cache_evicts_by_bytes_not_entries() -> None:
    small, big = _data(10), _data(2000)
    assert 1_000 < small.approx_bytes() < 20_000 and big.approx_bytes() > 200_000
    cache = ByteBoundedCache(max_bytes=big.approx_bytes() + small.approx_bytes() * 3 // 2)
    calls = []

    def loader(value: LabeledData):
        def load() -> LabeledData:
            calls.append(value.name)
            return value
        return load

    for key in ("s1", "s2", "s3"):
        assert cache.get_or_load(key, loader(_data(10, name=key))).name == key
    assert cache.get_or_load("s1", loader(small)).name == "s1" and calls == ["s1", "s2", "s3"]  # a hit
    cache.get_or_load("big", loader(big))  # needs room: the least recently used (s2, then s3) go
    assert "big" in cache and "s1" in cache and "s2" not in cache and "s3" not in cache
    assert cache.total_bytes <= cache.max_bytes
    huge = _data(20_000)
    assert cache.get_or_load("huge", loader(huge)) is huge and "huge" not in cache  # too big to keep at all
    assert "big" in cache  # and it pushed nothing out
    with pytest.raises(ConfigError, match="max_bytes"):
        ByteBoundedCache(max_bytes=0)


@pytest.mark.parametrize("suffix", [".csv.gz", ".jsonl.gz"])
def test_a_file_of_blank_lines_counts_them_against_the_row_limit(tmp_path: Path, suffix: str) -> None:
    # Review finding: 190 MiB of line breaks in a 189 KB .csv.gz grew the process to 10 GB, because
    # blank rows were skipped before any limit and each was remembered.
    import gzip

    from core.data import DataLimits, load_dataset
    from core.errors import DecodedTooLargeError

    head = b"text,label\n" if suffix.startswith(".csv") else b""
    tail = b"good film,pos\nbad film,neg\n" if suffix.startswith(".csv") else b'{"text": "a", "label": "x"}\n'
    path = tmp_path / f"blank{suffix}"
    path.write_bytes(gzip.compress(head + b"\n" * 50_000 + tail))
    with pytest.raises(DecodedTooLargeError, match="max_rows"):
        load_dataset(path, limits=DataLimits(max_rows=10_000))


def test_blank_rows_inside_a_table_are_still_reported_by_row(tmp_path: Path) -> None:
    from core.data import load_dataset

    rows = ["text,label"] + [f"film number {i},{'pos' if i % 2 else 'neg'}" for i in range(40)]
    rows[5:5] = ["", "", ""]  # rows 6-8 as a spreadsheet numbers them
    path = tmp_path / "gaps.csv"
    path.write_text("\r\n".join(rows) + "\r\n")
    data = load_dataset(path)
    assert sum(data.sizes().values()) == 40
    assert any("3 empty row(s) (rows 6, 7, 8)" in w for w in data.warnings), data.warnings
