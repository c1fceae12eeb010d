"""Image paths in an uploaded or saved CSV stay inside that dataset's own folder; a user's own CSV given
on the command line keeps local paths (review item 3)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fixtures_data import image_bytes, image_entries, write_csv, write_image_folder

from core.config import DataConfig, RunConfig
from core.data import load_dataset, load_for_config
from core.data import store as datastore
from core.errors import DataError

PER_CLASS = {"red": 5, "blue": 5}


def _rows(prefix: str = "imgs/") -> list[tuple[str, str]]:
    return [(f"{prefix}{label}/{i}.png", label) for label in PER_CLASS for i in range(PER_CLASS[label])]


def _stored_csv(home: Path, rows: list[tuple[str, str]], where: str = "datasets/pics") -> Path:
    """A CSV of paths with its images, in tunescope's own storage (a saved dataset's or an upload's folder)."""
    folder = home / where
    write_image_folder(folder / "imgs", image_entries(PER_CLASS))
    return write_csv(folder / "data.csv", rows, header=("path", "label"))


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """An image on the server outside every dataset folder, the kind an attacker would point at."""
    secret = tmp_path / "private" / "secret.png"
    secret.parent.mkdir()
    secret.write_bytes(image_bytes(seed=99))
    return secret


def _assert_hides_the_server(message: str, home: Path, *more: Path) -> None:
    for hidden in (home, home.resolve(), *more):
        assert str(hidden) not in message, message


@pytest.mark.parametrize("where", ["datasets/pics", "uploads/abc123"])
def test_relative_paths_inside_the_folder_work(home: Path, where: str) -> None:
    data = load_dataset(_stored_csv(home, _rows(), where))
    assert data.task == "image" and sum(data.sizes().values()) == 10
    folder = (home / where).resolve()
    assert all(Path(ref).resolve().is_relative_to(folder) for s in data.splits.values() for ref in s["input"])


@pytest.mark.parametrize("kind", ["absolute", "absolute-missing", "home", "dotdot", "dotdot-missing", "symlink"])
def test_paths_leaving_a_stored_dataset_are_refused_naming_the_row(home: Path, outside: Path, kind: str) -> None:
    rows = _rows()
    folder = home / "datasets" / "pics"
    rel_outside = os.path.relpath(outside, folder)
    bad = {"absolute": str(outside), "absolute-missing": str(outside.with_name("nothing.png")),
           "home": "~/secret.png", "dotdot": rel_outside,
           "dotdot-missing": os.path.relpath(outside.with_name("nothing.png"), folder),
           "symlink": "imgs/red/link.png"}[kind]
    rows[3] = (bad, "red")  # spreadsheet row 5: the header is row 1
    path = _stored_csv(home, rows)
    if kind == "symlink":
        (folder / "imgs" / "red" / "link.png").symlink_to(outside)
    with pytest.raises(DataError) as err:
        load_dataset(path)
    message = str(err.value)
    assert "'data.csv' row 5" in message and "outside this dataset's own folder" in message, message
    assert "ZIP" in message  # what to do instead
    _assert_hides_the_server(message, home, outside.parent, outside.parent.resolve())


def test_outside_message_is_the_same_whether_or_not_the_target_exists(home: Path, outside: Path) -> None:
    messages = []
    for target in (outside, outside.with_name("nothing.png")):
        rows = _rows()
        rows[0] = (str(target), "red")
        with pytest.raises(DataError) as err:
            load_dataset(_stored_csv(home, rows))
        messages.append(str(err.value))
    assert messages[0] == messages[1]


def test_a_missing_image_inside_the_folder_does_not_show_the_server_folder(home: Path) -> None:
    rows = _rows()
    rows[2] = ("imgs/red/missing.png", "red")
    with pytest.raises(DataError, match=r"'data\.csv' row 4 points to 'imgs/red/missing\.png'") as err:
        load_dataset(_stored_csv(home, rows))
    _assert_hides_the_server(str(err.value), home)


def test_the_worker_applies_the_same_rule_to_a_queued_saved_dataset(home: Path, outside: Path) -> None:
    # Jobs carry only a RunConfig: the rule must follow from where the CSV lives, not from a keyword.
    rows = _rows()
    rows[0] = (str(outside), "red")
    cfg = RunConfig(data=DataConfig(source=str(_stored_csv(home, rows))))
    with pytest.raises(DataError, match="outside this dataset's own folder"):
        load_for_config(cfg)


