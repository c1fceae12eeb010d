"""Where tunescope keeps datasets under $TUNESCOPE_HOME, and the names allowed there.

Both the saved-dataset store (which writes there) and source resolution (which treats anything
there as tunescope's own, so its image paths stay confined) read these, so they live below both.
"""

from __future__ import annotations

import re
from pathlib import Path

from core.runs import tunescope_home

NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,47}")  # a saved dataset's name, also its folder's
# A browser's private staging folder: a random id, and "@<user name>" on a server with accounts (so
# whose upload it is can be read from the path; see core.workspace.upload_folder). Never "..".
SESSION_ID = re.compile(r"[A-Za-z0-9_-]{1,64}(@[a-z0-9][a-z0-9_-]*(\.[a-z0-9_-]+)*)?")
META = "dataset.json"  # a saved dataset's record, written last


def datasets_dir() -> Path:
    return tunescope_home() / "datasets"


def uploads_dir() -> Path:
    return tunescope_home() / "uploads"
