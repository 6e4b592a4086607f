"""CDISC ODM 1.3.2 export, read back with odmlib and validated against its ODM 1.3.2 schema."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from recist_tool.errors import InputError
from recist_tool.export import run_export
from recist_tool.export.mapping import load_mapping
from recist_tool.export.odm import validate_odm_file
from recist_tool.store import TrialStore
from tests.export.conftest import READER, READER_FULL_NAME, ScoredTrial, SignedTrial

odmlib = pytest.importorskip("odmlib", reason="odmlib not installed")
NS = "{http://www.cdisc.org/ns/odm/v1.3}"
SLOW = pytest.mark.slow  # tests on the session fixtures (the sample trial scored once, ~40 s)


def _load(path: Path):  # noqa: ANN202
    import odmlib.loader as LD
    import odmlib.odm_loader as OL
    from odmlib.odm_parser import ODMSchemaValidator

    ODMSchemaValidator(standard="odm", version="1.3.2").validate_file(str(path))  # raises if not
    loader = LD.ODMLoader(OL.XMLODMLoader(model_package="odm_1_3_2"))
    loader.open_odm_document(str(path))
    return loader.root()


def _items(ig) -> dict[str, str]:  # noqa: ANN001
    return {i.ItemOID: i.Value for i in ig.ItemData}


def _export(db: Path, out: Path, **kw) -> Path:  # noqa: ANN003
    with TrialStore(db, read_only=True) as store:
        files = run_export(store, "odm", out, **kw)
    assert len(files) == 1 and files[0].suffix == ".xml"
    return files[0]


@SLOW
def test_signed_trial_odm(signed_trial: SignedTrial, tmp_path: Path) -> None:
    path = _export(signed_trial.db_path, tmp_path)
    root = ET.parse(path).getroot()
    assert root.tag == f"{NS}ODM" and root.get("ODMVersion") == "1.3.2"
    odm = _load(path)
    assert odm.verify_oids(odmlib.create_oid_checker("odm_1_3_2"))  # every OID reference resolves
    mdv = odm.Study[0].MetaDataVersion[0]
    assert {f.OID for f in mdv.FormDef} == {"F.RECIST_TL", "F.RECIST_NTL", "F.RECIST_NL",
                                             "F.RECIST_TPR", "F.RECIST_BOR"}
    assert {g.OID: g.Repeating for g in mdv.ItemGroupDef}["IG.RECIST_TL"] == "Yes"
    users = {u.OID: u.FullName._content for u in odm.AdminData[0].User}
    assert users[f"USR.{READER}"] == READER_FULL_NAME
    clinical = odm.ClinicalData[0]
    assert sorted(sd.SubjectKey for sd in clinical.SubjectData) == sorted(signed_trial.codes.values())
    m = load_mapping()
    with TrialStore(signed_trial.db_path, read_only=True) as store:
        n_events = sum(len(store.audit_log(c)) for c in signed_trial.codes.values())
        for sd in clinical.SubjectData:
            events = {se.StudyEventOID: se for se in sd.StudyEventData}
            assert list(events) == ["SE.BL", "SE.W06", "SE.W12", "SE.BOR"]
            for visit in ("BL", "W06", "W12"):
                rd = store.get_read(sd.SubjectKey, visit, reader=READER)
                forms = {fd.FormOID: fd for fd in events[f"SE.{visit}"].FormData}
                for fd in forms.values():  # every form of a signed read carries the signature
                    assert fd.Signature.UserRef.UserOID == f"USR.{READER}"
                    assert fd.Signature.SignatureRef.SignatureOID == "SD.read_complete"
                    assert not fd.Annotation
                tl = {ig.ItemGroupRepeatKey: _items(ig) for ig in forms["F.RECIST_TL"].ItemGroupData}
                for meas in rd.measurements:
                    if meas.category != "TARGET":
                        continue
                    values = tl[meas.lesion_id]
                    assert values[m.odm_item("tl_state")] == meas.state
                    assert values.get(m.odm_item("tl_diam")) == (
                        None if meas.diameter_mm is None else str(meas.diameter_mm))
                    assert values[m.odm_item("tl_nodal")] == ("Y" if meas.nodal else "N")
                for ig in forms["F.RECIST_TL"].ItemGroupData:  # who and when of each lesion
                    assert ig.AuditRecord.UserRef.UserOID == f"USR.{READER}"
                    assert ig.AuditRecord.DateTimeStamp._content.startswith("20")
                resp = _items(forms["F.RECIST_TPR"].ItemGroupData[0])
                assert resp[m.odm_item("read_status")] == "SIGNED"
                if rd.response is not None:
                    assert resp[m.odm_item("ovrlresp")] == (rd.response.confirmed_overall
                                                            or rd.response.overall)
                    assert resp[m.odm_item("sumdiam")] == str(rd.response.sod_mm)
    trail = clinical.AuditRecords[0].AuditRecord
    assert len(trail) == n_events and all(a.SourceID._content.startswith("audit_event ")
                                          for a in trail)


@SLOW
def test_unsigned_reads_are_annotated(scored_trial: ScoredTrial, tmp_path: Path) -> None:
    path = _export(scored_trial.db_path, tmp_path, include_unsigned=True)
    odm = _load(path)
    for sd in odm.ClinicalData[0].SubjectData:
        for se in sd.StudyEventData:
            for fd in se.FormData:
                assert fd.Signature is None
                assert fd.Annotation[0].Comment._content.startswith("UNSIGNED")


@SLOW
def test_mapping_targets_existing_edc_forms(signed_trial: SignedTrial, tmp_path: Path) -> None:
    from importlib import resources

    text = resources.files("recist_tool.export").joinpath("default_mapping.toml").read_text()
    text = text.replace('# BL = "SE.SCREENING"', 'BL = "SE.SCREENING"')
    text = text.replace('visit_oid_pattern = "SE.{visit}"', 'visit_oid_pattern = "SE.VISIT_{visit}"')
    text = text.replace('ovrlresp = "IT.OVRLRESP"', 'ovrlresp = "IT.RSORRES_OVRL"')
    mapping = tmp_path / "edc.toml"
    mapping.write_text(text)
    path = _export(signed_trial.db_path, tmp_path / "out", options={"mapping": mapping})
    odm = _load(path)
    sd = odm.ClinicalData[0].SubjectData[0]
    assert [se.StudyEventOID for se in sd.StudyEventData] == ["SE.SCREENING", "SE.VISIT_W06",
                                                             "SE.VISIT_W12", "SE.BOR"]
    resp = next(fd for fd in sd.StudyEventData[1].FormData if fd.FormOID == "F.RECIST_TPR")
    assert "IT.RSORRES_OVRL" in _items(resp.ItemGroupData[0])
    assert 'ItemOID="IT.OVRLRESP"' not in path.read_text()


@SLOW
def test_schema_check_rejects_an_invalid_file(signed_trial: SignedTrial, tmp_path: Path) -> None:
    path = _export(signed_trial.db_path, tmp_path)
    text = path.read_text(encoding="utf-8")
    bad = tmp_path / "bad.xml"
    bad.write_text(text.replace('Repeating="Yes"', 'Repeating="Often"', 1), encoding="utf-8")
    with pytest.raises(InputError, match="ODM 1.3.2 schema check failed"):
        validate_odm_file(bad)
    bad.write_text(text[: len(text) // 2], encoding="utf-8")  # not well-formed
    with pytest.raises(InputError, match="ODM 1.3.2 schema check failed"):
        validate_odm_file(bad)


def test_changes_carry_who_when_why(tmp_path: Path, fast_scrypt: None) -> None:
    """A corrected measurement: its AuditRecord names the reader and the reason for change."""
    import datetime as dt

    s = TrialStore(tmp_path / "r.db")
    s.add_reader(READER, "rad1-password", full_name=READER_FULL_NAME)
    s.add_trial("T1")
    s.add_subject("T1", "S1")
    s.add_timepoint("S1", "BL", dt.date(2026, 1, 2))
    s.add_timepoint("S1", "W6", dt.date(2026, 2, 13))
    s.add_lesion("S1", "BL", "T01", "TARGET", reader=READER, organ="LUNG")
    s.record_measurement("S1", "BL", "T01", reader=READER, long_axis_mm="30.0")
    s.record_measurement("S1", "W6", "T01", reader=READER, long_axis_mm="25.0")
    s.record_measurement("S1", "W6", "T01", reader=READER, long_axis_mm="20.5",
                         reason="re-measured on the 1 mm reconstruction")
    s.compute_responses("S1", reader=READER)
    for v in ("BL", "W6"):
        s.sign("S1", v, reader=READER, password="rad1-password")
    path = run_export(s, "odm", tmp_path / "out")[0]
    s.close()
    odm = _load(path)
    w6 = odm.ClinicalData[0].SubjectData[0].StudyEventData[1]
    ig = next(fd for fd in w6.FormData if fd.FormOID == "F.RECIST_TL").ItemGroupData[0]
    assert _items(ig)["IT.TL_DIAM"] == "20.5"
    assert ig.AuditRecord.ReasonForChange._content == "re-measured on the 1 mm reconstruction"
    assert ig.AuditRecord.UserRef.UserOID == f"USR.{READER}"
    resp = next(fd for fd in w6.FormData if fd.FormOID == "F.RECIST_TPR")
    assert _items(resp.ItemGroupData[0])["IT.OVRLRESP"] == "PR"  # 30 → 20.5 mm: −31.7 %
    reasons = [a.ReasonForChange._content for a in odm.ClinicalData[0].AuditRecords[0].AuditRecord
               if a.ReasonForChange is not None]
    assert "re-measured on the 1 mm reconstruction" in reasons
    assert "signed: read complete" in reasons
