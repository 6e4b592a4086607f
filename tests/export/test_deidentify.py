"""``recist export --deidentify``: DICOM PS3.15 Annex E Basic Profile on the SR and SEG exports.

The scored sample trial's CT carries a synthetic patient name and ID only; the slow tests copy
SYN-001's series with more identifiers written into every header (name, ID, birth date,
institution, referring physician, other IDs, a private tag), point a copy of the database at the
copy, and export it with and without ``--deidentify``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, NamedTuple

import pydicom
import pytest

from recist_tool.cli import main
from recist_tool.export.deidentify import (
    DeidSettings,
    deidentify_dataset,
    read_deid_settings,
    remap_uid,
    resolve_action,
)
from tests.export.pacs_fixtures import ScoredTrial, dciodvfy_errors, tiny_series

SUBJECT = "SYN-001"
SECRET = "core-lab-secret-0123456789"
OTHER_SECRET = "another-secret-9876543210"
#: What the copied CT headers carry (written by the fixture).
IDENTITY = {"PatientName": "DOE^JANE^Q", "PatientID": "MRN-7731-0042",
            "PatientBirthDate": "19610203", "InstitutionName": "Saint Example Hospital",
            "ReferringPhysicianName": "HOUSE^GREGORY", "OtherPatientIDs": "ALT-ID-99"}
SETTINGS = """[deidentify]
sponsor = "Example Oncology"
protocol_id = "EX-SCLC-001"
protocol_name = "Example protocol"
site_id = "017"
site_name = "Core lab test site"
secret_file = "{secret}"
"""


def _settings(folder: Path, secret: str = SECRET, *, mode: int = 0o600) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    key = folder / "deid.key"
    key.write_text(secret + "\n")
    key.chmod(mode)
    path = folder / "trial.toml"
    path.write_text(SETTINGS.format(secret=key.name))
    return path


def elements(ds: Any):  # noqa: ANN201
    """Every data element of ``ds``, its sequences' items and its file meta, recursively."""
    for elem in ds:
        yield elem
        if elem.VR == "SQ":
            for item in elem.value:
                yield from elements(item)
    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        yield from elements(meta)


def image_refs(ds: Any) -> set[str]:
    """The SOP Instance UIDs ``ds`` references (content tree and evidence), SEG instances apart:
    the SR references the SEG of its read too."""
    out = set()

    def walk(item: Any) -> None:
        if "ReferencedSOPInstanceUID" in item and \
                item.get("ReferencedSOPClassUID") != "1.2.840.10008.5.1.4.1.1.66.4":
            out.add(item.ReferencedSOPInstanceUID)
        for elem in item:
            if elem.VR == "SQ":
                for sub in elem.value:
                    walk(sub)

    walk(ds)
    return out


def scan(paths: list[Path], identifiers: set[str]) -> list[tuple[str, str, str]]:
    """``(file, keyword, identifier)`` for each element whose value holds an identifier."""
    wanted = {i.upper() for i in identifiers if i} | {i.replace("^", " ").upper()
                                                        for i in identifiers if "^" in i}
    hits = []
    for path in paths:
        ds = pydicom.dcmread(path)
        for elem in elements(ds):
            if elem.VR in ("SQ", "OB", "OW", "OF", "UN") or elem.tag == 0x7FE00010:
                continue
            text = str(elem.value).upper()
            hits += [(path.name, elem.keyword, w) for w in wanted if w in text]
    return hits


# --- fast: the mapping, the actions, the SR content cleaning, bad input ---------------------------

def test_uid_mapping_is_keyed_deterministic_and_valid() -> None:
    from pydicom.uid import UID

    uid = "1.2.826.0.1.3680043.8.498.12345"
    a, b = remap_uid(uid, b"k" * 16), remap_uid(uid, b"k" * 16)
    c = remap_uid(uid, b"K" * 16)
    assert a == b != c and a.startswith("2.25.") and len(a) <= 64 and UID(a).is_valid
    assert remap_uid(uid + "1", b"k" * 16) != a


