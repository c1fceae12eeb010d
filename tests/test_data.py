"""Dataset loading and validation: formats, detection, splitting, warnings, typed errors, and the
safety of image archives. Every fixture file is built in code under tmp_path."""

from __future__ import annotations

import gzip
import json
import re
import sys
import time
import types
import zipfile
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from fixtures_data import (
    image_bytes,
    image_entries,
    listing,
    png_with_size,
    rgba_png,
    text_rows,
    truncated_png,
    write_bomb_zip,
    write_csv,
    write_image_folder,
    write_zip,
    write_zip_raw_names,
    write_zip_with_symlink,
)

import core
from core.data import (
    DataLimits,
    UnknownLabelError,
    archive,
    inspect_columns,
    load_dataset,
    load_labeled_file,
    open_image,
    read_image_bytes,
)
from core.data.dataset import SPLITS
from core.errors import (
    ArchiveTooLargeError,
    ConfigError,
    CorruptImageError,
    DataError,
    EmptyFileError,
    EmptyTextError,
    EncodingError,
    FileTooLargeError,
    HeaderOnlyError,
    ImageTooLargeError,
    MalformedRowError,
    MissingColumnError,
    MissingLabelError,
    SingleClassError,
    TooFewExamplesError,
    UnsafeArchiveError,
    UnsupportedFormatError,
)

BALANCED = {"neg": 20, "pos": 20}


@pytest.fixture(autouse=True)
def _close_zip_handles():
    yield
    archive.close_cached()


def csv_file(tmp_path: Path, name: str = "reviews.csv", per_class: dict[str, int] = BALANCED, **kw) -> Path:
    return write_csv(tmp_path / name, text_rows(per_class), **kw)


def all_rows(data) -> pd.DataFrame:
    return pd.concat([data.split(s) for s in SPLITS], ignore_index=True)


# --- formats and auto-detection ---------------------------------------------------------------

def test_csv_loads_into_three_splits_with_contract_columns(tmp_path):
    data = load_dataset(csv_file(tmp_path))
    assert data.task == "text"
    assert data.labels == ["neg", "pos"]
    assert data.name == "reviews"
    assert data.source == str(tmp_path / "reviews.csv")
    assert set(data.splits) == set(SPLITS)
    assert sum(data.sizes().values()) == 40
    for frame in data.splits.values():
        assert list(frame.columns) == ["input", "label", "label_id"]
        assert str(frame["label_id"].dtype) == "int64"
        assert all(data.labels[i] == lab for i, lab in zip(frame["label_id"], frame["label"], strict=True))
    assert data.warnings == []


@pytest.mark.parametrize("header", [("Review", "Sentiment"), ("TEXT", "Category"), ("tweet", "target"),
                                    ("reviewText", "class"), ("comment_body", "y")])
def test_columns_are_detected_case_insensitively_from_common_names(tmp_path, header):
    path = write_csv(tmp_path / "d.csv", text_rows(BALANCED), header=header)
    data = load_dataset(path)
    assert data.labels == ["neg", "pos"]
    assert all(t.startswith("example") for t in all_rows(data)["input"])


def test_text_column_wins_over_weaker_candidates_and_ids_are_ignored(tmp_path):
    rows = [(i, f"title {i}", t, lab) for i, (t, lab) in enumerate(text_rows(BALANCED))]
    data = load_dataset(write_csv(tmp_path / "d.csv", rows, header=("id", "title", "text", "label")))
    assert all(t.startswith("example") for t in all_rows(data)["input"])


@pytest.mark.parametrize("suffix,delimiter", [(".tsv", "\t"), (".csv", ";"), (".txt", "\t"), (".txt", ",")])
def test_delimited_variants(tmp_path, suffix, delimiter):
    path = write_csv(tmp_path / f"d{suffix}", text_rows(BALANCED), delimiter=delimiter)
    assert load_dataset(path).labels == ["neg", "pos"]


def test_jsonl_json_parquet_and_gzip(tmp_path):
    rows = [{"text": t, "label": lab} for t, lab in text_rows(BALANCED)]
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    (tmp_path / "b.json").write_text(json.dumps(rows))
    (tmp_path / "c.json").write_text(json.dumps({"data": rows}))
    (tmp_path / "d.json").write_text("\n".join(json.dumps(r) for r in rows))  # JSON lines as .json
    pd.DataFrame(rows).to_parquet(tmp_path / "e.parquet")
    (tmp_path / "f.csv.gz").write_bytes(gzip.compress(csv_file(tmp_path).read_bytes()))
    for name in ("a.jsonl", "b.json", "c.json", "d.json", "e.parquet", "f.csv.gz"):
        data = load_dataset(tmp_path / name)
        assert data.labels == ["neg", "pos"], name
        assert sum(data.sizes().values()) == 40, name
    assert load_dataset(tmp_path / "f.csv.gz").name == "f"


def test_column_oriented_json_and_header_only_parquet(tmp_path):
    rows = text_rows(BALANCED)
    (tmp_path / "cols.json").write_text(json.dumps({"text": [t for t, _ in rows], "label": [x for _, x in rows]}))
    assert load_dataset(tmp_path / "cols.json").labels == ["neg", "pos"]
    pd.DataFrame({"text": pd.Series([], dtype=str), "label": pd.Series([], dtype=str)}).to_parquet(
        tmp_path / "none.parquet")
    with pytest.raises(HeaderOnlyError, match=r"'none\.parquet' has columns"):
        load_dataset(tmp_path / "none.parquet")


