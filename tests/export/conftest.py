"""Fixtures shared by the export tests (EDC, PACS, reports).

- ``scored_trial`` (in ``tests/conftest.py``): the synthetic sample trial scored once per session
  by ``run_batch`` (reader ``batch``, classic segmenter, reads open/unsigned) →
  ``ScoredTrial(db_path, sample_dir, ground_truth)``.
- ``signed_trial``: the same reads copied into a second database through the store API under
  other subject codes (``P-0001`` ...), with each subject's DICOM PatientID recorded in the store's
  identity table, read by reader ``rad1`` (password :data:`READER_PASSWORD`) and signed →
  ``SignedTrial(db_path, codes)`` where ``codes`` maps sample subject → exported subject code.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.conftest import ScoredTrial

READER = "rad1"
READER_PASSWORD = "rad1-password"
READER_FULL_NAME = "Reader One"
TRIAL = "ES-SCLC-SYN"


class SignedTrial(NamedTuple):
    db_path: Path
    codes: dict[str, str]


def copy_reads(src_db: Path, dest_db: Path, *, codes: dict[str, str],
               patient_ids: dict[str, str], sign: bool = True) -> None:
    """Copy ``batch``'s reads of ``src_db`` into ``dest_db`` under reader :data:`READER`.

    ``codes``: source subject → new code; ``patient_ids``: source subject → DICOM PatientID stored
    in the identity table (never exported). Each visit is signed when ``sign``.
    """
    from recist_tool.store import TrialStore

    with TrialStore(src_db) as src, TrialStore(dest_db) as dst:
        dst.add_reader(READER, READER_PASSWORD, full_name=READER_FULL_NAME)
        dst.add_trial(TRIAL, criteria="RECIST 1.1")
        for old, new in codes.items():
            info = src.subject_info(old)
            assert info is not None
            dst.add_subject(TRIAL, new, patient_id=patient_ids.get(old),
                            reference_date=info.reference_date)
            tps = src.timepoint_infos(old)
            for tp in tps:
                dst.add_timepoint(new, tp.visit, tp.date, study_uid=tp.study_uid,
                                  series_uid=tp.series_uid)
            seen: set[str] = set()
            for tp in tps:
                rd = src.get_read(old, tp.visit, reader="batch")
                for m in rd.measurements:
                    kw = dict(long_axis_mm=m.long_axis_mm, short_axis_mm=m.short_axis_mm)
                    if m.category.startswith("NEW") and m.lesion_id not in seen:
                        dst.record_new_lesion(new, tp.visit, m.lesion_id, reader=READER,
                                              organ=m.organ, nodal=m.nodal, category=m.category,
                                              **kw)
                    else:
                        if m.lesion_id not in seen:
                            dst.add_lesion(new, tp.visit, m.lesion_id, m.category, reader=READER,
                                           organ=m.organ, nodal=m.nodal)
                        dst.record_measurement(new, tp.visit, m.lesion_id, reader=READER,
                                               state=m.state, method=m.method,
                                               segmenter=m.segmenter, **kw)
                    seen.add(m.lesion_id)
            dst.compute_responses(new, reader=READER)
            if sign:
                for tp in tps:
                    dst.sign(new, tp.visit, reader=READER, password=READER_PASSWORD)


@pytest.fixture(scope="session")
def signed_trial(scored_trial: ScoredTrial, tmp_path_factory: pytest.TempPathFactory
                 ) -> SignedTrial:
    """The scored reads, relabelled (``SYN-00n`` → ``P-000n``) and signed by ``rad1``."""
    db = tmp_path_factory.mktemp("export-signed") / "signed.db"
    subjects = sorted(scored_trial.ground_truth["subjects"])
    codes = {s: f"P-{i:04d}" for i, s in enumerate(subjects, start=1)}
    pids = {s: scored_trial.ground_truth["subjects"][s]["patient_id"] for s in subjects}
    old = os.environ.get("RECIST_SCRYPT_N")
    os.environ["RECIST_SCRYPT_N"] = "1024"  # cheap password hashing in tests
    try:
        copy_reads(scored_trial.db_path, db, codes=codes, patient_ids=pids)
    finally:
        if old is None:
            os.environ.pop("RECIST_SCRYPT_N", None)
        else:
            os.environ["RECIST_SCRYPT_N"] = old
    return SignedTrial(db, codes)


@pytest.fixture
def fast_scrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheap scrypt cost for tests that create readers."""
    monkeypatch.setenv("RECIST_SCRYPT_N", "1024")
