"""Issue #31, Done when: a round trip through a real Orthanc.

The sample trial's CT is on the server (``on_server``); ``recist batch`` scores a manifest of
``pacs://`` references, ``recist export --send`` stores the SR (STOW-RS) and the SEG (C-STORE),
a search finds them, and ``recist import-sr`` reads them back **from the server** — the SR by its
series reference, the SEG through a TID 1411 SR that references it — and gives the lesions and
values (0.1 mm) the batch stored. Then the same de-identified (``--deidentify``): the sent objects,
retrieved from the server, carry none of the source CT's patient identifiers or UIDs, and still
import onto the CT de-identified with the same secret (``recist deidentify`` from the server,
``--send`` back to it; nor does that CT carry any). Bad references: one line, nothing written.
"""

from __future__ import annotations

import csv
import inspect
from pathlib import Path

import pytest

from recist_tool.cli import main
from tests.pacs.conftest import PacsSettings

SUBJECT, VISIT, TRIAL = "SYN-001", "BL", "RT-PACS"

def _tp(trial) -> dict:
    return trial.ground_truth["subjects"][SUBJECT]["timepoints"][VISIT]


def _score_from_server(trial, ct_ref: str, series_uid: str, folder: Path, settings: Path) -> Path:
    """``recist batch`` on the subject's baseline rows with ``series_path`` = ``ct_ref``."""
    rows = [r for r in csv.DictReader((trial.sample_dir / "manifest.csv").open())
            if r["subject"] == SUBJECT and r["visit"] == VISIT]
    for r in rows:
        r["series_path"], r["series_uid"] = ct_ref, series_uid
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / "manifest.csv"
    with manifest.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    db = folder / "scored.db"
    assert main(["batch", str(manifest), "--db", str(db), "-o", str(folder / "out"), "-j", "0",
                 "--segmenter", "classic", "--settings", str(settings)]) == 0
    return db


def _export_send(db: Path, fmt: str, server: str, out: Path, settings: Path, capsys,
                 *extra: str) -> list[Path]:
    rc = main(["export", "--db", str(db), "--format", fmt, "-o", str(out), "--include-unsigned",
               "--subject", SUBJECT, "--send", server, "--settings", str(settings), *extra])
    text = capsys.readouterr().out
    assert rc == 0, text
    files = sorted(out.rglob("*.dcm"))
    assert files and f"sent {len(files)} object(s) to PACS {server}" in text, text
    return files


def _uids(path: Path) -> tuple[str, str, str]:
    import pydicom

    ds = pydicom.dcmread(path, stop_before_pixels=True)
    return str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID)


def _held(study: str, series: str, sop: str, modality: str) -> None:
    """Both protocols' searches find the object on the server, with its modality."""
    from recist_tool.io import pacs

    for name in ("web", "dimse"):
        srv = pacs.server(name)
        found = {s["series_uid"]: s for s in pacs.find_series(srv, study)}
        assert found[series]["modality"] == modality, (name, found)
        assert sop in pacs._proto(srv).find_instances(srv, study, series), name


def _stored(db: Path, reader: str) -> dict:
    from recist_tool.store import TrialStore

    with TrialStore(db, read_only=True) as store:
        return {m.lesion_id: m for m in store.get_read(SUBJECT, VISIT, reader=reader).measurements}


def _import_into(db: Path, argv: list[str], capsys) -> dict:
    """``recist import-sr ARGV --db DB`` as a new reader's read; the lesions it recorded."""
    from recist_tool.store import TrialStore

    if not db.exists():
        with TrialStore(db) as store:
            store.add_reader("corelab", "corelab-password", full_name="Core Lab")
            store.add_trial(TRIAL)
    rc = main(["import-sr", *argv, "--db", str(db), "--reader", "corelab", "--trial", TRIAL])
    captured = capsys.readouterr()
    assert rc == 0, captured.err + captured.out
    return _stored(db, "corelab")


def _same(got: dict, want: dict, *, short: bool = True) -> None:
    assert sorted(got) == sorted(want)
    for lid, m in want.items():
        g = got[lid]
        assert float(g.long_axis_mm) == pytest.approx(float(m.long_axis_mm), abs=0.1 + 1e-9), lid
        if short and m.short_axis_mm is not None:
            assert float(g.short_axis_mm) == pytest.approx(float(m.short_axis_mm), abs=0.1 + 1e-9), lid