def test_numeric_labels_become_strings_in_natural_order(tmp_path):
    rows = [{"text": f"text {i}", "label": [2, 10, 1][i % 3]} for i in range(30)]
    pd.DataFrame(rows).to_parquet(tmp_path / "n.parquet")
    data = load_dataset(tmp_path / "n.parquet")
    assert data.labels == ["1", "2", "10"]
    frame = all_rows(data)
    assert set(frame["label"]) == {"1", "2", "10"}
    assert (frame["label"].map(data.labels.index) == frame["label_id"]).all()
    path = write_csv(tmp_path / "w.csv", [(f"t{i}", ["class10", "class2"][i % 2]) for i in range(20)])
    assert load_dataset(path).labels == ["class2", "class10"]


def test_explicit_columns_and_case_insensitive_match(tmp_path):
    rows = [(t, lab, "x") for t, lab in text_rows(BALANCED)]
    path = write_csv(tmp_path / "d.csv", rows, header=("Body", "Stance", "Other"))
    data = load_dataset(path, text_column="body", label_column="Stance")
    assert data.labels == ["neg", "pos"]


def test_encodings_utf8_bom_utf16_and_latin1_warning(tmp_path):
    rows = text_rows(BALANCED) + [("café crème brûlée", "pos"), ("naïve", "neg")]
    for enc in ("utf-8-sig", "utf-16", "utf-16-le"):
        data = load_dataset(write_csv(tmp_path / f"{enc}.csv", rows, encoding=enc))
        assert "café crème brûlée" in set(all_rows(data)["input"]), enc
    data = load_dataset(write_csv(tmp_path / "latin.csv", rows, encoding="latin-1"))
    assert "café crème brûlée" in set(all_rows(data)["input"])
    assert any("latin.csv" in w and "UTF-8" in w and "line 42" in w for w in data.warnings)
    data = load_dataset(write_csv(tmp_path / "cp.csv", [*rows, ("“quoted”", "pos")], encoding="cp1252"))
    assert "“quoted”" in set(all_rows(data)["input"])


def test_quoted_fields_with_commas_and_newlines(tmp_path):
    rows = text_rows(BALANCED) + [("hello, world\nsecond line", "pos")]
    data = load_dataset(write_csv(tmp_path / "q.csv", rows))
    assert "hello, world\nsecond line" in set(all_rows(data)["input"])


def test_inspect_columns_reports_detection_and_candidates(tmp_path):
    rows = [(t, lab, lab, "train") for t, lab in text_rows(BALANCED)]
    info = inspect_columns(write_csv(tmp_path / "d.csv", rows, header=("text", "sentiment", "topic", "split")))
    assert info["task"] == "text" and info["rows"] == 40
    assert info["text_column"] == "text" and info["split_column"] == "split"
    assert info["label_column"] is None and info["label_candidates"] == ["sentiment", "topic"]
    zinfo = inspect_columns(write_zip(tmp_path / "i.zip", image_entries({"red": 2, "blue": 2})))
    assert zinfo["task"] == "image" and zinfo["format"] == "zip"


def test_demo_source_uses_the_demo_column_hints(tmp_path, monkeypatch):
    path = write_csv(tmp_path / "movie.csv", text_rows(BALANCED), header=("review_body", "verdict"))
    spec = types.SimpleNamespace(name="sentiment", task="text", filename="movie.csv",
                                 text_column="review_body", label_column="verdict")
    fake = types.ModuleType("core.data.demos")
    fake.is_demo = lambda s: str(s).startswith("demo:")
    fake.get_demo = lambda name: spec if name == "sentiment" else (_ for _ in ()).throw(KeyError(name))
    fake.demo_path = lambda name: path
    monkeypatch.setitem(sys.modules, "core.data.demos", fake)
    monkeypatch.setattr(core.data.sources, "demos", fake, raising=False)
    data = load_dataset("demo:sentiment")
    assert data.name == "sentiment" and data.source == "demo:sentiment" and data.labels == ["neg", "pos"]
    with pytest.raises(DataError, match="nosuch"):
        load_dataset("demo:nosuch")


# --- splitting ------------------------------------------------------------------------------

def test_stratified_split_fractions_classes_and_determinism(tmp_path):
    path = csv_file(tmp_path, per_class={"a": 100, "b": 60, "c": 40})
    data = load_dataset(path, seed=1)
    sizes = data.sizes()
    assert sizes == {"train": 140, "validation": 20, "test": 40}
    for split in SPLITS:
        assert set(data.split(split)["label"]) == {"a", "b", "c"}
    test_counts = Counter(data.split("test")["label"])
    assert test_counts == {"a": 20, "b": 12, "c": 8}  # stratified: 20% of each class
    again = load_dataset(path, seed=1)
    assert data.split("test")["input"].tolist() == again.split("test")["input"].tolist()
    other = load_dataset(path, seed=2)
    assert set(data.split("test")["input"]) != set(other.split("test")["input"])


