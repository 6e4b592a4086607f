"""No EDC export carries a DICOM patient identifier: only the trial's subject code."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pydicom
import pytest
from pydicom.errors import InvalidDicomError

from recist_tool.export import run_export
from recist_tool.store import TrialStore
from tests.export.conftest import ScoredTrial, SignedTrial

pytestmark = pytest.mark.slow  # the session fixtures score the sample trial (~40 s once)
EDC_FORMATS = ("odm", "sdtm", "dataset-json", "redcap")
TAGS = ("PatientName", "PatientID", "PatientBirthDate", "AccessionNumber")


def _datasets(root: Path):  # noqa: ANN202
    for path in sorted(root.rglob("*")):
        if path.suffix == ".zip":
            with zipfile.ZipFile(path) as zf:
                for name in zf.namelist():
                    try:
                        yield pydicom.dcmread(io.BytesIO(zf.read(name)), stop_before_pixels=True)
                    except InvalidDicomError:
                        continue
        elif path.is_file():
            try:
                yield pydicom.dcmread(path, stop_before_pixels=True)
            except InvalidDicomError:
                continue


def dicom_identifiers(root: Path) -> dict[str, set[str]]:
    """Every non-empty value of the identifying tags written in the sample trial's files."""
    found: dict[str, set[str]] = {t: set() for t in TAGS}
    for ds in _datasets(root):
        for tag in TAGS:
            value = str(ds.get(tag, "") or "").strip()
            if value:
                found[tag].add(value)
    return found


def _exported_bytes(db: Path, out: Path, **kw) -> dict[Path, bytes]:  # noqa: ANN003
    files: dict[Path, bytes] = {}
    with TrialStore(db, read_only=True) as store:
        for fmt in EDC_FORMATS:
            for p in run_export(store, fmt, out / fmt, **kw):
                files[p] = p.read_bytes()
    assert {p.suffix for p in files} == {".xml", ".csv", ".xpt", ".json"}
    return files


def _variants(value: str) -> set[bytes]:
    out = {value, value.upper(), value.lower(), value.replace("^", " ")}
    return {v.encode("utf-8") for v in out} | {v.encode("utf-16-le") for v in out}


def test_no_dicom_identifier_in_any_export(scored_trial: ScoredTrial, signed_trial: SignedTrial,
                                           tmp_path: Path) -> None:
    ids = dicom_identifiers(scored_trial.sample_dir)
    # what the generator writes: names and accession numbers; PatientID = SYN-00n; no birth date
    assert len(ids["PatientName"]) == 3 and len(ids["PatientID"]) == 3
    assert len(ids["AccessionNumber"]) == 9 and ids["PatientBirthDate"] == set()
    # the relabelled, signed trial: subjects P-000n, their DICOM PatientIDs in the store
    with TrialStore(signed_trial.db_path, read_only=True) as store:
        assert {store.subject_for_patient(p) for p in ids["PatientID"]} == set(
            signed_trial.codes.values())
    files = _exported_bytes(signed_trial.db_path, tmp_path / "signed")
    forbidden = {v for tag in TAGS for value in ids[tag] for v in _variants(value)}
    for path, data in files.items():
        hits = sorted(v.decode("utf-8", "replace") for v in forbidden if v in data)
        assert not hits, f"{path.name} contains {hits}"
    # the subject codes are there (the test would pass vacuously on empty files otherwise)
    everything = b"".join(files.values())
    assert all(code.encode() in everything for code in signed_trial.codes.values())


def test_batch_store_exports_names_and_accessions_nowhere(scored_trial: ScoredTrial,
                                                          tmp_path: Path) -> None:
    """The batch store as is (unsigned, subject code = the generator's PatientID)."""
    ids = dicom_identifiers(scored_trial.sample_dir)
    files = _exported_bytes(scored_trial.db_path, tmp_path / "batch", include_unsigned=True)
    forbidden = {v for tag in ("PatientName", "PatientBirthDate", "AccessionNumber")
                 for value in ids[tag] for v in _variants(value)}
    for path, data in files.items():
        assert not [v for v in forbidden if v in data], path.name