def _seg_sr(seg_file: Path, ct_ref: str, ct_series: str, organs: dict[str, str], out: Path) -> Path:
    """A TID 1411 SR (dcmqi's form, built with highdicom) with one group per segment of the SEG
    retrieved from the server: its tracking identifier the segment's label (the lesion id), its
    finding site the lesion's organ (a lymph node is measured on its widest short axis)."""
    import highdicom as hd
    import pydicom

    from recist_tool.io.dicom_codes import organ_code
    from recist_tool.io.dicom_refs import load_series_with_headers
    from tests.io.sr_builders import highdicom_sr, tracking

    seg = pydicom.dcmread(seg_file)
    groups = [hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=tracking(str(s.SegmentLabel)),
        referenced_segment=hd.sr.ReferencedSegment(
            sop_class_uid=seg.SOPClassUID, sop_instance_uid=seg.SOPInstanceUID,
            segment_number=int(s.SegmentNumber),
            source_series=hd.sr.SourceSeriesForSegmentation(ct_series)),
        finding_sites=[hd.sr.FindingSite(organ_code(organs[str(s.SegmentLabel)]))])
        for s in seg.SegmentSequence]
    ct = load_series_with_headers(ct_ref, ct_series)
    return highdicom_sr(out, ct.headers, groups, evidence=[seg])


def _seg_round_trip(folder: Path, seg_files: list[Path], ct_ref: str, ct_series: str,
                    want: dict, capsys, *extra: str) -> None:
    """The SEG, taken back from the server, referenced by a TID 1411 SR that goes to the server
    too; ``import-sr`` from there finds the SEG on the server and measures each segment."""
    from recist_tool.io import pacs

    study, series, _ = _uids(seg_files[0])
    with pacs.open_pacs_series(f"pacs://dimse/{study}/{series}", "SEG") as (_, files):
        sr = _seg_sr(files[0], ct_ref, ct_series, {lid: m.organ for lid, m in want.items()},
                     folder / "tid1411.dcm")
    _, held = pacs.send("web", [sr])
    assert all(s.ok for s in held)
    sr_study, sr_series, _ = _uids(sr)
    assert sr_study == study
    got = _import_into(folder / "seg-import.db", [f"pacs://web/{sr_study}/{sr_series}",
                                                 "-o", str(folder / "seg-manifest.csv"), *extra],
                       capsys)
    _same(got, want)
    assert {m.endpoints_lps["source"] for m in got.values()} == {"dicom-sr"}


def test_round_trip_through_orthanc(on_server, pacs_settings: PacsSettings, tmp_path: Path,
                                   capsys) -> None:
    tp = _tp(on_server)
    ct_ref = f"pacs://web/{tp['study_uid']}/{tp['series_uid']}"
    db = _score_from_server(on_server, ct_ref, tp["series_uid"], tmp_path / "batch",
                            pacs_settings.toml)
    want = _stored(db, "batch")
    assert want
    sr_files = _export_send(db, "dicom-sr", "web", tmp_path / "sr", pacs_settings.toml, capsys)
    seg_files = _export_send(db, "dicom-seg", "dimse", tmp_path / "seg", pacs_settings.toml, capsys)
    (sr,), (seg,) = sr_files, seg_files
    study, sr_series, sr_sop = _uids(sr)
    _held(study, sr_series, sr_sop, "SR")
    _held(*_uids(seg), "SEG")
    assert study == tp["study_uid"]  # filed with the CT

    # the SR from the server, the CT found in its study there (default --ct) ...
    out = tmp_path / "imp" / "manifest.csv"
    got = _import_into(tmp_path / "imp.db", [f"pacs://web/{study}/{sr_series}", "-o", str(out)],
                       capsys)
    _same(got, want)
    for lid, m in want.items():
        assert (got[lid].category, got[lid].organ) == (m.category, m.organ), lid
    rows = list(csv.DictReader(out.open()))
    assert {r["series_path"] for r in rows} == {f"pacs://web/{study}"}
    assert {r["series_uid"] for r in rows} == {tp["series_uid"]}
    # ... or by DIMSE with the CT series named: the same lesions
    assert main(["import-sr", f"pacs://dimse/{study}/{sr_series}", "--ct",
                 f"pacs://dimse/{study}/{tp['series_uid']}", "-o", str(tmp_path / "m2.csv")]) == 0
    assert sorted(r["lesion_id"] for r in csv.DictReader((tmp_path / "m2.csv").open())) == sorted(want)
    capsys.readouterr()

    _seg_round_trip(tmp_path, seg_files, ct_ref, tp["series_uid"], want, capsys)


