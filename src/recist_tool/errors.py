"""The project's one exception hierarchy.

Every error meant for a user derives from :class:`RecistToolError`; the CLI turns it into a
single line and the exit code carried by the class (tracebacks only with ``--debug``).
"""

from __future__ import annotations


class RecistToolError(Exception):
    """Base class of all errors raised deliberately by recist-tool.

    Attributes
    ----------
    exit_code : int
        Process exit code the CLI uses for this error (3: input that cannot be used).
    """

    exit_code: int = 3


class InputError(RecistToolError):
    """A file, path or value given by the user cannot be used."""


class DicomLoadError(InputError):
    """DICOM data cannot be read or does not form a usable CT volume."""


class GeometryError(InputError):
    """Slice geometry is inconsistent (duplicate positions, mixed orientation, ...)."""


class UsageError(RecistToolError):
    """Options that contradict each other or are missing (exit code 2)."""

    exit_code = 2


class MeasurementError(RecistToolError):
    """A mask or caliper line cannot be measured (empty mask, degenerate line, ...)."""


class SegmentationError(RecistToolError):
    """A segmenter cannot produce a mask for the given prompt."""


class RuleViolation(RecistToolError):
    """Input that breaks a RECIST rule (e.g. more than 5 targets)."""


class StoreError(RecistToolError):
    """The trial database cannot be opened or written."""