def test_the_action_table_names_dicom_attributes_and_table_e1_1a_codes() -> None:
    from pydicom.datadict import tag_for_keyword

    from recist_tool.export.deidentify import ACTIONS, DATE_ATTRIBUTES

    assert [k for k in [*ACTIONS, *DATE_ATTRIBUTES] if tag_for_keyword(k) is None] == []
    assert {c.rstrip("*") for code in ACTIONS.values() for c in code.split("/")} <= set("DZXKCU")
    assert all(ACTIONS[k] == "U" for k in ("StudyInstanceUID", "SeriesInstanceUID",
                                           "SOPInstanceUID", "FrameOfReferenceUID", "TrackingUID",
                                           "ReferencedSOPInstanceUID", "UID"))


def test_resolve_action_keeps_objects_valid_and_dates_under_the_option() -> None:
    assert resolve_action("StationName", "X/Z/D") == "Z"
    assert resolve_action("DeviceSerialNumber", "X/Z/D") == "D"  # type 1 in the SEG
    assert resolve_action("ContentDate", "Z/D") == "D"  # type 1 in the SR
    assert resolve_action("SourceImageSequence", "X/Z/U*") == "U"
    assert resolve_action("StudyDate", "Z") == "Z"
    assert resolve_action("StudyDate", "Z", retain_dates=True) == "K"
    assert resolve_action("PatientBirthDate", "Z", retain_dates=True) == "Z"


def test_sr_person_observer_is_pseudonymised_and_private_tags_go(tmp_path: Path) -> None:
    from tests.export.test_dicom_sr import _build, _lesions

    series = tiny_series(tmp_path / "ct")
    sr = _build(series, _lesions(series.volume))  # observer "Reader One", login "rad1"
    sr.private_block(0x0011, "ACME", create=True).add_new(0x01, "LO", "DOE^JANE")
    sr.InstitutionName = "Saint Example Hospital"
    before = [e.value for e in elements(sr) if e.keyword == "PersonName"]
    assert [str(v) for v in before] == ["Reader One^"]
    cfg = DeidSettings(secret=SECRET.encode(), sponsor="Example Oncology")
    deidentify_dataset(sr, cfg, subject="P-0001", trial="TR", visit="BL",
                       evaluator="RADIOLOGIST 1", clean_structured_content=True)
    path = tmp_path / "sr.dcm"
    sr.save_as(path, enforce_file_format=True)
    assert scan([path], {"Reader One", "rad1", "DOE^JANE", "Saint Example Hospital",
                         series.headers[0].PatientID}) == []
    back = pydicom.dcmread(path)
    assert [str(e.value) for e in elements(back) if e.keyword == "PersonName"] == ["RADIOLOGIST 1"]
    assert not [e for e in elements(back) if e.tag.is_private]
    assert [c.CodeValue for c in back.DeidentificationMethodCodeSequence] == ["113100", "113104"]
    assert (back.PatientID, str(back.PatientName), back.PatientIdentityRemoved) == \
        ("P-0001", "P-0001", "YES")
    assert back.ClinicalTrialProtocolID == "TR" and back.ClinicalTrialSubjectID == "P-0001"
    assert back.file_meta.MediaStorageSOPInstanceUID == back.SOPInstanceUID
    errors, _ = dciodvfy_errors(path)
    assert errors == []