def test_small_classes_keep_a_training_example(tmp_path):
    data = load_dataset(csv_file(tmp_path, per_class={"big": 30, "two": 2, "three": 3}))
    train, test = Counter(data.split("train")["label"]), Counter(data.split("test")["label"])
    assert train["two"] == 1 and test["two"] == 1
    assert train["three"] >= 1 and test["three"] >= 1
    assert data.sizes()["validation"] >= 1


def test_custom_fractions(tmp_path):
    data = load_dataset(csv_file(tmp_path, per_class={"a": 50, "b": 50}), val_fraction=0.2, test_fraction=0.3)
    assert data.sizes() == {"train": 50, "validation": 20, "test": 30}


def test_split_column_with_aliases(tmp_path):
    names = ["train", "Train", "VAL", "dev", "Valid", "test", "TESTING", "eval"]
    rows = [(t, lab, names[i % len(names)]) for i, (t, lab) in enumerate(text_rows(BALANCED))]
    data = load_dataset(write_csv(tmp_path / "s.csv", rows, header=("text", "label", "split")))
    assert data.sizes() == {"train": 10, "validation": 20, "test": 10}


def test_given_split_column(tmp_path):
    rows = [(t, lab, "test" if i % 5 == 0 else "validation" if i % 5 == 1 else "training")
            for i, (t, lab) in enumerate(text_rows(BALANCED))]
    path = write_csv(tmp_path / "s.csv", rows, header=("text", "label", "fold"))
    data = load_dataset(path, split_column="fold")
    assert data.sizes() == {"train": 24, "validation": 8, "test": 8}


def test_split_column_without_validation_draws_it_from_train(tmp_path):
    rows = [(t, lab, "test" if i % 4 == 0 else "train") for i, (t, lab) in enumerate(text_rows({"a": 40, "b": 40}))]
    data = load_dataset(write_csv(tmp_path / "s.csv", rows, header=("text", "label", "split")))
    assert data.sizes()["test"] == 20 and data.sizes()["validation"] == 8
    assert any("no validation" in w for w in data.warnings)


def test_bad_split_value_names_the_row(tmp_path):
    rows = [(t, lab, "holdout" if i == 3 else "train") for i, (t, lab) in enumerate(text_rows(BALANCED))]
    path = write_csv(tmp_path / "s.csv", rows, header=("text", "label", "split"))
    with pytest.raises(DataError, match=r"'s\.csv'.*'holdout'.*row 5\b.*train, validation"):
        load_dataset(path)


def test_split_column_without_train_rows(tmp_path):
    rows = [(t, lab, "test") for t, lab in text_rows(BALANCED)]
    with pytest.raises(DataError, match=r"'s\.csv' marks no examples as train"):
        load_dataset(write_csv(tmp_path / "s.csv", rows, header=("text", "label", "split")))


def test_max_samples_is_stratified_and_deterministic(tmp_path):
    path = csv_file(tmp_path, per_class={"a": 300, "b": 100})
    data = load_dataset(path, max_samples=100, seed=3)
    frame = all_rows(data)
    assert len(frame) == 100
    assert Counter(frame["label"]) == {"a": 75, "b": 25}
    same = all_rows(load_dataset(path, max_samples=100, seed=3))
    assert sorted(frame["input"]) == sorted(same["input"])
    other = all_rows(load_dataset(path, max_samples=100, seed=4))
    assert sorted(frame["input"]) != sorted(other["input"])
    assert sum(load_dataset(path, max_samples=10_000).sizes().values()) == 400
    with pytest.raises(ConfigError, match="max_samples"):
        load_dataset(path, max_samples=3)


# --- warnings -------------------------------------------------------------------------------

def test_duplicate_conflict_and_leakage_warnings(tmp_path):
    rows = text_rows(BALANCED)
    rows += [rows[0]] * 6 + [(rows[1][0], "pos")]  # repeats, and one text under both labels
    data = load_dataset(write_csv(tmp_path / "dup.csv", rows))
    text = " ".join(data.warnings)
    assert "7 text(s) in 'dup.csv' exactly repeat" in text
    assert "conflicting labels" in text and "'neg' and 'pos'" in text
    assert "more than one split" in text


def test_imbalance_and_long_text_warnings(tmp_path):
    rows = text_rows({"common": 220, "rare": 20})
    rows += [(" ".join(["word"] * 400), "common"), (" ".join(["word"] * 100), "rare")]
    data = load_dataset(write_csv(tmp_path / "w.csv", rows), max_text_tokens_hint=64)
    text = " ".join(data.warnings)
    assert "imbalanced" in text and "'common'" in text and "'rare'" in text
    assert "2 of 242 texts" in text and "64 tokens" in text
    default = load_dataset(write_csv(tmp_path / "w2.csv", rows))  # hint 256: only the 400-word text
    assert any("1 of 242 texts" in w for w in default.warnings)


def test_case_variant_labels_are_flagged(tmp_path):
    data = load_dataset(csv_file(tmp_path, per_class={"Pos": 10, "pos": 10, "neg": 10}))
    assert any("letter case" in w for w in data.warnings)


# --- text errors ----------------------------------------------------------------------------

def test_file_too_large(tmp_path):
    with pytest.raises(FileTooLargeError, match=r"'reviews\.csv' is .* over the limit of 100 bytes"):
        load_dataset(csv_file(tmp_path), limits=DataLimits(max_file_bytes=100))