def test_a_staged_upload_cannot_read_other_sessions_files(home: Path) -> None:
    other = write_image_folder(home / "uploads" / "victim" / "imgs", image_entries(PER_CLASS))
    assert other.is_dir()
    body = "path,label\n" + "".join(f"../victim/{p},{lab}\n" for p, lab in _rows())
    staged = datastore.stage_upload("attacker", "images.csv", body.encode())
    with pytest.raises(DataError, match="row 2 .*outside this dataset's own folder"):
        load_dataset(staged)


def test_a_users_own_csv_on_the_command_line_keeps_local_paths(tmp_path: Path, home: Path, outside: Path) -> None:
    project = tmp_path / "project"
    write_image_folder(project / "imgs", image_entries(PER_CLASS))
    rows = _rows()
    rows[0] = (str(outside), "red")  # absolute: the user's own file
    rows[1] = (os.path.relpath(outside, project), "red")  # and '..'
    path = write_csv(project / "images.csv", rows, header=("path", "label"))
    data = load_dataset(path)
    inputs = {ref for s in data.splits.values() for ref in s["input"]}
    assert str(outside.resolve()) in inputs and len(inputs) == 9  # the two rows name one image
    cfg = RunConfig(data=DataConfig(source=str(path)))  # what `tunescope submit` hands the worker
    assert sum(load_for_config(cfg).sizes().values()) == 10


def test_the_dashboard_can_confine_any_source(tmp_path: Path, home: Path, outside: Path) -> None:
    project = tmp_path / "project"
    write_image_folder(project / "imgs", image_entries(PER_CLASS))
    rows = _rows()
    path = write_csv(project / "images.csv", rows, header=("path", "label"))
    assert load_dataset(path, confine=True).task == "image"  # inside its own folder: fine
    rows[0] = (str(outside), "red")
    write_csv(path, rows, header=("path", "label"))
    with pytest.raises(DataError, match="outside this dataset's own folder"):
        load_dataset(path, confine=True)


def test_an_image_folder_in_storage_cannot_link_out(home: Path, outside: Path) -> None:
    root = write_image_folder(home / "datasets" / "pics", image_entries(PER_CLASS))
    (root / "red" / "link.png").symlink_to(outside)
    with pytest.raises(DataError, match="'red/link.png' .*outside this dataset's own folder") as err:
        load_dataset(root)
    _assert_hides_the_server(str(err.value), home, outside.parent)


def test_saving_a_csv_of_image_paths_is_refused_with_advice(tmp_path: Path, home: Path) -> None:
    project = tmp_path / "project"
    write_image_folder(project / "imgs", image_entries(PER_CLASS))
    path = write_csv(project / "images.csv", _rows(), header=("path", "label"))
    with pytest.raises(DataError, match=r"upload a ZIP of <label>/<image> folders instead"):
        datastore.save_dataset("pics", path)
    assert datastore.list_datasets() == []
    assert not (datastore.datasets_dir() / "pics").exists()  # the name is free again


def test_a_vanished_image_or_archive_is_named_without_its_folder(tmp_path: Path) -> None:
    from fixtures_data import write_zip

    from core.data import open_image

    data = load_dataset(write_zip(tmp_path / "pics.zip", image_entries(PER_CLASS)))
    (tmp_path / "pics.zip").unlink()
    for ref in (data.split("train")["input"].iloc[0], str(tmp_path / "gone.png")):
        with pytest.raises(DataError) as err:
            open_image(ref)
        message = str(err.value)
        assert str(tmp_path) not in message and ("'pics.zip'" in message or "'gone.png'" in message), message


def test_a_vanished_stored_dataset_is_named_without_the_server_folder(home: Path) -> None:
    from core.data import load_dataset
    from core.errors import DataError

    gone = home / "datasets" / "classdata" / "data.csv"
    with pytest.raises(DataError) as err:
        load_dataset(gone)
    assert "'data.csv' is no longer there" in str(err.value) and str(home) not in str(err.value)
    with pytest.raises(DataError, match="does not exist"):  # a CLI user's own path is theirs to see
        load_dataset(home.parent / "mine.csv")
