"""Saved datasets: staging is private per session, saving validates first and never overwrites."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from core.data import store as datastore
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
    # The same file again (a double click) is the first save; another file under the name is refused.
    assert datastore.save_dataset("reviews", staged) == saved
    more = sentiment_csv.read_bytes() + b"one more lovely review,positive\n"
    other = datastore.stage_upload("s1", "reviews.csv", more)
    with pytest.raises(DataError, match="exists already"):
        datastore.save_dataset("reviews", other)
    with pytest.raises(DataError, match="exists already"):
        datastore.save_dataset("reviews", staged, text_column="text")  # the same file read differently
    assert Path(datastore.get_dataset("reviews").path).read_bytes() == sentiment_csv.read_bytes()
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


# --- one name, one dataset: the name is reserved before the slow validation (item 5) --------

_SAVER = r"""
import json, sys, time
from pathlib import Path

from core import data
from core.data import store as datastore  # imports done before the start signal, so both saves start together

ready, go, source = map(Path, sys.argv[1:4])
ready.write_text("ready")
while not go.exists():
    time.sleep(0.0005)
try:
    saved = datastore.save_dataset("classdata", source)
    print(json.dumps({"ok": True, "rows": saved.rows, "source": str(source)}))
except Exception as exc:
    print(json.dumps({"ok": False, "error": str(exc), "type": type(exc).__name__}))
"""


def _rows_csv(path: Path, n: int, labels: tuple[str, str]) -> Path:
    lines = ["text,label"] + [f"example {labels[i % 2]} number {i} with a few more words,{labels[i % 2]}"
                              for i in range(n)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_two_processes_saving_one_name_at_once_one_wins_cleanly(home: Path, tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    sources = [_rows_csv(tmp_path / "a.csv", 3000, ("pos", "neg")), _rows_csv(tmp_path / "b.csv", 2400, ("x", "y"))]
    go = tmp_path / "go"
    env = {**os.environ, "TUNESCOPE_HOME": str(home), "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    procs = [subprocess.Popen([sys.executable, "-c", _SAVER, str(tmp_path / f"ready{i}"), str(go), str(src)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for i, src in enumerate(sources)]
    deadline = time.time() + 60
    while not all((tmp_path / f"ready{i}").exists() for i in range(2)) and time.time() < deadline:
        time.sleep(0.005)
    go.write_text("go")
    results = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    winners = [r for r in results if r["ok"]]
    losers = [r for r in results if not r["ok"]]
    assert len(winners) == 1 and len(losers) == 1, results
    assert losers[0]["type"] == "DataError"
    assert "A dataset named 'classdata' exists already (or is being saved)" in losers[0]["error"]
    [saved] = datastore.list_datasets()
    winner = Path(winners[0]["source"])
    assert saved.name == "classdata" and saved.rows == winners[0]["rows"]
    assert Path(saved.path).read_bytes() == winner.read_bytes()  # the survivor's own file, intact
    assert sorted(p.name for p in (datastore.datasets_dir() / "classdata").iterdir()) == [
        "access.json", "data.csv", "dataset.json"]
    assert [p.name for p in datastore.datasets_dir().iterdir()] == ["classdata"]  # no leftovers


def test_a_save_in_progress_is_not_listed_and_holds_its_name(home: Path, sentiment_csv: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import core.data

    real = core.data.load_dataset
    seen = {}

    def slow_validation(*args, **kwargs):
        seen["listed"] = datastore.list_datasets()
        with pytest.raises(DataError, match="exists already \\(or is being saved\\)") as err:
            datastore.save_dataset("reviews", sentiment_csv)
        seen["second"] = str(err.value)
        with pytest.raises(DataError, match="No saved dataset"):
            datastore.delete_dataset("reviews")  # nobody can delete what is still being written
        return real(*args, **kwargs)

    monkeypatch.setattr(core.data.store, "load_dataset", slow_validation)
    saved = datastore.save_dataset("reviews", sentiment_csv)
    assert seen["listed"] == [] and "nothing was changed" in seen["second"]
    assert [d.name for d in datastore.list_datasets()] == ["reviews"] and saved.rows == 240


def test_a_failed_validation_frees_the_name(home: Path, sentiment_csv: Path) -> None:
    bad = datastore.stage_upload("s1", "bad.csv", b"text,label\nonly one row,pos\n")
    with pytest.raises(DataError):
        datastore.save_dataset("reviews", bad)
    assert not (datastore.datasets_dir() / "reviews").exists()
    assert datastore.save_dataset("reviews", sentiment_csv).rows == 240


def test_an_abandoned_reservation_is_reclaimed_but_a_fresh_one_is_not(home: Path, sentiment_csv: Path) -> None:
    folder = datastore.datasets_dir() / "reviews"
    folder.mkdir(parents=True)  # a save that crashed before writing its record
    (folder / "data.csv").write_text("half")
    with pytest.raises(DataError, match="being saved"):
        datastore.save_dataset("reviews", sentiment_csv)
    past = time.time() - datastore.STAGE_TTL_S - 60
    os.utime(folder, (past, past))
    saved = datastore.save_dataset("reviews", sentiment_csv)
    assert Path(saved.path).read_bytes() == sentiment_csv.read_bytes()