def test_bad_input_is_one_line_and_non_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RECIST_DEID_SECRET", raising=False)
    db = str(tmp_path / "none.db")
    base = ["export", "--db", db, "-o", str(tmp_path / "out")]

    def run(*args: str) -> tuple[int, str]:
        rc = main([*base, *args])
        err = capsys.readouterr().err.strip()
        return rc, err

    cases = [
        (("--format", "odm", "--deidentify"), 2, "--deidentify needs --format dicom-sr"),
        (("--format", "dicom-sr", "--deidentify"), 2, "--deidentify needs --settings"),
        (("--format", "dicom-sr", "--retain-dates"), 2, "--retain-dates is an option of"),
    ]
    no_table = tmp_path / "plain.toml"
    no_table.write_text("[trial]\ncriteria = \"RECIST 1.1\"\n")
    cases.append((("--format", "dicom-sr", "--deidentify", "--settings", str(no_table)), 3,
                  "needs a [deidentify] table"))
    no_secret = tmp_path / "nosecret.toml"
    no_secret.write_text("[deidentify]\nsponsor = \"S\"\n")
    cases.append((("--format", "dicom-seg", "--deidentify", "--settings", str(no_secret)), 3,
                  "needs the trial's secret"))
    open_key = _settings(tmp_path / "open", mode=0o644)
    cases.append((("--format", "dicom-sr", "--deidentify", "--settings", str(open_key)), 3,
                  "readable by others"))
    short = _settings(tmp_path / "short", secret="short")
    cases.append((("--format", "dicom-sr", "--deidentify", "--settings", str(short)), 3,
                  "at least 16 bytes"))
    for args, want_rc, want in cases:
        rc, err = run(*args)
        assert rc == want_rc, (args, rc, err)
        assert want in err and len(err.splitlines()) == 1, (args, err)
    assert not (tmp_path / "out").exists()
    # the environment's secret stands in for secret_file
    env = read_deid_settings(no_secret, environ={"RECIST_DEID_SECRET": SECRET})
    assert env.secret == SECRET.encode() and env.sponsor == "S" and not env.retain_dates


# --- slow: the scored sample trial, with identifiers in its headers -------------------------------

class Identified(NamedTuple):
    db: Path
    ct: dict[str, Path]  # visit → folder of the copied, identified CT
    root: Path


@pytest.fixture(scope="module")
def identified(scored_trial: ScoredTrial, tmp_path_factory: pytest.TempPathFactory) -> Identified:
    """SYN-001's CT copied with identifiers in every header; a database copy pointing at it."""
    from recist_tool.store import TrialStore

    root = tmp_path_factory.mktemp("deid")
    db = root / "recist.db"
    shutil.copy(scored_trial.db_path, db)
    ct: dict[str, Path] = {}
    with TrialStore(db) as store:
        for tp in store.timepoint_infos(SUBJECT):
            src = Path(tp.series_path)
            assert src.is_dir(), src
            dest = root / "ct" / tp.visit
            for f in sorted(p for p in src.rglob("*") if p.is_file()):
                ds = pydicom.dcmread(f)
                if ds.get("SeriesInstanceUID") != tp.series_uid:
                    continue
                for kw, value in IDENTITY.items():
                    setattr(ds, kw, value)
                ds.private_block(0x0029, "EXAMPLE HOSPITAL", create=True) \
                    .add_new(0x10, "LO", IDENTITY["PatientID"])
                out = dest / f.relative_to(src)
                out.parent.mkdir(parents=True, exist_ok=True)
                ds.save_as(out)
            ct[tp.visit] = dest
            store.set_timepoint_images(SUBJECT, tp.visit, series_path=str(dest),
                                       reason="test: identified copy")
    return Identified(db, ct, root)


def _export(ident: Identified, fmt: str, out: Path, *extra: str) -> list[Path]:
    rc = main(["export", "--db", str(ident.db), "--format", fmt, "-o", str(out), "--subject",
               SUBJECT, "--include-unsigned", *extra])
    assert rc == 0
    return sorted(out.rglob("*.dcm"))