def test_gzip_bomb_is_capped(tmp_path):
    path = tmp_path / "big.csv.gz"
    path.write_bytes(gzip.compress(b"text,label\n" + b"a,b\n" * 100_000))
    with pytest.raises(FileTooLargeError, match="big.csv.gz"):
        load_dataset(path, limits=DataLimits(max_file_bytes=50_000))


@pytest.mark.parametrize("content", [b"", b"\n\n  \n", b"\xef\xbb\xbf"])
def test_empty_file(tmp_path, content):
    (tmp_path / "e.csv").write_bytes(content)
    with pytest.raises(EmptyFileError, match=r"'e\.csv' is empty"):
        load_dataset(tmp_path / "e.csv")


def test_header_only(tmp_path):
    (tmp_path / "h.csv").write_text("text,label\n\n")
    with pytest.raises(HeaderOnlyError, match=r"'h\.csv' has a header .* but no data rows"):
        load_dataset(tmp_path / "h.csv")


def test_binary_file_is_an_encoding_error(tmp_path):
    (tmp_path / "b.csv").write_bytes(b"text,label\nok,pos\n\x00\x01\x02\xff,neg\n")
    with pytest.raises(EncodingError, match=r"'b\.csv'.*line 3"):
        load_dataset(tmp_path / "b.csv")


def test_bad_utf16_is_an_encoding_error(tmp_path):
    (tmp_path / "u.csv").write_bytes(b"\xff\xfe" + "text,label\n".encode("utf-16-le") + b"\x00\xd8a\x00")
    with pytest.raises(EncodingError, match=r"'u\.csv' looks like UTF-16"):
        load_dataset(tmp_path / "u.csv")


def test_excel_file_renamed_to_csv(tmp_path):
    (tmp_path / "x.csv").write_bytes(b"PK\x03\x04" + b"\x14" * 40)
    with pytest.raises(EncodingError, match="Excel"):
        load_dataset(tmp_path / "x.csv")


def test_ragged_row_names_row_and_field_counts(tmp_path):
    (tmp_path / "r.csv").write_text("text,label\nhello,pos\nbye,neg\nhi, there,pos\n")
    with pytest.raises(MalformedRowError, match=r"'r\.csv' row 4 has 3 field\(s\) but the header has 2"):
        load_dataset(tmp_path / "r.csv")


def test_row_numbers_count_blank_rows_and_multiline_fields(tmp_path):
    (tmp_path / "r.csv").write_text('text,label\n"multi\nline",pos\n\nok,neg\nbad\n')
    with pytest.raises(MalformedRowError, match=r"row 5 \(line 6 in a text editor\) has 1 field"):
        load_dataset(tmp_path / "r.csv")


def test_unclosed_quote_gets_a_hint(tmp_path):
    (tmp_path / "q.csv").write_text('text,label\nhello,pos\n"bye,neg\nfoo,pos\nbar,neg\n')
    with pytest.raises(MalformedRowError, match=r"row 3 .*double quote .* never closes"):
        load_dataset(tmp_path / "q.csv")


def test_trailing_empty_fields_are_tolerated(tmp_path):
    lines = ["text,label,"] + [f"{t},{lab},," for t, lab in text_rows(BALANCED)]
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n")
    assert sum(load_dataset(tmp_path / "t.csv").sizes().values()) == 40


def test_blank_rows_are_skipped_with_a_warning(tmp_path):
    lines = ["text,label"] + [f"{t},{lab}" for t, lab in text_rows(BALANCED)]
    lines.insert(5, ",")
    lines.insert(9, "")
    (tmp_path / "b.csv").write_text("\n".join(lines) + "\n\n\n")
    data = load_dataset(tmp_path / "b.csv")
    assert sum(data.sizes().values()) == 40
    assert any("2 empty row(s) (rows 6, 10)" in w for w in data.warnings)


def test_invalid_jsonl_line(tmp_path):
    (tmp_path / "j.jsonl").write_text('{"text": "a", "label": "x"}\n\n{"text": "b", label: "y"}\n')
    with pytest.raises(MalformedRowError, match=r"'j\.jsonl' line 3 is not valid JSON"):
        load_dataset(tmp_path / "j.jsonl")


def test_jsonl_line_that_is_not_an_object(tmp_path):
    (tmp_path / "j.jsonl").write_text('{"text": "a", "label": "x"}\n[1, 2]\n')
    with pytest.raises(MalformedRowError, match=r"'j\.jsonl' line 2 is a JSON list"):
        load_dataset(tmp_path / "j.jsonl")