def _fails(argv: list[str], capsys) -> str:
    rc = main(argv)
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert rc != 0, captured.out
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def test_import_sr_bad_pacs_references(on_server, pacs_settings: PacsSettings, tmp_path: Path,
                                      capsys) -> None:
    tp = _tp(on_server)
    out = tmp_path / "m.csv"
    cases = [
        (f"pacs://nope/{tp['study_uid']}/{tp['series_uid']}", "PACS server 'nope' is not in"),
        (f"pacs://web/{tp['study_uid']}/{tp['series_uid']}", "is CT, not SR"),  # the CT, not an SR
        (f"pacs://dimse/{tp['study_uid']}/{tp['series_uid']}", "is CT, not SR"),
        (f"pacs://web/{tp['study_uid']}/1.2.3.4", "holds no series 1.2.3.4"),
        (f"pacs://web/{tp['study_uid']}", "name the SR series"),
        ("pacs://web/not-a-uid", "not a PACS series reference"),
        (f"pacs://down-web/{tp['study_uid']}/{tp['series_uid']}", "cannot be reached"),
    ]
    for ref, message in cases:
        err = _fails(["import-sr", ref, "-o", str(out)], capsys)
        assert err.startswith("error:") and message in err, (ref, err)
    err = _fails(["import-sr", str(tmp_path / "read.dcm"), "--ct",
                  f"pacs://nope/{tp['study_uid']}", "-o", str(out)], capsys)
    assert "PACS server 'nope'" in err or "read.dcm" in err
    # usage is checked before any server is asked
    err = _fails(["import-sr", cases[-1][0], "--date", "03/03/2025", "-o", str(out)], capsys)
    assert "--date '03/03/2025' is not YYYY-MM-DD" in err
    assert not out.exists() and not list(tmp_path.iterdir())


# --- de-identified ---------------------------------------------------------------------------

#: Identifiers the copy of the CT carries (the sample's own are synthetic, and its PatientID is
#: the subject code a de-identified object keeps by design).
IDENTITY = {"PatientName": "DOE^JANE^Q", "PatientID": "MRN-4711-0815",
            "PatientBirthDate": "19610203", "AccessionNumber": "ACC-99123-X"}


def _export_has_deidentify() -> bool:
    from recist_tool.cli import export_cmd

    return "deidentify" in inspect.signature(export_cmd.export_cmd).parameters


def _identified_copy(trial, folder: Path) -> tuple[list[Path], dict[str, str]]:
    """The subject's baseline CT with a patient's identifiers and fresh UIDs (study, series,
    instances, frame of reference); returns the files and the UIDs it carries."""
    import pydicom
    from pydicom.uid import generate_uid

    tp = _tp(trial)
    src = sorted((trial.sample_dir / tp["series_path"]).rglob("*.dcm"))
    new = {"StudyInstanceUID": generate_uid(), "SeriesInstanceUID": generate_uid(),
           "FrameOfReferenceUID": generate_uid()}
    folder.mkdir(parents=True)
    out, uids = [], dict(new)
    for i, f in enumerate(src):
        ds = pydicom.dcmread(f)
        if str(ds.SeriesInstanceUID) != tp["series_uid"]:
            continue
        for kw, v in {**IDENTITY, **new}.items():
            setattr(ds, kw, v)
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        uids[f"SOPInstanceUID {i}"] = str(ds.SOPInstanceUID)
        ds.save_as(folder / f.name)
        out.append(folder / f.name)
    assert out
    return out, uids


def _deid_settings(pacs_settings: PacsSettings, monkeypatch) -> Path:
    toml = pacs_settings.toml.with_name("trial-deid.toml")
    toml.write_text(pacs_settings.toml.read_text() + '\n[deidentify]\nsponsor = "Round Trip Pharma"\n'
                    f'protocol_id = "{TRIAL}"\n')
    monkeypatch.setenv("RECIST_DEID_SECRET", "round-trip-secret-0123456789abcdef")
    return toml