def _ct_identifiers(ident: Identified) -> tuple[set[str], dict[str, Any]]:
    """Identifiers of the copied CT and its UIDs (by kind)."""
    ids = set(IDENTITY.values())
    uids: dict[str, set[str]] = {"sop": set(), "series": set(), "study": set(), "for": set()}
    dates: set[str] = set()
    for folder in ident.ct.values():
        for f in folder.rglob("*"):
            if not f.is_file():
                continue
            ds = pydicom.dcmread(f, stop_before_pixels=True)
            ids.add(ds.AccessionNumber)
            uids["sop"].add(ds.SOPInstanceUID)
            uids["series"].add(ds.SeriesInstanceUID)
            uids["study"].add(ds.StudyInstanceUID)
            uids["for"].add(ds.FrameOfReferenceUID)
            dates.add(ds.StudyDate)
    return ids, {"uids": uids, "dates": dates}


@pytest.fixture(scope="module")
def exports(identified: Identified) -> dict[str, list[Path]]:
    settings = _settings(identified.root / "settings")
    out = identified.root / "out"
    return {
        "plain-sr": _export(identified, "dicom-sr", out / "plain-sr"),
        "plain-seg": _export(identified, "dicom-seg", out / "plain-seg"),
        "sr": _export(identified, "dicom-sr", out / "sr", "--deidentify", "--settings",
                      str(settings)),
        "seg": _export(identified, "dicom-seg", out / "seg", "--deidentify", "--settings",
                       str(settings)),
    }


@pytest.mark.slow
def test_no_patient_identifier_survives_and_the_scan_can_fail(identified: Identified,
                                                              exports: dict[str, list[Path]]
                                                              ) -> None:
    ids, ct = _ct_identifiers(identified)
    plain = exports["plain-sr"] + exports["plain-seg"]
    own_uids = set()
    for p in plain:
        ds = pydicom.dcmread(p, stop_before_pixels=True)
        own_uids |= {ds.SOPInstanceUID, ds.SeriesInstanceUID}
    everything = ids | own_uids | set().union(*ct["uids"].values())
    # the scan finds them where nothing was de-identified
    found = {w for _, _, w in scan(plain, everything)}
    for want in ("DOE^JANE^Q", "MRN-7731-0042", "19610203", "HOUSE^GREGORY"):
        assert want in found
    assert next(iter(ct["uids"]["study"])) in found and own_uids <= found
    assert any(u in found for u in ct["uids"]["sop"])
    # and finds none in the de-identified SR and SEG
    deid = exports["sr"] + exports["seg"]
    assert len(deid) == len(plain) == 6
    assert scan(deid, everything) == []
    for p in deid:
        raw = p.read_bytes()
        assert not [i for i in ids if i.encode() in raw], p.name
        ds = pydicom.dcmread(p, stop_before_pixels=True)
        assert (ds.PatientID, str(ds.PatientName), ds.PatientIdentityRemoved) == \
            (SUBJECT, SUBJECT, "YES")
        assert (ds.ClinicalTrialSponsorName, ds.ClinicalTrialProtocolID, ds.ClinicalTrialSiteID,
                ds.ClinicalTrialSubjectID, ds.ClinicalTrialCoordinatingCenterName) == \
            ("Example Oncology", "EX-SCLC-001", "017", SUBJECT, "")
        assert ds.ClinicalTrialTimePointID == p.stem.split("_")[1]
        assert "113100" in [c.CodeValue for c in ds.DeidentificationMethodCodeSequence]
        assert not [e for e in elements(ds) if e.tag.is_private]
        # (d) without --retain-dates: the CT's dates are gone
        assert not ds.get("StudyDate") and "SeriesDate" not in ds
        assert ds.LongitudinalTemporalInformationModified == "REMOVED"
    assert scan(deid, ct["dates"]) == []
    assert {w for _, _, w in scan(plain, ct["dates"])} == ct["dates"]


