"""Saved datasets: staging is private per session, saving validates first and never overwrites."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from core import datastore
from core.errors import DataError


def test_stage_is_per_session_and_keeps_the_file_name(home: Path, sentiment_csv: Path) -> None:
    a = datastore.stage_upload("sessA", "My Reviews (1).csv", sentiment_csv.read_bytes())
    b = datastore.stage_upload("sessB", "other.csv", b"text,label\nx,y\n")
    assert a.parent != b.parent and a.name == "My_Reviews_1.csv" and a.read_bytes() == sentiment_csv.read_bytes()
    again = datastore.stage_upload("sessA", "second.csv", b"text,label\n")
    assert not a.exists() and again.exists()  # a new upload replaces the session's previous one
    assert datastore.list_datasets() == []  # staged is not saved
    with pytest.raises(DataError, match="not a supported file type"):
        datastore.stage_upload("sessA", "evil.exe", b"MZ")
    with pytest.raises(DataError, match="session"):
        datastore.stage_upload("../x", "a.csv", b"text,label\n")
    with pytest.raises(DataError, match="empty"):
        datastore.stage_upload("sessA", "a.csv", b"")


def test_save_list_get_delete(home: Path, sentiment_csv: Path) -> None:
    staged = datastore.stage_upload("s1", "reviews.csv", sentiment_csv.read_bytes())
    saved = datastore.save_dataset("reviews", staged, original_name="reviews.csv")
    assert saved.task == "text" and saved.rows == 240 and set(saved.labels) == {"negative", "positive"}
    assert Path(saved.path).read_bytes() == sentiment_csv.read_bytes()
    assert [d.name for d in datastore.list_datasets()] == ["reviews"]
    assert datastore.get_dataset("reviews").path == saved.path
    with pytest.raises(DataError, match="exists already"):
        datastore.save_dataset("reviews", staged)
    datastore.delete_dataset("reviews")
    assert datastore.list_datasets() == []
    with pytest.raises(DataError, match="No saved dataset"):
        datastore.get_dataset("reviews")


def test_invalid_data_or_name_stores_nothing(home: Path) -> None:
    staged = datastore.stage_upload("s1", "bad.csv", b"text,label\nonly one row,pos\n")
    with pytest.raises(DataError):
        datastore.save_dataset("bad", staged)
    for name in ("../escape", "Upper", "", "a" * 49):
        with pytest.raises(DataError, match="not allowed"):
            datastore.save_dataset(name, staged)
    assert not datastore.datasets_dir().exists() or not any(datastore.datasets_dir().iterdir())


def test_stale_uploads_are_forgotten(home: Path) -> None:
    old = datastore.stage_upload("old", "a.csv", b"text,label\n").parent
    past = time.time() - datastore.STAGE_TTL_S - 60
    os.utime(old, (past, past))
    fresh = datastore.stage_upload("new", "b.csv", b"text,label\n").parent
    assert not old.exists() and fresh.exists()


def test_slug_and_suffix() -> None:
    assert datastore.slug("My Reviews 2024") == "my-reviews-2024"
    assert datastore.slug("!!!").startswith("dataset-")
    assert datastore.suffix_of("x.CSV.GZ") == ".csv.gz"
