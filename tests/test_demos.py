import zipfile

import pandas as pd
import pytest
from PIL import Image

from core.data import load_dataset
from core.demos import DEMOS, assets_dir, demo_path, get_demo, is_demo, list_demos
from core.errors import DataError


def test_assets_stay_small():
    total = sum(p.stat().st_size for p in assets_dir().rglob("*") if p.is_file())
    assert total < 20 * 2**20


@pytest.mark.parametrize("name", ["sentiment", "news"])
def test_text_demos_match_their_specs(name):
    spec = get_demo(name)
    path = demo_path(name)
    df = pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)
    assert len(df) == spec.num_examples
    assert df["label"].nunique() == spec.num_classes
    assert df["text"].str.strip().str.len().min() > 0


@pytest.mark.parametrize("name", ["fashion", "digits"])
def test_image_demos_are_label_folders_of_pngs(name):
    spec = get_demo(name)
    with zipfile.ZipFile(demo_path(name)) as z:
        names = z.namelist()
        assert len(names) == spec.num_examples
        assert all(n.count("/") == 1 and n.endswith(".png") for n in names)
        assert len({n.split("/")[0] for n in names}) == spec.num_classes
        with z.open(names[0]) as f:
            assert Image.open(f).size in ((28, 28), (8, 8))


@pytest.mark.parametrize("name", list(DEMOS))
def test_every_demo_loads_through_the_validating_loader(name):
    data = load_dataset(f"demo:{name}", max_samples=200)
    spec = get_demo(name)
    assert data.task == spec.task and data.num_labels == spec.num_classes
    assert sum(data.sizes().values()) == 200


def test_unknown_demo_lists_the_choices():
    with pytest.raises(DataError, match="choose one of: demo:sentiment, demo:news"):
        get_demo("nope")


def test_demo_prefix():
    assert is_demo("demo:news") and not is_demo("news.csv")
    assert [d.name for d in list_demos()] == ["sentiment", "news", "fashion", "digits"]