@pytest.mark.slow
def test_sr_seg_and_ct_still_reference_each_other(identified: Identified,
                                                  exports: dict[str, list[Path]]) -> None:
    import highdicom as hd

    key = SECRET.encode()
    cfg = read_deid_settings(identified.root / "settings" / "trial.toml")
    assert cfg.secret == key
    for sr_path, seg_path in zip(exports["sr"], exports["seg"], strict=True):
        visit = sr_path.stem.split("_")[1]
        assert seg_path.stem == f"{SUBJECT}_{visit}_SEG"
        # the CT of the visit de-identified apart, with the same secret
        ct = []
        for f in sorted(p for p in identified.ct[visit].rglob("*") if p.is_file()):
            ds = pydicom.dcmread(f, stop_before_pixels=True)
            ct.append(deidentify_dataset(ds, cfg, subject=SUBJECT, trial="T", visit=visit))
        ct_sops = {d.SOPInstanceUID for d in ct}
        (ct_study,) = {d.StudyInstanceUID for d in ct}
        (ct_series,) = {d.SeriesInstanceUID for d in ct}
        (ct_for,) = {d.FrameOfReferenceUID for d in ct}
        sr = hd.sr.srread(sr_path)
        seg = hd.seg.segread(seg_path)
        assert sr.StudyInstanceUID == seg.StudyInstanceUID == ct_study
        assert seg.FrameOfReferenceUID == ct_for
        # SR → CT: every image reference (content tree and evidence) is a de-identified CT slice
        refs = image_refs(sr)
        assert refs and refs <= ct_sops
        ev = sr.CurrentRequestedProcedureEvidenceSequence[0]
        assert ev.StudyInstanceUID == ct_study
        assert {s.SeriesInstanceUID for s in ev.ReferencedSeriesSequence} == \
            {ct_series, seg.SeriesInstanceUID}  # the CT slices, and the SEG (TID 1411)
        # SEG → CT: source images and referenced series
        (ref_series,) = seg.ReferencedSeriesSequence
        assert ref_series.SeriesInstanceUID == ct_series
        assert {i.ReferencedSOPInstanceUID for i in ref_series.ReferencedInstanceSequence} <= ct_sops
        src = {e.value for e in elements(seg) if e.keyword == "ReferencedSOPInstanceUID"}
        assert src <= ct_sops
        # SR ↔ SEG: the lesions' Tracking UIDs, remapped alike
        sr_tracking = {it.ContentSequence[1].UID for c in sr.ContentSequence
                       if c.ConceptNameCodeSequence[0].CodeMeaning == "Imaging Measurements"
                       for it in c.ContentSequence}
        seg_tracking = {seg.get_segment_description(n).tracking_uid
                        for n in seg.segment_numbers}
        assert seg_tracking and seg_tracking <= sr_tracking
        # SR → SEG: its TID 1411 groups reference the de-identified SEG instance
        assert {g.referenced_segment.referenced_sop_instance_uid
                for g in sr.content.get_volumetric_roi_measurement_groups()} == \
            {seg.SOPInstanceUID}
        errors, _ = dciodvfy_errors(sr_path)
        assert errors == [], (sr_path.name, errors)
        errors, _ = dciodvfy_errors(seg_path)
        assert errors == [], (seg_path.name, errors)


@pytest.mark.slow
def test_uids_map_alike_with_one_secret_and_apart_with_another(identified: Identified,
                                                              exports: dict[str, list[Path]]
                                                              ) -> None:
    def uids(paths: list[Path]) -> list[tuple[str, ...]]:
        out = []
        for p in paths:
            ds = pydicom.dcmread(p, stop_before_pixels=True)
            out.append((ds.SOPInstanceUID, ds.SeriesInstanceUID, ds.StudyInstanceUID,
                        *sorted(e.value for e in elements(ds) if e.keyword in
                                ("ReferencedSOPInstanceUID", "UID"))))
        return out

    again = _export(identified, "dicom-sr", identified.root / "again", "--deidentify",
                    "--settings", str(_settings(identified.root / "same")))
    other = _export(identified, "dicom-sr", identified.root / "other", "--deidentify",
                    "--settings", str(_settings(identified.root / "other-key", OTHER_SECRET)))
    first = uids(exports["sr"])
    assert uids(again) == first
    for a, b in zip(uids(other), first, strict=True):
        assert not set(a) & set(b)


