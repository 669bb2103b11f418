"""Exceptions that fecli reports to users as one clear line.

Every expected failure (a bad file, a refused run, an invalid option value) is a
:class:`FecliError`; the CLI prints its message on stderr and exits with
:attr:`FecliError.exit_code`. Anything else is a bug and keeps its traceback
(shown with ``fecli --debug``).
"""

from __future__ import annotations

#: Exit statuses of the command line: success, a runtime failure (bad file, refused or failed
#: work, invalid option value), a usage error (unknown option or method, malformed value), and
#: an interrupt (Ctrl-C; 128 + SIGINT, as shells report it).
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class FecliError(Exception):
    """An expected failure, described in one sentence for the user."""

    exit_code = EXIT_FAILURE


class ModelFileError(FecliError):
    """A model file is missing, unreadable or does not follow the fecli-rbm format."""


class InvalidModelError(FecliError, ValueError):
    """Model parameters with the wrong shapes or non-finite values (NaN, inf)."""


class DataFileError(FecliError):
    """A data file is missing, unreadable or holds values fecli cannot use."""


class RefusedError(FecliError):
    """The requested work is refused (too large, unsupported) before it starts."""


class InvalidOptionError(FecliError, ValueError):
    """An option value is outside its valid range or does not apply to a method."""


class EstimationFailedError(FecliError):
    """An estimator ran but could not produce a trustworthy number."""
