"""Enrolling a batch manifest's subjects and visits in a trial database before reading them."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from recist_tool.errors import InputError

if TYPE_CHECKING:
    from recist_tool.store import TrialStore

__all__ = ["enrol_manifest"]


def enrol_manifest(store: TrialStore, manifest: str | os.PathLike[str], *, trial: str = "recist-batch",
                   criteria: str = "RECIST 1.1", reader: str | None = None
                   ) -> dict[tuple[str, str], tuple[str, str | None]]:
    """Create the trial, subjects and visits of a batch manifest that are not in the database yet.

    Parameters
    ----------
    store : TrialStore
    manifest : path
        A ``recist batch`` manifest (CSV or TOML), e.g. the one ``recist sample-data`` writes.
    trial, criteria : str
        Trial to create when absent.
    reader : str, optional
        An existing account to check (no account is created when it exists).

    Returns
    -------
    dict
        ``(subject, visit) → (series_path, series_uid)``, the ``series_paths`` of
        :class:`recist_tool.reading.ReadingSession`.
    """
    from recist_tool.batch.manifest import plan_cases, read_manifest, series_locations
    from recist_tool.batch.persist import TrialSetup, prepare_store

    cases = read_manifest(manifest)
    plans = plan_cases(cases)
    names = {r.name for r in store.readers()}
    if reader is not None and reader not in names:
        raise InputError(f"reader {reader!r} has no account in this database")
    prepare_store(store, plans, reader=reader or next(iter(sorted(names)), "batch"),
                  trial=TrialSetup(trial, criteria))
    return series_locations(cases)
