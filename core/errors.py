"""Typed errors. Every message is one sentence a user can act on: what, where, and what to do.

The CLI maps `TunescopeError` to exit code 2 with the message on stderr; anything else is a bug.
"""

from __future__ import annotations


class TunescopeError(Exception):
    """Base for every error caused by user input or environment (not by a bug)."""


class ConfigError(TunescopeError, ValueError):
    """A configuration value is out of range or inconsistent."""


class DataError(TunescopeError, ValueError):
    """A dataset cannot be used as given."""


class FileTooLargeError(DataError):
    pass


class EmptyFileError(DataError):
    pass


class HeaderOnlyError(DataError):
    pass


class EncodingError(DataError):
    pass


class MalformedRowError(DataError):
    pass


class MissingColumnError(DataError):
    pass


class EmptyTextError(DataError):
    pass


class MissingLabelError(DataError):
    pass


class SingleClassError(DataError):
    pass


class TooFewExamplesError(DataError):
    pass


class UnknownLabelError(DataError):
    """An evaluation file uses a label the model was not trained on."""


class UnsupportedFormatError(DataError):
    pass


class CorruptImageError(DataError):
    pass


class ImageTooLargeError(DataError):
    pass


class UnsafeArchiveError(DataError):
    pass


class ArchiveTooLargeError(DataError):
    pass


class ModelError(TunescopeError):
    """A model cannot be built or loaded."""


class ModelUnavailableError(ModelError):
    pass


class RunError(TunescopeError):
    """A run directory is missing, incomplete or inconsistent."""


class JobError(TunescopeError):
    """A job id is unknown, or a job cannot do what was asked."""


class DiskFullError(TunescopeError, OSError):
    """Not enough free disk space for a run's files (found before writing, or when a write ran out)."""


class ModelIntegrityError(RunError):
    """A run's saved model files differ from the SHA-256 hashes recorded when they were written."""


class QuotaError(JobError):
    """A submission would go over its owner's limits (waiting jobs, GPU hours a day); nothing was queued."""


class JobStoreDamagedError(JobError):
    """The job database fails its integrity check; `tunescope db rebuild` recovers the history."""


class DecodedTooLargeError(FileTooLargeError):
    """A small file that would decode into more rows, columns, values or bytes than the data limits allow."""
