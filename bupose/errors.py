"""Errors for expected mistakes (bad files, bad arguments).

The CLI prints them without a traceback.
"""

from __future__ import annotations


class BuposeError(Exception):
    """An expected user-facing error; the message names the file and the problem."""


class DataError(BuposeError):
    """A dataset, annotation, image or results file is missing or malformed."""


class ConfigError(BuposeError):
    """A configuration file, spec file or command-line value is invalid."""


class CheckpointError(BuposeError):
    """A checkpoint cannot be read or does not fit the model."""