@pytest.mark.slow
def test_retain_dates_keeps_the_dates(identified: Identified) -> None:
    _, ct = _ct_identifiers(identified)
    settings = _settings(identified.root / "dates")
    paths = _export(identified, "dicom-sr", identified.root / "dated", "--deidentify",
                    "--retain-dates", "--settings", str(settings))
    kept = set()
    for p in paths:
        ds = pydicom.dcmread(p, stop_before_pixels=True)
        kept.add(ds.StudyDate)
        assert ds.LongitudinalTemporalInformationModified == "UNMODIFIED"
        assert [c.CodeValue for c in ds.DeidentificationMethodCodeSequence] == \
            ["113100", "113104", "113106"]
        assert ds.ContentDate != "19000101"
        assert ds.PatientID == SUBJECT and not ds.get("PatientBirthDate")
    assert kept == ct["dates"]


def test_secret_file_outside_the_settings_folder_is_found(tmp_path: Path) -> None:
    key = tmp_path / "keys" / "trial.key"
    key.parent.mkdir()
    key.write_text(SECRET)
    key.chmod(0o600)
    settings = tmp_path / "trial.toml"
    settings.write_text(f"[deidentify]\nsponsor = \"S\"\nsecret_file = \"{key}\"\n")
    assert read_deid_settings(settings, environ={}).secret == SECRET.encode()


