"""Report drafts: which explanations an author chose for their stakeholder report.

A draft is a small JSON file under `$TUNESCOPE_HOME/report_drafts/<owner>.json` (one per owner: a
dashboard session, or a name given to `tunescope report --draft`) listing explanation cache keys
with their run. The report embeds exactly these, never "whatever was computed last". Owner names,
run ids and keys are checked before they touch a path, so a draft cannot point outside its folder.
Imports only base modules (`core.runs`, `core.errors`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from core.errors import ConfigError
from core.runs import RUN_ID, atomic_write_json, tunescope_home

DRAFT_DIR = "report_drafts"
OWNER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
KEY = re.compile(r"[0-9a-f]{8,64}")
MAX_CHOSEN = 24


def drafts_dir() -> Path:
    return tunescope_home() / DRAFT_DIR


def draft_path(owner: str) -> Path:
    """The draft file of `owner`, confined to the drafts folder."""
    if not OWNER.fullmatch(str(owner)) or ".." in str(owner):
        raise ConfigError(f"Report draft name {str(owner)[:40]!r} is not allowed; use letters, digits, '.', '_' "
                          "and '-' (up to 64 characters).")
    base = drafts_dir().resolve()
    path = (base / f"{owner}.json").resolve()
    if path.parent != base:
        raise ConfigError("Report draft names cannot point outside the drafts folder.")
    return path


def _check(run_id: str, key: str) -> None:
    if not RUN_ID.fullmatch(str(run_id)) or ".." in str(run_id):
        raise ConfigError(f"Run id {str(run_id)[:40]!r} is not allowed in a report draft.")
    if not KEY.fullmatch(str(key)):
        raise ConfigError(f"Explanation key {str(key)[:40]!r} is not an explanation cache key.")


def chosen(owner: str) -> list[dict[str, str]]:
    """The explanations chosen in `owner`'s draft, in the order they were added: {run, key, label}.
    A missing or unreadable draft is an empty one; entries that fail the checks are dropped."""
    path = draft_path(owner)
    try:
        items = json.loads(path.read_text(encoding="utf-8")).get("explanations", [])
    except (OSError, ValueError, AttributeError):
        return []
    out = []
    for item in items if isinstance(items, list) else []:
        try:
            _check(item["run"], item["key"])
        except (ConfigError, KeyError, TypeError):
            continue
        out.append({"run": str(item["run"]), "key": str(item["key"]), "label": str(item.get("label", ""))[:200]})
    return out


def _save(owner: str, items: list[dict[str, str]]) -> None:
    path = draft_path(owner)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, {"version": 1, "explanations": items})


def is_chosen(owner: str, run_id: str, key: str) -> bool:
    return any(i["run"] == run_id and i["key"] == key for i in chosen(owner))


def add(owner: str, run_id: str, key: str, label: str = "") -> list[dict[str, str]]:
    """Add one explanation (once; adding it again changes nothing)."""
    _check(run_id, key)
    items = chosen(owner)
    if not any(i["run"] == run_id and i["key"] == key for i in items):
        if len(items) >= MAX_CHOSEN:
            raise ConfigError(f"A report holds at most {MAX_CHOSEN} explanations; remove one from the draft first.")
        items.append({"run": run_id, "key": key, "label": str(label)[:200]})
        _save(owner, items)
    return items


def remove(owner: str, run_id: str, key: str) -> list[dict[str, str]]:
    items = [i for i in chosen(owner) if not (i["run"] == run_id and i["key"] == key)]
    _save(owner, items)
    return items


def clear(owner: str) -> None:
    _save(owner, [])


def as_pairs(items: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(str(i["run"]), str(i["key"])) for i in items]
