"""What the trial store returns and raises: plain frozen records (never live ORM rows) and the
store's own errors. :class:`~recist_tool.store.service.TrialStore` builds them; exports, reports,
the reading workstation and the batch read them.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from recist_tool.errors import StoreError

__all__ = ["AuthenticationError", "Discrepancy", "LockedRecordError", "MeasurementInfo",
           "ReadInfo", "ReaderInfo", "ResponseInfo", "SubjectInfo", "TimepointInfo"]


class LockedRecordError(StoreError):
    """A write to a signed (locked) record."""


class AuthenticationError(StoreError):
    """Unknown reader, inactive account or wrong password."""


@dataclass(frozen=True)
class ReaderInfo:
    """A reader account (never the password hash)."""

    name: str
    full_name: str
    role: str
    active: bool


@dataclass(frozen=True)
class SubjectInfo:
    """A subject's trial, its criteria and policies, and the subject's reference date."""

    code: str
    trial: str
    criteria: str
    policies: dict[str, Any]
    reference_date: _dt.date | None


@dataclass(frozen=True)
class TimepointInfo:
    """A subject's visit: date, visit number and where its CT series lies.

    ``series_path`` is the folder, zip or volume file the series was read from (as given to the
    loader), so that ``recist_tool.io.load_volume(series_path, series_uid)`` reopens it; None when
    the visit was entered without images. It is a local path and is never exported.
    """

    visit: str
    date: _dt.date
    visit_num: Decimal | None
    study_uid: str | None
    series_uid: str | None
    series_path: str | None


@dataclass(frozen=True)
class MeasurementInfo:
    """One lesion at one timepoint in one read version."""

    lesion_id: str
    category: str
    organ: str
    nodal: bool
    state: str
    long_axis_mm: Decimal | None
    short_axis_mm: Decimal | None
    fragments_mm: tuple[Decimal, ...]
    endpoints_lps: dict[str, Any] | None
    volume_ml: Decimal | None
    mask_path: str | None
    mask_sha256: str | None
    segmenter: str | None
    segmenter_version: str | None
    method: str

    @property
    def diameter_mm(self) -> Decimal | None:
        """The RECIST diameter: short axis for a node, long axis otherwise."""
        return self.short_axis_mm if self.nodal else self.long_axis_mm


@dataclass(frozen=True)
class ResponseInfo:
    """Stored response of one read version (computed, and confirmed at signing)."""

    visit: str
    date: _dt.date
    version: int
    target: str | None
    non_target: str | None
    new_lesions: str
    overall: str
    sod_mm: Decimal | None
    baseline_mm: Decimal | None
    nadir_mm: Decimal | None
    reasons: tuple[str, ...]
    confirmed_overall: str | None
    confirm_reason: str | None


@dataclass(frozen=True)
class ReadInfo:
    """A reader's read of one timepoint (one version) with its measurements and response."""

    subject: str
    visit: str
    date: _dt.date
    reader: str
    version: int
    status: str
    amend_reason: str | None
    measurements: tuple[MeasurementInfo, ...]
    response: ResponseInfo | None
    signatures: tuple[dict[str, Any], ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Discrepancy:
    """Two readers' overall responses at one visit (current versions) and any adjudication."""

    visit: str
    date: _dt.date
    responses: dict[str, str | None]
    differ: bool
    adjudicated_reader: str | None = None
    adjudication_reason: str | None = None
