"""Data page: demos, uploads (valid, bad row, not a dataset, images), saving and the saved list."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pandas as pd
from apptest_support import open_app_page, plain
from streamlit.testing.v1 import AppTest

from core.data.dataset import LabeledData
from dashboard import data_view as dv


def _page() -> AppTest:
    return open_app_page("data")


def _upload(at: AppTest, name: str, data: bytes) -> AppTest:
    at.file_uploader(key="data_upload").set_value((name, data, "application/octet-stream")).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _image_zip() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for label, colour in (("red", (220, 20, 20)), ("blue", (20, 20, 220))):
            for i in range(6):
                img = io.BytesIO()
                Image.new("RGB", (12, 12), colour).save(img, format="PNG")
                z.writestr(f"{label}/{i}.png", img.getvalue())
    return buf.getvalue()


def test_demo_shows_sizes_and_charts(home: Path) -> None:
    at = _page()
    assert at.selectbox(key="data_demo").value == "sentiment"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Task"] == "text" and metrics["Classes"] == "2"
    assert int(metrics["Train"].replace(",", "")) > 5000
    assert len(at.get("plotly_chart")) == 2
    assert not at.error


def test_upload_valid_csv_save_and_refuse_a_taken_name(home: Path, sentiment_csv: Path) -> None:
    from core.data.store import list_datasets

    at = _upload(_page(), "reviews.csv", sentiment_csv.read_bytes())
    assert at.dataframe[0].value["label"].isin(["positive", "negative"]).all()
    assert at.text_input(key="data_name").value == "reviews"
    at.button(key="data_save").click().run()
    assert "Saved as **reviews**" in at.success[0].value
    [saved] = list_datasets()
    assert saved.name == "reviews" and saved.rows == 240
    assert "Where you can use it:" in at.markdown[-1].value and "Train page" in at.markdown[-1].value
    before = Path(saved.path).read_bytes()
    # A second click on Save (a student who was not sure) reports the first save's success.
    at.button(key="data_save").click().run()
    assert not at.error and "Saved as **reviews**" in at.success[0].value
    assert len(list_datasets()) == 1 and Path(saved.path).read_bytes() == before
    # Another file under that name is refused, and the saved one is untouched.
    other = sentiment_csv.read_bytes() + b"one more lovely review,positive\n"
    at = _upload(at, "reviews.csv", other)
    at.text_input(key="data_name").input("reviews").run()
    at.button(key="data_save").click().run()
    assert "exists already" in at.error[0].value
    assert len(list_datasets()) == 1 and Path(saved.path).read_bytes() == before


def test_the_name_follows_each_new_upload(home: Path, sentiment_csv: Path) -> None:
    at = _upload(_page(), "reviews.csv", sentiment_csv.read_bytes())
    assert at.text_input(key="data_name").value == "reviews"
    at = _upload(at, "Class Survey 2026.csv", sentiment_csv.read_bytes())
    assert at.text_input(key="data_name").value == "class-survey-2026"
    at.text_input(key="data_name").input("my-name").run()  # a name typed by hand stays while the file does
    assert at.text_input(key="data_name").value == "my-name"


def test_bad_row_is_named_and_nothing_is_stored(home: Path) -> None:
    from core.data.store import list_datasets

    lines = ["text,label"] + [f"text number {i},{'pos' if i % 2 else 'neg'}" for i in range(1, 31)]
    lines[7] = "a review without a label,"  # row 8 as a spreadsheet numbers it (the header is row 1)
    at = _upload(_page(), "bad.csv", ("\n".join(lines) + "\n").encode())
    message = plain(at.error[0].value)
    assert "'bad.csv'" in message and "row 8" in message, message
    assert not at.get("plotly_chart")
    assert not [b for b in at.button if b.key == "data_save"]
    assert list_datasets() == []
    assert not (home / "datasets").exists() or not any((home / "datasets").iterdir())


def test_not_a_dataset_is_a_readable_error(home: Path) -> None:
    at = _upload(_page(), "notes.csv", b"\x00\x01\x02 binary junk \xff\xfe")
    assert at.error and "Traceback" not in at.error[0].value
    empty_zip = io.BytesIO()
    with zipfile.ZipFile(empty_zip, "w") as z:
        z.writestr("readme.txt", "no images here")
    at = _upload(_page(), "empty.zip", empty_zip.getvalue())
    assert at.error and "image" in at.error[0].value.lower()


def test_image_zip_shows_thumbnails_and_balance(home: Path) -> None:
    at = _upload(_page(), "colours.zip", _image_zip())
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Task"] == "image" and metrics["Classes"] == "2"
    images = at.get("image")
    assert len(images) == 12  # a thumbnail grid, classes taken in turn
    captions = [plain(c.caption) for img in images for c in img.proto.imgs]
    assert sum(c.startswith("red (") for c in captions) == 6 and sum(c.startswith("blue (") for c in captions) == 6
    assert len(at.get("plotly_chart")) == 1  # class balance (no text lengths for images)


def test_data_view_helpers() -> None:
    splits = {
        "train": pd.DataFrame({"input": ["a b", "c d e", "f"], "label": ["x", "y", "x"], "label_id": [0, 1, 0]}),
        "validation": pd.DataFrame({"input": ["g"], "label": ["y"], "label_id": [1]}),
        "test": pd.DataFrame({"input": ["h i j k"], "label": ["x"], "label_id": [0]}),
    }
    data = LabeledData(task="text", labels=["x", "y"], splits=splits, source="s", name="n")
    bal = dv.balance_frame(data)
    assert bal.set_index(["split", "label"])["n"].to_dict() == {
        ("train", "x"): 2, ("train", "y"): 1, ("validation", "x"): 0, ("validation", "y"): 1,
        ("test", "x"): 1, ("test", "y"): 0}
    assert dv.length_frame(data)["words"].tolist() == [2, 3, 1, 1, 4]
    assert dv.preview_frame(data, 4)["split"].tolist() == ["train", "train", "train", "validation"]
    grid = dv.image_sample(data, 3)
    assert grid["label"].tolist() == ["x", "y", "x"] and grid["input"].tolist() == ["a b", "c d e", "f"]
    assert dv.image_sample(data, 10)["split"].tolist() == ["train", "train", "train", "validation", "test"]
    assert "split column" in dv.hint_for("3 examples leak across splits")
    assert dv.hint_for("nothing to see") is None


def test_column_choice_error_and_empty_upload_keep_the_page_usable(home: Path, sentiment_csv: Path) -> None:
    at = _upload(_page(), "reviews.csv", sentiment_csv.read_bytes())
    at.selectbox(key="data_label_col").set_value("text").run()
    assert "no recognisable text column" in at.error[0].value  # the loader's own words, verbatim
    assert "Choose the text and label columns in the boxes above" in " ".join(c.value for c in at.caption)
    at.selectbox(key="data_text_col").set_value("text").run()
    assert "for both text and label" in at.error[0].value
    at.selectbox(key="data_label_col").set_value("auto").run()
    assert not at.error and {m.label: m.value for m in at.metric}["Classes"] == "2"
    # The runs without a save form forgot the name box; it comes back with the upload's name.
    assert at.text_input(key="data_name").value == "reviews"
    at = _upload(_page(), "empty.csv", b"")
    assert "is empty (0 bytes)" in plain(at.error[0].value)
    assert "Saved datasets" in [h.value for h in at.subheader]  # the rest of the page is still there


def test_delete_needs_confirmation_and_updates_the_page(home: Path, sentiment_csv: Path) -> None:
    from core.data.store import list_datasets, save_dataset

    save_dataset("reviews", sentiment_csv)
    at = _page()
    at.selectbox(key="data_saved_pick").set_value("reviews").run()
    assert {m.label: m.value for m in at.metric}["Train"] == "168"  # the saved one replaces the demo
    at.selectbox(key="data_delete_name").set_value("reviews").run()
    assert at.button(key="data_delete").disabled  # not without the confirmation
    at.checkbox(key="data_delete_sure").check().run()
    at.button(key="data_delete").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert list_datasets() == []
    assert "Deleted reviews." in plain(at.success[0].value)
    assert at.selectbox(key="data_saved_pick").options == []  # gone from the picker and the table at once
    assert not [d for d in at.dataframe if "reviews" in d.value.to_string()]
    assert int({m.label: m.value for m in at.metric}["Train"].replace(",", "")) > 5000  # back on the demo
    assert not [c for c in at.checkbox if c.key == "data_delete_sure"]


def test_an_uploaded_csv_of_server_paths_shows_no_server_image(home: Path, tmp_path: Path) -> None:
    from fixtures_data import image_bytes

    secret = tmp_path / "private" / "secret.png"
    secret.parent.mkdir()
    secret.write_bytes(image_bytes(seed=5))
    rows = [f"{secret},{'a' if i % 2 else 'b'}" for i in range(12)]
    at = _upload(_page(), "paths.csv", ("path,label\n" + "\n".join(rows) + "\n").encode())
    message = plain(at.error[0].value)
    assert "'paths.csv' row 2" in message and "outside this dataset's own folder" in message, message
    assert str(tmp_path) not in message and str(home) not in message
    assert not at.get("image") and not [b for b in at.button if b.key == "data_save"]


def test_reruns_serve_the_dataset_from_the_byte_bounded_cache(home: Path, sentiment_csv: Path,
                                                               monkeypatch) -> None:
    import core.data

    calls = []
    real = core.data.load_dataset

    def counting(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(core.data, "load_dataset", counting)
    at = _upload(_page(), "reviews.csv", sentiment_csv.read_bytes())
    staged = [c for c in calls if str(c).endswith("reviews.csv")]
    assert len(staged) == 1 and {m.label: m.value for m in at.metric}["Classes"] == "2"
    at.run()  # a rerun (any widget change) must not read and validate the file again
    assert [c for c in calls if str(c).endswith("reviews.csv")] == staged
    assert {m.label: m.value for m in at.metric}["Classes"] == "2" and not at.error
