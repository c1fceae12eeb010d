"""Pure helpers for the Data page: the frames behind its charts and the advice next to each warning."""

from __future__ import annotations

import pandas as pd

from core.data.dataset import SPLITS, LabeledData

# keyword in a loader warning -> what the user can do about it
_HINTS = (
    ("leak", "The same example sits in more than one split, so test scores will look better than they "
             "are: remove the duplicates, or give an explicit split column that keeps them together."),
    ("duplicate", "Duplicates weigh those examples twice; remove them unless they are intended."),
    ("imbalance", "A rare class will be learned poorly and accuracy hides it: watch macro-F1 and the "
                  "per-class bars, or collect more examples of the small classes."),
    ("truncat", "Long texts are cut at the model's max length: raise 'Max length' on the Train page, or "
                "accept that only the beginning of each text is read."),
)


def hint_for(warning: str) -> str | None:
    low = warning.lower()
    return next((hint for key, hint in _HINTS if key in low), None)


def balance_frame(data: LabeledData) -> pd.DataFrame:
    """Columns label, split, n: examples per class and split, classes in the dataset's label order."""
    rows = []
    for split in SPLITS:
        counts = data.splits[split]["label"].astype(str).value_counts()
        rows += [{"label": label, "split": split, "n": int(counts.get(label, 0))} for label in data.labels]
    return pd.DataFrame(rows)


def length_frame(data: LabeledData) -> pd.DataFrame:
    """Columns label, words: text length in words of every example (all splits)."""
    frame = pd.concat([data.splits[s][["input", "label"]] for s in SPLITS], ignore_index=True)
    return pd.DataFrame({"label": frame["label"].astype(str),
                         "words": frame["input"].astype(str).str.split().str.len()})


def preview_frame(data: LabeledData, n: int = 50) -> pd.DataFrame:
    """The first `n` examples across splits with their split named (what a user checks first)."""
    parts = [data.splits[s][["input", "label"]].assign(split=s) for s in SPLITS]
    return pd.concat(parts, ignore_index=True).head(n)


def image_sample(data: LabeledData, n: int = 12) -> pd.DataFrame:
    """Up to `n` examples for a thumbnail grid, taken in turn from each class (label order) so every
    class shows up before any shows twice; columns input, label, split. Deterministic: the first
    examples of each class in split order."""
    frame = pd.concat([data.splits[s][["input", "label"]].assign(split=s) for s in SPLITS], ignore_index=True)
    frame["label"] = frame["label"].astype(str)
    # rank within its class (0 for the first example of each class), then class order breaks ties
    order = {str(label): i for i, label in enumerate(data.labels)}
    frame["_rank"] = frame.groupby("label").cumcount()
    frame["_class"] = frame["label"].map(order).fillna(len(order))
    picked = frame.sort_values(["_rank", "_class"], kind="stable").head(n)
    return picked.drop(columns=["_rank", "_class"]).reset_index(drop=True)