def test_deidentified_round_trip_through_orthanc(on_server, pacs_settings: PacsSettings,
                                                tmp_path: Path, capsys, monkeypatch) -> None:
    if not _export_has_deidentify():
        pytest.skip("--deidentify not available")
    import pydicom

    from recist_tool.io import pacs

    settings = _deid_settings(pacs_settings, monkeypatch)
    files, uids = _identified_copy(on_server, tmp_path / "identified")
    raw = files[0].read_bytes()  # the scan below finds them where they are
    assert all(v.encode() in raw for v in (*IDENTITY.values(), uids["StudyInstanceUID"]))
    _, held = pacs.send("web", files)
    assert all(s.ok for s in held)
    ct_ref = f"pacs://web/{uids['StudyInstanceUID']}/{uids['SeriesInstanceUID']}"
    db = _score_from_server(on_server, ct_ref, uids["SeriesInstanceUID"], tmp_path / "batch",
                            settings)
    want = _stored(db, "batch")
    sent = [*_export_send(db, "dicom-sr", "web", tmp_path / "sr", settings, capsys, "--deidentify"),
            *_export_send(db, "dicom-seg", "dimse", tmp_path / "seg", settings, capsys,
                          "--deidentify")]

    # what the server holds, retrieved back: none of the source CT's identifiers or UIDs
    secrets = {k: v for k, v in {**IDENTITY, **uids}.items() if v}
    objects = []
    for f in sent:
        study, series, sop = _uids(f)
        modality = str(pydicom.dcmread(f, stop_before_pixels=True).Modality)
        _held(study, series, sop, modality)
        with pacs.open_pacs_series(f"pacs://web/{study}/{series}", modality) as (_, got):
            for g in got:
                raw = g.read_bytes()
                leaks = [k for k, v in secrets.items() if v.encode() in raw]
                assert not leaks, (modality, leaks)
                ds = pydicom.dcmread(g, stop_before_pixels=True)
                assert str(ds.PatientID) == SUBJECT and ds.PatientIdentityRemoved == "YES"
                objects.append(ds)
    assert {str(d.Modality) for d in objects} == {"SR", "SEG"}
    deid_study = {str(d.StudyInstanceUID) for d in objects}
    assert len(deid_study) == 1 and uids["StudyInstanceUID"] not in deid_study

    # the CT de-identified with the same secret (as the core lab receives it): `recist
    # deidentify` reads it from the server and sends it back (C-STORE); the de-identified SR
    # imports onto it from there, with the same lesions and values
    deid_out = tmp_path / "deid-ct"
    assert main(["deidentify", ct_ref, "-o", str(deid_out), "--subject", SUBJECT, "--visit", VISIT,
                 "--settings", str(settings), "--send", "dimse"]) == 0
    said = capsys.readouterr().out
    deid_ct = sorted(deid_out.rglob("*.dcm"))
    assert len(deid_ct) == len(files) and f"{len(files)} of {len(files)} sent" in said, said
    (study,) = deid_study
    ct_study, ct_series, _ = _uids(deid_ct[0])
    assert ct_study == study
    with pacs.open_pacs_series(f"pacs://web/{study}/{ct_series}", "CT") as (_, got):
        assert len(got) == len(files)
        for g in got:
            raw = g.read_bytes()
            assert not [k for k, v in secrets.items() if v.encode() in raw], g.name
            ds = pydicom.dcmread(g, stop_before_pixels=True)
            assert (str(ds.PatientID), ds.PatientIdentityRemoved) == (SUBJECT, "YES")
    sr = next(d for d in objects if str(d.Modality) == "SR")
    sr_ref = f"pacs://web/{study}/{sr.SeriesInstanceUID}"
    # the dates went with the identities (no --retain-dates): the visit's date is given
    err = _fails(["import-sr", sr_ref, "-o", str(tmp_path / "imp.csv")], capsys)
    assert err == f"error: {sr_ref}: no study date in the SR or the CT; give --date", err
    assert not (tmp_path / "imp.csv").exists()
    from recist_tool.store import TrialStore

    with TrialStore(db, read_only=True) as store:
        date = ["--date", store.timepoint_info(SUBJECT, VISIT).date.isoformat()]
    got = _import_into(tmp_path / "imp.db", [sr_ref, "-o", str(tmp_path / "imp.csv"), *date], capsys)
    _same(got, want)
    _seg_round_trip(tmp_path, [f for f in sent if "SEG" in f.name], f"pacs://web/{study}/{ct_series}",
                    ct_series, want, capsys, *date)