def test_missing_label_in_jsonl_names_the_line(tmp_path):
    rows = [{"text": t, "label": lab} for t, lab in text_rows(BALANCED)]
    rows[4].pop("label")
    (tmp_path / "j.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    with pytest.raises(MissingLabelError, match=r"'j\.jsonl' .* at line 5;"):
        load_dataset(tmp_path / "j.jsonl")


def test_unreadable_parquet(tmp_path):
    (tmp_path / "p.parquet").write_bytes(b"PAR1 this is not parquet PAR1")
    with pytest.raises(DataError, match=r"'p\.parquet' is not a readable Parquet file"):
        load_dataset(tmp_path / "p.parquet")


def test_missing_text_column_lists_columns(tmp_path):
    path = write_csv(tmp_path / "c.csv", [("x", "y", "z")] * 4, header=("foo", "bar", "baz"))
    with pytest.raises(MissingColumnError,
                       match=r"'c\.csv' .*text column .*'foo', 'bar', 'baz'.*choose the text column"):
        load_dataset(path)


def test_ambiguous_label_column(tmp_path):
    rows = [(t, lab, lab) for t, lab in text_rows(BALANCED)]
    path = write_csv(tmp_path / "c.csv", rows, header=("text", "sentiment", "topic"))
    with pytest.raises(MissingColumnError,
                       match=r"several possible label columns \('sentiment', 'topic'\).*choose the label column"):
        load_dataset(path)
    assert load_dataset(path, label_column="topic").labels == ["neg", "pos"]


def test_given_column_that_does_not_exist(tmp_path):
    with pytest.raises(MissingColumnError, match=r"'reviews\.csv' has no column 'body' .*check the text column"):
        load_dataset(csv_file(tmp_path), text_column="body")
    with pytest.raises(MissingColumnError, match=r"no column 'klass'.*check the label column"):
        load_dataset(csv_file(tmp_path), label_column="klass")


def test_empty_texts_name_the_rows(tmp_path):
    rows = text_rows(BALANCED)
    rows[2] = ("   ", "pos")
    rows[10] = ("", "neg")
    with pytest.raises(EmptyTextError, match=r"'e\.csv' has empty text in column 'text' at rows 4, 12;"):
        load_dataset(write_csv(tmp_path / "e.csv", rows))


def test_missing_labels_name_the_rows(tmp_path):
    rows = text_rows(BALANCED)
    rows[0] = (rows[0][0], " ")
    with pytest.raises(MissingLabelError, match=r"'m\.csv' has no label in column 'label' at row 2;"):
        load_dataset(write_csv(tmp_path / "m.csv", rows))


def test_single_class(tmp_path):
    with pytest.raises(SingleClassError, match=r"'s\.csv' has only one class \('pos'\)"):
        load_dataset(csv_file(tmp_path, "s.csv", per_class={"pos": 10}))


def test_class_with_one_example_names_class_and_row(tmp_path):
    with pytest.raises(TooFewExamplesError, match=r"'t\.csv': class 'rare' has only 1 example, at row 42"):
        load_dataset(csv_file(tmp_path, "t.csv", per_class={**BALANCED, "rare": 1}))


@pytest.mark.parametrize("name", ["data.xlsx", "data.png", "data", "data.csv.bz3"])
def test_unsupported_format_lists_supported_ones(tmp_path, name):
    (tmp_path / name).write_bytes(b"whatever")
    with pytest.raises(UnsupportedFormatError, match=r"unsupported type.*\.csv, \.tsv.*\.zip"):
        load_dataset(tmp_path / name)


def test_missing_source_and_bad_options(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(tmp_path / "nope.csv")
    with pytest.raises(ConfigError, match="task"):
        load_dataset(csv_file(tmp_path), task="audio")
    with pytest.raises(ConfigError, match="10%"):
        load_dataset(csv_file(tmp_path), val_fraction=0.5, test_fraction=0.45)


@pytest.mark.parametrize("field_name", ["max_file_bytes", "max_image_pixels", "max_archive_bytes",
                                        "max_archive_entries", "max_archive_ratio"])
def test_data_limits_must_be_positive(field_name):
    with pytest.raises(ConfigError, match=field_name):
        DataLimits(**{field_name: 0})


# --- evaluation files -----------------------------------------------------------------------

def test_load_labeled_file_puts_everything_in_test(tmp_path):
    data = load_labeled_file(csv_file(tmp_path, per_class={"neg": 3, "pos": 1}))
    assert data.sizes() == {"train": 0, "validation": 0, "test": 4}
    assert data.labels == ["neg", "pos"]


def test_load_labeled_file_uses_the_given_label_order(tmp_path):
    data = load_labeled_file(csv_file(tmp_path, per_class={"neg": 3, "pos": 3}), labels=["pos", "neg", "meh"])
    assert data.labels == ["pos", "neg", "meh"]
    test = data.split("test")
    assert (test["label_id"] == test["label"].map({"pos": 0, "neg": 1})).all()


def test_load_labeled_file_rejects_unknown_labels(tmp_path):
    path = csv_file(tmp_path, "eval.csv", per_class={"neg": 3, "maybe": 2})
    with pytest.raises(UnknownLabelError,
                       match=r"'eval\.csv' row 5 has label 'maybe'.*\(2 rows in all\).*'neg', 'pos'"):
        load_labeled_file(path, labels=["neg", "pos"])
    assert issubclass(UnknownLabelError, DataError)


# --- images ---------------------------------------------------------------------------------

def test_image_zip_with_top_folder_and_macos_noise(tmp_path):
    entries = image_entries({"red": 6, "blue": 6}, prefix="mydata/")
    entries |= {"__MACOSX/mydata/red/._0.png": b"junk", "mydata/.DS_Store": b"junk", "mydata/README.txt": b"hi"}
    data = load_dataset(write_zip(tmp_path / "colors.zip", entries))
    assert data.task == "image" and data.labels == ["blue", "red"] and data.name == "colors"
    assert sum(data.sizes().values()) == 12
    assert any("1 file(s) that are not" in w for w in data.warnings)
    ref = data.split("train")["input"].iloc[0]
    assert ref.startswith("zip://") and ref.split("::")[1].startswith("mydata/")
    image = open_image(ref)
    assert image.mode == "RGB" and image.size == (8, 8)
    assert read_image_bytes(ref)[:8] == b"\x89PNG\r\n\x1a\n"


def test_image_zip_split_folders(tmp_path):
    entries = image_entries({"red": 6, "blue": 6}, prefix="train/")
    entries |= image_entries({"red": 2, "blue": 2}, prefix="val/", start=100)
    entries |= image_entries({"red": 3, "blue": 3}, prefix="test/", start=200)
    data = load_dataset(write_zip(tmp_path / "s.zip", entries))
    assert data.sizes() == {"train": 12, "validation": 4, "test": 6}
    assert data.warnings == []


def test_image_formats_and_case_insensitive_extensions(tmp_path):
    entries = {}
    for i, (fmt, ext) in enumerate([("JPEG", "JPG"), ("JPEG", "jpeg"), ("WEBP", "webp"), ("BMP", "bmp"),
                                    ("PNG", "PNG")]):
        entries[f"a/{i}.{ext}"] = image_bytes((10, 200, 10), fmt=fmt, seed=i)
        entries[f"b/{i}.{ext}"] = image_bytes((200, 10, 10), fmt=fmt, seed=50 + i)
    data = load_dataset(write_zip(tmp_path / "f.zip", entries))
    assert sum(data.sizes().values()) == 10
    for ref in all_rows(data)["input"]:
        assert open_image(ref).mode == "RGB"


def test_open_image_flattens_alpha_and_palette(tmp_path):
    entries = {"a/rgba.png": rgba_png(), "a/gray.png": image_bytes((90, 90, 90), mode="L"),
               "b/x.png": image_bytes(), "b/y.png": image_bytes(seed=9),
               **{f"{c}/pad{i}.png": image_bytes(seed=20 + i) for c in "ab" for i in range(3)}}
    data = load_dataset(write_zip(tmp_path / "m.zip", entries))
    refs = {r.split("::")[1]: r for r in all_rows(data)["input"]}
    assert open_image(refs["a/rgba.png"]).getpixel((0, 0)) == (255, 255, 255)  # transparent -> white
    assert open_image(refs["a/gray.png"]).mode == "RGB"


def test_image_folder_and_hidden_files(tmp_path):
    root = write_image_folder(tmp_path / "pics", image_entries({"red": 4, "blue": 4}))
    (root / "red" / ".hidden.png").write_bytes(b"junk")
    (root / ".git").mkdir()
    (root / ".git" / "x.png").write_bytes(b"junk")
    data = load_dataset(root)
    assert data.task == "image" and data.name == "pics" and sum(data.sizes().values()) == 8
    ref = data.split("train")["input"].iloc[0]
    assert Path(ref).is_absolute() and open_image(ref).size == (8, 8)


def test_csv_of_image_paths(tmp_path):
    write_image_folder(tmp_path / "imgs", image_entries({"red": 5, "blue": 5}))
    rows = [(f"imgs/{lab}/{i}.png", lab) for lab in ("red", "blue") for i in range(5)]
    path = write_csv(tmp_path / "images.csv", rows, header=("filepath", "label"))
    data = load_dataset(path)
    assert data.task == "image" and data.labels == ["blue", "red"]
    assert all(Path(r).is_file() for r in all_rows(data)["input"])
    rows[3] = ("imgs/red/missing.png", "red")
    with pytest.raises(DataError, match=r"'bad\.csv' row 5 points to 'imgs/red/missing\.png', which does not exist"):
        load_dataset(write_csv(tmp_path / "bad.csv", rows, header=("path", "label")))


def test_text_task_on_image_zip_is_refused(tmp_path):
    path = write_zip(tmp_path / "i.zip", image_entries({"red": 2, "blue": 2}))
    with pytest.raises(ConfigError, match="task 'text'"):
        load_dataset(path, task="text")


def test_truncated_image_in_zip(tmp_path):
    entries = image_entries({"red": 3, "blue": 3}) | {"red/broken.png": truncated_png()}
    with pytest.raises(CorruptImageError, match=r"ZIP entry 'red/broken\.png' in 'c\.zip' is damaged or truncated"):
        load_dataset(write_zip(tmp_path / "c.zip", entries))


def test_non_image_bytes_with_image_name(tmp_path):
    root = write_image_folder(tmp_path / "pics", image_entries({"red": 3, "blue": 3}) | {"blue/fake.jpg": b"hello"})
    with pytest.raises(CorruptImageError, match=r"'blue/fake\.jpg' in folder 'pics' is not a readable"):
        load_dataset(root)


def test_image_above_pixel_limit(tmp_path):
    entries = image_entries({"red": 3, "blue": 3}) | {"red/huge.png": png_with_size(5000, 5000)}
    path = write_zip(tmp_path / "h.zip", entries)
    with pytest.raises(ImageTooLargeError, match=r"ZIP entry 'red/huge\.png' in 'h\.zip' is 5000x5000"):
        load_dataset(path, limits=DataLimits(max_image_pixels=1_000_000))


@pytest.mark.parametrize("side", [10_000, 20_000])
def test_pil_decompression_bomb_maps_to_image_too_large(tmp_path, side):
    # Above PIL's own guard (a warning past 89.5M pixels, an error past twice that) PIL refuses
    # before our limit is consulted; both must surface as our typed error.
    entries = image_entries({"red": 3, "blue": 3}) | {"red/bomb.png": png_with_size(side, side)}
    path = write_zip(tmp_path / "b.zip", entries)
    with pytest.raises(ImageTooLargeError, match=r"'red/bomb\.png' in 'b\.zip'"):
        load_dataset(path, limits=DataLimits(max_image_pixels=10**10))


@pytest.mark.parametrize("evil", ["../evil.png", "red/../../evil.png", "/etc/evil.png", "C:/evil.png",
                                  "red\\..\\evil.png"])
def test_unsafe_zip_entries(tmp_path, evil):
    path = write_zip_raw_names(tmp_path / "u.zip", image_entries({"red": 2, "blue": 2}) | {evil: image_bytes()})
    with pytest.raises(UnsafeArchiveError, match=rf"ZIP entry '{re.escape(evil)}' in 'u\.zip'"):
        load_dataset(path)


def test_symlink_zip_entry(tmp_path):
    path = write_zip_with_symlink(tmp_path / "l.zip", image_entries({"red": 2, "blue": 2}), "red/link.png",
                                  "/etc/passwd")
    with pytest.raises(UnsafeArchiveError, match=r"'red/link\.png' in 'l\.zip' is a symbolic link"):
        load_dataset(path)


def test_zip_bomb_ratio(tmp_path):
    path = write_bomb_zip(tmp_path / "z.zip", image_entries({"red": 2, "blue": 2}))
    with pytest.raises(ArchiveTooLargeError, match=r"'cat/bomb\.png' in 'z\.zip' is compressed .*:1"):
        load_dataset(path)


def test_zip_total_size_and_entry_limits(tmp_path):
    path = write_zip(tmp_path / "t.zip", image_entries({"red": 3, "blue": 3}))
    with pytest.raises(ArchiveTooLargeError, match=r"'t\.zip' would unpack to"):
        load_dataset(path, limits=DataLimits(max_archive_bytes=200))
    with pytest.raises(ArchiveTooLargeError, match=r"'t\.zip' has 6 entries"):
        load_dataset(path, limits=DataLimits(max_archive_entries=5))


def test_zip_without_images_or_with_wrong_layout(tmp_path):
    with pytest.raises(DataError, match=r"ZIP 'n\.zip' contains no .*<label>/<file>"):
        load_dataset(write_zip(tmp_path / "n.zip", {"notes.txt": b"hello"}))
    flat = {"1.png": image_bytes(), "2.png": image_bytes(seed=2)}
    with pytest.raises(DataError, match=r"ZIP 'f\.zip' has '1\.png' at the wrong folder depth.*cat/1\.png"):
        load_dataset(write_zip(tmp_path / "f.zip", flat))
    deep = image_entries({"red": 2, "blue": 2}) | {"red/sub/x.png": image_bytes(seed=77)}
    with pytest.raises(DataError, match=r"'red/sub/x\.png' at the wrong folder depth"):
        load_dataset(write_zip(tmp_path / "d.zip", deep))


def test_not_a_zip(tmp_path):
    (tmp_path / "bad.zip").write_bytes(b"this is not a zip")
    with pytest.raises(DataError, match=r"'bad\.zip' is not a readable ZIP"):
        load_dataset(tmp_path / "bad.zip")


def test_check_zip_and_read_member_cap(tmp_path):
    path = write_zip(tmp_path / "c.zip", image_entries({"red": 2}) | {"red/notes.txt": b"x"})
    infos = archive.check_zip(path, DataLimits())
    assert [i.filename for i in infos] == ["red/0.png", "red/1.png"]
    with zipfile.ZipFile(path) as zf, pytest.raises(ArchiveTooLargeError, match="red/0.png"):
        archive.read_member(zf, infos[0], max_bytes=10)


def test_image_duplicates_are_detected_by_content(tmp_path):
    entries = image_entries({"red": 4, "blue": 4})
    entries["blue/copy.png"] = entries["red/0.png"]
    data = load_dataset(write_zip(tmp_path / "d.zip", entries))
    assert any("1 image(s) in 'd.zip' exactly repeat" in w for w in data.warnings)
    assert any("conflicting labels" in w for w in data.warnings)


def test_zip_entries_with_dot_slash_prefix(tmp_path):
    entries = {f"./{name}": data for name, data in image_entries({"red": 3, "blue": 3}).items()}
    data = load_dataset(write_zip_raw_names(tmp_path / "d.zip", entries))
    assert data.labels == ["blue", "red"]
    assert open_image(data.split("train")["input"].iloc[0]).size == (8, 8)


def test_open_image_applies_exif_orientation(tmp_path):
    import io

    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    buf = io.BytesIO()
    Image.new("RGB", (16, 8), (10, 20, 30)).save(buf, "JPEG", exif=exif)
    path = tmp_path / "phone.jpg"
    path.write_bytes(buf.getvalue())
    assert open_image(str(path)).size == (8, 16)
    assert read_image_bytes(str(path)) == buf.getvalue()


def test_open_image_on_a_damaged_or_missing_ref(tmp_path):
    (tmp_path / "bad.png").write_bytes(truncated_png())
    with pytest.raises(CorruptImageError, match="bad.png"):
        open_image(str(tmp_path / "bad.png"))
    with pytest.raises(DataError, match="does not exist"):
        open_image(str(tmp_path / "gone.png"))
    path = write_zip(tmp_path / "z.zip", image_entries({"red": 1}))
    with pytest.raises(DataError, match="red/9.png"):
        read_image_bytes(f"zip://{path}::red/9.png")


# --- side effects and speed -----------------------------------------------------------------

def test_loading_writes_nothing(tmp_path):
    csv_file(tmp_path)
    write_zip(tmp_path / "i.zip", image_entries({"red": 3, "blue": 3}))
    (tmp_path / "bad.csv").write_text("text,label\nx,y,z\n")
    before = listing(tmp_path)
    load_dataset(tmp_path / "reviews.csv")
    data = load_dataset(tmp_path / "i.zip")
    open_image(data.split("train")["input"].iloc[0])
    with pytest.raises(MalformedRowError):
        load_dataset(tmp_path / "bad.csv")
    assert listing(tmp_path) == before


def test_ten_thousand_rows_load_fast(tmp_path):
    path = csv_file(tmp_path, per_class={"a": 5000, "b": 3000, "c": 2000})
    load_dataset(path)  # warm imports
    start = time.perf_counter()
    data = load_dataset(path)
    assert time.perf_counter() - start < 1.0
    assert sum(data.sizes().values()) == 10_000


def test_three_thousand_pngs_validate_in_seconds(tmp_path):
    path = write_zip(tmp_path / "many.zip", image_entries({"red": 1500, "blue": 1500}))
    start = time.perf_counter()
    data = load_dataset(path)
    assert time.perf_counter() - start < 5.0
    assert sum(data.sizes().values()) == 3000


def test_too_few_examples_for_all_three_splits_is_an_error_not_a_crash_later(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("text,label\na,x\nb,x\nc,y\nd,y\n")
    with pytest.raises(TooFewExamplesError, match="'t.csv' has only 4 usable examples, too few for a validation"):
        load_dataset(p)


# --- a dataset's name and content fingerprint (item 15a) ------------------------------------

def test_a_saved_dataset_loads_under_its_saved_name(tmp_path, home):
    from core.data import store as datastore

    text = datastore.save_dataset("classdata", csv_file(tmp_path))
    shapes = datastore.save_dataset("shapes", write_zip(tmp_path / "s.zip", image_entries({"red": 5, "blue": 5})))
    assert Path(text.path).name == "data.csv" and Path(shapes.path).name == "data.zip"
    assert load_dataset(text.path).name == "classdata" and load_dataset(shapes.path).name == "shapes"
    assert load_labeled_file(text.path).name == "classdata"
    own = tmp_path / "mine"
    own.mkdir()
    (own / "dataset.json").write_text(json.dumps({"name": "someone-else"}))  # not a saved dataset's record
    assert load_dataset(csv_file(own, name="data.csv")).name == "data"  # a local file keeps its stem
    assert load_dataset(csv_file(tmp_path, name="reviews.tsv", delimiter="\t")).name == "reviews"


def test_fingerprint_is_stable_and_follows_the_content(tmp_path):
    first = load_dataset(csv_file(tmp_path))
    again = load_dataset(csv_file(tmp_path))
    assert re.fullmatch(r"[0-9a-f]{16}", first.fingerprint) and first.fingerprint == again.fingerprint
    copy = tmp_path / "elsewhere"
    copy.mkdir()
    assert load_dataset(csv_file(copy, name="renamed.csv")).fingerprint == first.fingerprint  # content, not path
    rows = text_rows(BALANCED)
    assert rows[0][1] == "neg"
    rows[0] = (rows[0][0], "pos")  # one label changed
    changed = load_dataset(write_csv(tmp_path / "changed.csv", rows))
    assert changed.fingerprint != first.fingerprint
    assert load_dataset(csv_file(tmp_path), seed=1).fingerprint != first.fingerprint  # another split
    other = load_dataset(csv_file(tmp_path, name="other.csv", per_class={"x": 20, "y": 20}))
    assert other.fingerprint != first.fingerprint


def test_image_fingerprint_hashes_the_images_not_their_paths(tmp_path):
    entries = image_entries({"red": 5, "blue": 5})
    a = load_dataset(write_zip(tmp_path / "a.zip", entries))
    (tmp_path / "elsewhere").mkdir()
    b = load_dataset(write_zip(tmp_path / "elsewhere" / "b.zip", entries))
    assert a.fingerprint == b.fingerprint and a.split("train")["input"].iloc[0] != b.split("train")["input"].iloc[0]
    entries["red/0.png"] = image_entries({"red": 1}, start=50)["red/0.png"]
    assert load_dataset(write_zip(tmp_path / "c.zip", entries)).fingerprint != a.fingerprint
