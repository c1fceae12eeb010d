"""Who may do what: the acting user (`Actor`), the owner record kept beside each run and saved
dataset (`Access`, in the object's `access.json`), and the one rule (`allowed`) that the CLI, the
dashboard and any later API apply through `core.workspace`.

The rule, by role:

- ``instructor``: everything, including other people's work.
- ``student``: read, change, share and delete their own work; read what is shared with the class.
- ``viewer``: read what is shared with the class (stakeholders: Runs, Compare, reports); no changes.

Objects made before there were accounts have no owner record; they belong to the local user
(`LOCAL_OWNER`), so on a server with accounts only instructors see them until someone shares them.
Another person's private object must look exactly like one that does not exist (`hidden`), so
callers raise their ordinary "not found" error when `allowed(actor, "read", ...)` is False.

May import: core.errors, core.runs (atomic writes), the standard library.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from core.errors import ConfigError
from core.runs import atomic_write_json

ROLES = ("instructor", "student", "viewer")
ROLE_HELP = {
    "instructor": "everything, including other people's work, users and quotas",
    "student": "their own work plus what is shared with the class",
    "viewer": "read-only: shared runs, Compare and reports (for stakeholders)",
}
ACTIONS = ("read", "change", "share", "delete")
LOCAL_OWNER = "local"
ACCESS_FILE = "access.json"
# A user name ends up in folder names, file names, cookies and HTML: letters, digits, '.', '_', '-'
# only, starting with a letter or digit, so it is never a path, markup or a flag.
USER_NAME = re.compile(r"(?=.{1,32}$)[a-z0-9][a-z0-9_-]*(\.[a-z0-9_-]+)*")  # no "..", no trailing "."
# Owner names the server gives itself: the local user and a browser without login. An account with
# one of these names would inherit their work, so none may be created.
RESERVED = re.compile(r"local|ui-[0-9a-f]{16}")


@dataclass(frozen=True)
class Actor:
    """The user a call acts for. `local` is the one user of a server without accounts."""

    name: str
    role: str
    local: bool = False

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ConfigError(f"Unknown role {self.role!r}; use one of {', '.join(ROLES)}.")

    @property
    def is_instructor(self) -> bool:
        return self.role == "instructor"

    @property
    def can_write(self) -> bool:
        """May create work (train, save datasets, explain into a run folder)."""
        return self.role in ("instructor", "student")


LOCAL = Actor(LOCAL_OWNER, "instructor", local=True)


@dataclass(frozen=True)
class Access:
    """The owner record of one object; `shared` makes it visible to the whole class."""

    owner: str = LOCAL_OWNER
    shared: bool = False


def check_user_name(name: str) -> str:
    """`name` if it can be a user name, else a ConfigError that says what is allowed."""
    if not isinstance(name, str) or not USER_NAME.fullmatch(name):
        shown = repr(name)[:40] if isinstance(name, str) else type(name).__name__
        raise ConfigError(f"User name {shown} is not allowed; use 1-32 lower-case letters, digits, '.', '_' or "
                          "'-', starting with a letter or digit (a '.' only between other characters).")
    return name


def check_account_name(name: str) -> str:
    """`check_user_name`, and not a name the server uses for itself."""
    check_user_name(name)
    if RESERVED.fullmatch(name):
        raise ConfigError(f"User name {name!r} is reserved (tunescope uses it for work made without login); pick "
                          "another.")
    return name


def allowed(actor: Actor, action: str, access: Access) -> bool:
    """Whether `actor` may `action` ("read", "change", "share", "delete") the object `access` describes."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    if actor.is_instructor:
        return True
    own = access.owner == actor.name
    if action == "read":
        return own or access.shared
    return own and actor.can_write


def read_access(folder: Path) -> Access:
    """The owner record of the run or dataset in `folder`.

    Falls back to the owner a job wrote into `job.json` (runs made by jobs before owner records
    existed), then to the local user. A damaged record is treated as the local user's, which only
    instructors see: it fails closed."""
    for name in (ACCESS_FILE, "job.json"):
        p = Path(folder) / name
        try:
            d = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            continue
        except (OSError, ValueError):
            return Access()
        if not isinstance(d, dict):
            return Access()
        owner = d.get("owner")
        if not isinstance(owner, str) or not USER_NAME.fullmatch(owner):
            # Job owners from before accounts ("ui-<browser>") are valid names too; anything else is not.
            owner = LOCAL_OWNER
        return Access(owner=owner, shared=bool(d.get("shared")) if name == ACCESS_FILE else False)
    return Access()


def write_access(folder: Path, access: Access) -> None:
    """Store the owner record (private to the server account, like the folder it sits in)."""
    check_user_name(access.owner)
    path = Path(folder) / ACCESS_FILE
    atomic_write_json(path, {"owner": access.owner, "shared": bool(access.shared)})
    with contextlib.suppress(OSError):
        os.chmod(path, 0o600)


def make_private_dir(path: Path) -> Path:
    """Create `path` (and missing parents) readable by the server account only (0700)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        os.chmod(path, 0o700)
    return path