@pytest.mark.slow
def test_a_deidentified_sr_imports_against_the_ct_deidentified_with_the_same_secret(
        identified: Identified, exports: dict[str, list[Path]], tmp_path: Path) -> None:
    import csv

    import numpy as np

    from recist_tool.store import TrialStore

    cfg = read_deid_settings(identified.root / "settings" / "trial.toml")
    folder = tmp_path / "ct-deid"
    folder.mkdir()
    for i, f in enumerate(sorted(p for p in identified.ct["BL"].rglob("*") if p.is_file())):
        ds = pydicom.dcmread(f)
        deidentify_dataset(ds, cfg, subject=SUBJECT, trial="T", visit="BL")
        ds.save_as(folder / f"{i:04d}.dcm", enforce_file_format=True)
    sr = next(p for p in exports["sr"] if p.stem.endswith("_BL_SR"))
    out = tmp_path / "manifest.csv"
    assert main(["import-sr", str(sr), "--ct", str(folder), "--date", "2025-01-06",
                 "-o", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    with TrialStore(identified.db, read_only=True) as store:
        bl = store.get_read(SUBJECT, "BL", reader="batch")
    stored = {m.lesion_id: m for m in bl.measurements if m.state == "MEASURED"}
    assert sorted(r["lesion_id"] for r in rows) == sorted(stored)
    for r in rows:
        assert (r["subject"], r["visit"]) == (SUBJECT, "BL")
        line = np.array([[float(r[f"line_{a}{k}"]) for a in "xyz"] for k in (1, 2)])
        long = np.array(stored[r["lesion_id"]].endpoints_lps["long"])
        np.testing.assert_allclose(np.sort(line, axis=0), np.sort(long, axis=0), atol=0.006)


@pytest.mark.slow
def test_deidentify_command_writes_the_ct_the_deidentified_sr_references(
        identified: Identified, exports: dict[str, list[Path]], tmp_path: Path, capsys) -> None:
    """``recist deidentify`` on the identified CT of BL: no identifier, original UID or date in
    any element or byte; the same pixels; and the SR exported with ``--deidentify`` (same
    secret) references exactly these instances, this series and this study."""
    import numpy as np

    settings = identified.root / "settings" / "trial.toml"
    out = tmp_path / "ct"
    assert main(["deidentify", str(identified.ct["BL"]), "-o", str(out), "--subject", SUBJECT,
                 "--visit", "BL", "--trial", "T", "--settings", str(settings)]) == 0
    assert "deidentify: " in capsys.readouterr().out
    source = sorted(p for p in identified.ct["BL"].rglob("*") if p.is_file())
    files = sorted(out.rglob("*.dcm"))
    assert len(files) == len(source) and all(p.parent.parent == out / SUBJECT for p in files)
    ids, ct = _ct_identifiers(identified)
    original_uids = set().union(*ct["uids"].values())
    assert scan(files, ids | original_uids | ct["dates"]) == []
    for p in files:
        raw = p.read_bytes()
        assert not [i for i in ids | original_uids if i.encode() in raw], p.name
    deid = [pydicom.dcmread(p) for p in files]
    for d in deid:
        assert (d.PatientID, str(d.PatientName), d.PatientIdentityRemoved) == \
            (SUBJECT, SUBJECT, "YES")
        assert (d.ClinicalTrialProtocolID, d.ClinicalTrialTimePointID) == ("EX-SCLC-001", "BL")
        assert not [e for e in elements(d) if e.tag.is_private]
    by_position = {tuple(d.ImagePositionPatient): d.pixel_array for d in deid}
    for f in source:
        ds = pydicom.dcmread(f)
        np.testing.assert_array_equal(by_position[tuple(ds.ImagePositionPatient)], ds.pixel_array)
    # the de-identified SR of BL references these very objects
    sr = pydicom.dcmread(next(p for p in exports["sr"] if p.stem.endswith("_BL_SR")))
    sops = {d.SOPInstanceUID for d in deid}
    (study,) = {d.StudyInstanceUID for d in deid}
    (series,) = {d.SeriesInstanceUID for d in deid}
    refs = image_refs(sr)
    assert refs and refs <= sops
    ev = sr.CurrentRequestedProcedureEvidenceSequence[0]
    assert (sr.StudyInstanceUID, ev.StudyInstanceUID) == (study, study)
    assert series in {s.SeriesInstanceUID for s in ev.ReferencedSeriesSequence}
    # the same command again gives the same UIDs (the secret's mapping), another folder
    again = tmp_path / "again"
    assert main(["deidentify", str(identified.ct["BL"]), "-o", str(again), "--subject", SUBJECT,
                 "--settings", str(settings), "--trial", "T"]) == 0
    assert sorted(p.relative_to(again) for p in again.rglob("*.dcm")) == \
        sorted(p.relative_to(out) for p in files)


@pytest.mark.parametrize("argv, message", [
    (["{ct}", "-o", "{out}", "--subject", "../x", "--settings", "{settings}"], "subject"),
    (["{missing}", "-o", "{out}", "--subject", SUBJECT, "--settings", "{settings}"],
     "no such file or folder"),
    (["{ct}", "-o", "{out}", "--subject", SUBJECT], "deidentify needs --settings"),
    (["{ct}", "-o", "{out}", "--subject", SUBJECT, "--settings", "{settings}", "--send", "nope"],
     "nope"),
    (["{empty}", "-o", "{out}", "--subject", SUBJECT, "--settings", "{settings}"],
     "no CT volume"),
])
def test_deidentify_command_bad_input_one_line_nothing_written(argv: list[str], message: str,
                                                               tmp_path: Path, capsys) -> None:
    ct = tmp_path / "ct"
    tiny_series(ct)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not DICOM")
    settings = _settings(tmp_path / "settings")
    out = tmp_path / "out"
    args = [a.format(ct=ct, out=out, settings=settings, missing=tmp_path / "nothing",
                     empty=empty) for a in argv]
    assert main(["deidentify", *args]) != 0
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert not out.exists() or not any(out.rglob("*"))
