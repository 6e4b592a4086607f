"""The reading workflow (recist_tool.reading) on the synthetic trial, without any GUI."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from recist_tool.errors import InputError, MeasurementError, RuleViolation, UsageError
from recist_tool.reading import ReadingSession, enrol_manifest, export_formats
from recist_tool.segment import NoLesionError
from recist_tool.store import TrialStore
from recist_tool.store.service import AuthenticationError, LockedRecordError

READER, PASSWORD = "dr_a", "correct horse"


def _session(root: Path, db: Path) -> ReadingSession:
    store = TrialStore(db)
    store.add_reader(READER, PASSWORD, full_name="Dr A")
    paths = enrol_manifest(store, root / "manifest.csv", trial="SYN", reader=READER)
    s = ReadingSession(store, READER, PASSWORD, mask_dir=db.parent / "masks", series_paths=paths)
    s.open_subject("SYN-001")
    return s


@pytest.fixture()
def fresh(reading_trial, tmp_path):
    root, gt = reading_trial
    s = _session(root, tmp_path / "r.db")
    yield s, gt["subjects"]["SYN-001"]["timepoints"], tmp_path / "r.db"
    s.store.close()


def _read_baseline(s: ReadingSession, bl: dict) -> None:
    for lid, les in bl["lesions"].items():
        f = s.segment_at("BL", lps=les["center_lps"], nodal=les["nodal"])
        s.add_lesion(f, les["category"], organ=les["organ"], nodal=les["nodal"], lesion_id=lid)


@pytest.fixture(scope="module")
def read_w06(reading_trial, tmp_path_factory):
    """Baseline read from clicks at the true centres, W06 proposals all accepted."""
    root, gt = reading_trial
    db = tmp_path_factory.mktemp("read") / "r.db"
    s = _session(root, db)
    tps = gt["subjects"]["SYN-001"]["timepoints"]
    _read_baseline(s, tps["BL"])
    props = s.propose_followup("W06")
    for p in props:
        s.accept_proposal(p)
    yield s, tps, db, props
    s.store.close()


def test_login_checks_password(reading_trial, tmp_path):
    root, _ = reading_trial
    s = _session(root, tmp_path / "r.db")
    with pytest.raises(AuthenticationError):
        ReadingSession(s.store, READER, "wrong password")
    assert any(e.action == "AUTH_FAIL" for e in s.store.audit_log())


def test_series_location_comes_from_the_database(reading_trial, tmp_path):
    root, _ = reading_trial
    db = tmp_path / "r.db"
    store = TrialStore(db)
    store.add_reader(READER, PASSWORD)
    enrol_manifest(store, root / "manifest.csv", trial="SYN", reader=READER)
    s = ReadingSession(store, READER, PASSWORD)  # no series paths given: the store knows them
    s.open_subject("SYN-001")
    assert [v for v, _ in s.visits()] == ["BL", "W06", "W12"]
    assert Path(s.series_location("W06")[0]) == root / "SYN-001" / "W06"
    assert s.open_visit("W06").shape[0] > 10
    with pytest.raises(InputError, match="no visit"):
        s.open_visit("W99")
    store.close()


def test_series_location_from_a_toml_manifest_beside_the_database(reading_trial, tmp_path):
    """A ``manifest.toml`` beside the database file is read like a ``manifest.csv`` (by
    :func:`recist_tool.batch.manifest.read_manifest`): its series paths, relative to it, come
    before the database's, and its subject opens and loads."""
    from recist_tool.batch.manifest import read_manifest

    root, _ = reading_trial
    (tmp_path / "series").symlink_to(root / "SYN-001", target_is_directory=True)
    cases = read_manifest(root / "manifest.csv")
    (tmp_path / "manifest.toml").write_text("".join(
        f'[[case]]\nsubject = "{c.subject}"\nvisit = "{c.visit}"\ndate = {c.date.isoformat()}\n'
        f'series_path = "series/{c.visit}"\n\n' for c in cases), encoding="utf-8")
    db = tmp_path / "r.db"
    store = TrialStore(db)
    store.add_reader(READER, PASSWORD)
    enrol_manifest(store, root / "manifest.csv", trial="SYN", reader=READER)  # the store: root/
    s = ReadingSession(store, READER, PASSWORD)  # no series paths given: the TOML manifest's
    assert s.open_subject("SYN-001")[0][0] == "BL"
    assert Path(s.series_location("W06")[0]) == tmp_path / "series" / "W06"
    assert s.open_visit("W06").shape == s.open_visit("BL").shape
    store.close()
    (tmp_path / "manifest.toml").write_text("[[case]]\nsubject = 1\n", encoding="utf-8")
    with TrialStore(db) as store, pytest.raises(InputError, match="manifest.toml:1"):
        ReadingSession(store, READER, PASSWORD)


def test_click_measures_lesions_like_the_truth(fresh):
    s, tps, _ = fresh
    for lid, les in tps["BL"]["lesions"].items():
        f = s.segment_at("BL", lps=les["center_lps"], nodal=les["nodal"])
        assert f.method == "automatic" and not f.edited
        # the batch's accuracy goal on this trial (docs/batch.md): 1.5 mm
        assert abs(f.measurement.long_axis_mm - les["long_axis_mm"]) <= 1.5, lid
        assert abs(f.measurement.short_axis_mm - les["short_axis_mm"]) <= 1.5, lid
        if les["organ"] == "lung":  # the 1 mm on the lung target clicked in the GUI test
            assert abs(f.measurement.long_axis_mm - les["long_axis_mm"]) <= 1.0
        assert f.mask.n_voxels > 0
    assert s.stored("BL") == {}  # segmenting alone stores nothing


def test_click_in_air_raises_and_stores_nothing(fresh):
    s, tps, _ = fresh
    vol = s.open_visit("BL")
    n_events = len(s.store.audit_log())
    with pytest.raises(NoLesionError):
        s.segment_at("BL", index=(vol.shape[0] // 2, 3, 3))  # outside the body
    assert s.stored("BL") == {}
    assert len(s.store.audit_log()) == n_events


def test_baseline_rules_checked_when_classifying(fresh):
    s, tps, _ = fresh
    bl = tps["BL"]["lesions"]
    livers = [k for k, v in bl.items() if v["organ"] == "liver" and v["category"] == "target"]
    assert len(livers) >= 2
    for lid in livers[:2]:
        f = s.segment_at("BL", lps=bl[lid]["center_lps"])
        s.add_lesion(f, "target", organ="liver", lesion_id=lid)
    # a third liver target breaks "at most 2 per organ"; the message says so and nothing is stored
    # (the phantom has two liver lesions: the first one again, which is named as well)
    f = s.segment_at("BL", lps=bl[livers[0]]["center_lps"])
    assert [v.rule for v in s.check_baseline(f, "target", organ="liver")] == ["too_many_in_organ"]
    with pytest.raises(RuleViolation, match=f"more than 2 targets in LIVER.*overlaps {livers[0]}"):
        s.add_lesion(f, "target", organ="liver", lesion_id="T09")
    assert "T09" not in s.stored("BL")
    # as a non-target the rules allow it; being the same lesion, it is still refused
    assert s.check_baseline(f, "non-target", organ="liver") == ()
    with pytest.raises(RuleViolation, match=f"^new lesion NT01 not stored: it overlaps {livers[0]}"):
        s.add_lesion(f, "non-target", organ="liver")
    # a node with a short axis under 15 mm cannot be a target
    node = next(v for v in bl.values() if v["nodal"] and v["short_axis_mm"] < 15)
    fn = s.segment_at("BL", lps=node["center_lps"], nodal=True)
    with pytest.raises(RuleViolation, match="may only be a non-target"):
        s.add_lesion(fn, "target", organ="lymph node", nodal=True)
    # only targets / non-targets at baseline
    with pytest.raises(RuleViolation):
        s.add_lesion(fn, "new", organ="lymph node", nodal=True)
    assert s.check_baseline() == ()


def test_at_most_five_targets(fresh):
    s, tps, _ = fresh
    # five lesions (the node NT01, 16 mm long, measured as a kidney lesion) in five organs
    found = [s.segment_at("BL", lps=les["center_lps"]) for les in tps["BL"]["lesions"].values()]
    for f, organ in zip(found, ("lung", "liver", "kidney", "bone", "brain"), strict=True):
        s.add_lesion(f, "target", organ=organ)
    assert len(s.stored("BL")) == 5
    sixth = s.segment_at("BL", lps=tps["BL"]["lesions"]["T01"]["center_lps"])
    assert [v.rule for v in s.check_baseline(sixth, "target", organ="spleen")] == [
        "too_many_targets"]
    with pytest.raises(RuleViolation, match="more than 5 targets"):
        s.add_lesion(sixth, "target", organ="spleen")


def test_manual_correction_keeps_automatic_value_in_audit(fresh):
    s, tps, db = fresh
    les = tps["BL"]["lesions"]["T01"]
    auto = s.segment_at("BL", lps=les["center_lps"])
    a, b = (np.asarray(p) for p in auto.measurement.long_axis_endpoints_voxel)
    # the reader drags one end point 4 voxels inwards along the axis
    b2 = b - 4 * (b - a) / np.linalg.norm(b - a)
    k = auto.measurement.slice_index
    manual = s.measure_line("BL", [(k, *a[1:]), (k, *b2[1:])],
                            auto.measurement.short_axis_endpoints_voxel, coords="voxel",
                            finding=auto)
    assert manual.edited and manual.method == "manual"
    assert manual.measurement.long_axis_mm < auto.measurement.long_axis_mm - 2
    s.add_lesion(manual, "target", organ="lung", lesion_id="T01")
    m = s.stored("BL")["T01"]
    assert m.method == "manual"
    assert float(m.long_axis_mm) == pytest.approx(manual.measurement.long_axis_mm, abs=0.05)
    upd = [e for e in s.store.audit_log("SYN-001")
           if e.entity == "measurement" and e.action == "UPDATE"]
    assert upd, "the manual value must be an audited update of the automatic one"
    old, new = upd[-1].old, upd[-1].new
    assert old["method"] == "automatic" and new["method"] == "manual"
    assert float(old["long_axis_mm"]) == pytest.approx(auto.measurement.long_axis_mm, abs=0.05)
    assert "automatic long axis" in (upd[-1].reason or "")


def test_edited_mask_is_remeasured(fresh):
    s, tps, _ = fresh
    les = tps["BL"]["lesions"]["T02"]
    f = s.segment_at("BL", lps=les["center_lps"])
    m = f.mask.mask.copy()
    m[:, :, m.shape[2] // 2:] = False  # erase half of the lesion
    g = s.remeasure(f, m, f.mask.offset)
    assert g.edited and g.automatic is f.automatic
    assert g.measurement.volume_ml < 0.7 * f.measurement.volume_ml
    with pytest.raises(MeasurementError):
        s.remeasure(f, np.zeros_like(m), f.mask.offset)


def test_nodal_flag_changed_after_the_click_segments_again(fresh):
    """The lung target T01 is the network's; flagged as a node after the click (the widget's
    checkbox) it is segmented again, as a node (``unet`` hands nodes to ``classic``), and back.
    An edited mask is kept and only re-measured."""
    s, tps, _ = fresh
    les = tps["BL"]["lesions"]["T01"]
    assert les["organ"] == "lung" and not les["nodal"]
    f = s.segment_at("BL", lps=les["center_lps"])
    assert f.mask.segmenter == "unet"
    node = s.renode(f, True)
    assert node.nodal and node.mask.segmenter == "classic"
    assert "lymph node" in node.mask.info["routed_by"]
    assert node.automatic is node.measurement and node.automatic_mask is node.mask
    assert s.renode(node, False).mask.segmenter == "unet"
    edited = s.remeasure(f, f.mask.mask, f.mask.offset)
    kept = s.renode(edited, True)
    assert kept.nodal and kept.edited and kept.mask is edited.mask
    assert kept.automatic is edited.automatic


def test_another_segmenter_segments_the_click_again(fresh):
    """``use_segmenter`` switches the outline of the next clicks; ``resegment`` redraws a
    click's own mask with it (the lung target T01: its half-contrast edge is tighter and its
    version says so), and leaves an edited mask alone. A bad spec is refused on use."""
    s, tps, _ = fresh
    les = tps["BL"]["lesions"]["T01"]
    f = s.segment_at("BL", lps=les["center_lps"])
    s.use_segmenter("unet:edge=half-contrast")
    g = s.resegment(f)
    assert g.mask.version.endswith("/half-contrast") and g.mask.prompt == f.mask.prompt
    assert g.mask.n_voxels < f.mask.n_voxels and g.automatic is g.measurement
    assert abs(g.measurement.long_axis_mm - les["long_axis_mm"]) <= 0.5
    assert s.segment_at("BL", lps=les["center_lps"]).mask.version == g.mask.version
    edited = s.remeasure(f, f.mask.mask, f.mask.offset)
    assert s.resegment(edited) is edited
    s.use_segmenter("unet:edge=solid")
    with pytest.raises(UsageError, match="edge must be one of"):
        s.segment_at("BL", lps=les["center_lps"])


def test_a_lesion_whose_measurement_cannot_be_stored_is_not_stored_at_all(fresh, tmp_path):
    s, tps, _ = fresh
    les = tps["BL"]["lesions"]["T01"]
    f = s.segment_at("BL", lps=les["center_lps"])
    n_events = len(s.store.audit_log())
    good_dir = s.mask_dir
    s.mask_dir = tmp_path / "not-a-folder"
    s.mask_dir.write_text("a file where the mask folder should be")
    with pytest.raises(Exception):  # noqa: B017, PT011 - whatever the file system says
        s.add_lesion(f, "target", organ="lung", lesion_id="T01")
    # the lesion row was written before its mask failed: undone with it
    assert s.store.lesions("SYN-001", reader=READER) == []
    assert s.stored("BL") == {}
    assert len(s.store.audit_log()) == n_events
    s.mask_dir = good_dir  # the reader tries again: no clash with a half-stored T01
    assert s.add_lesion(f, "target", organ="lung", lesion_id="T01").lesion_id == "T01"
    assert s.stored("BL")["T01"].long_axis_mm is not None


def test_mask_file_is_saved_with_its_geometry(fresh):
    from recist_tool.io import load_volume

    s, tps, _ = fresh
    les = tps["BL"]["lesions"]["T01"]
    f = s.segment_at("BL", lps=les["center_lps"])
    s.add_lesion(f, "target", organ="lung", lesion_id="T01")
    m = s.stored("BL")["T01"]
    p = Path(m.mask_path)
    assert p.is_file() and hashlib.sha256(p.read_bytes()).hexdigest() == m.mask_sha256
    mv = load_volume(p)
    vol = s.volume("BL")
    off = np.rint(vol.lps_to_index(mv.index_to_lps((0, 0, 0)))).astype(int)
    assert tuple(off) == f.mask.offset
    assert int(np.count_nonzero(mv.array)) == f.mask.n_voxels


def test_followup_proposed_at_the_right_place_and_response(read_w06):
    s, tps, db, props = read_w06
    w06 = tps["W06"]["lesions"]
    assert {p.lesion_id for p in props} == set(tps["BL"]["lesions"])
    for p in props:
        assert p.status in ("found", "uncertain")
        d = np.linalg.norm(np.subtract(p.center_lps, w06[p.lesion_id]["center_lps"]))
        assert d < 3.0, (p.lesion_id, d)
    tab = s.timepoint_table()
    resp = tab.responses["W06"]
    assert resp.overall == tps["W06"]["overall_response"]
    assert resp.pct_from_baseline is not None and resp.pct_from_baseline < -30
    assert tab.rows[0].cells["BL"] and tab.rows[0].cells["W06"]
    assert "PR" in tab.as_text()


def test_states_and_new_lesions_at_follow_up(read_w06):
    s, tps, _, _ = read_w06
    with pytest.raises(RuleViolation, match="only new lesions"):
        s.add_lesion(None, "target", organ="lung", visit="W12")
    s.mark("W12", "T04", "absent")
    s.mark("W12", "NT01", "unequivocal progression")
    s.mark("W12", "NT01", "present")  # changed: audited with a default reason
    added = s.add_lesion(None, "new", organ="liver", visit="W12", equivocal=True)
    assert added.lesion_id == "NL01"
    st = s.stored("W12")
    assert st["T04"].state == "ABSENT" and st["NT01"].state == "PRESENT"
    assert st["NL01"].state == "EQUIVOCAL"
    ev = [e for e in s.store.audit_log("SYN-001") if e.entity == "measurement"
          and e.action == "UPDATE" and (e.reason or "").startswith("reader assessment")]
    assert ev


def test_override_offers_the_criteria_values_and_the_store_keeps_to_them(read_w06):
    s, _, _, _ = read_w06
    assert s.overall_choices() == ("CR", "PR", "SD", "NON-CR/NON-PD", "PD", "NE")
    with pytest.raises(InputError, match="'iSD' is not a RECIST 1.1 response"):
        s.sign("W06", PASSWORD, override="iSD", reason="wrong criteria")


def test_sign_asks_password_and_locks(read_w06):
    s, tps, db, props = read_w06
    with pytest.raises(AuthenticationError):
        s.sign("W06", "not the password")
    with pytest.raises(InputError, match="needs a reason"):
        s.sign("W06", PASSWORD, override="SD")
    digest = s.sign("W06", PASSWORD)
    assert len(digest) == 64
    with pytest.raises(LockedRecordError):
        s.accept_proposal(props[0])
    tab = s.timepoint_table()
    assert tab.responses["W06"].status == "signed"
    assert tab.responses["W06"].confirmed_overall == tps["W06"]["overall_response"]
    # everything confirmed is in the file: a new connection sees it
    with TrialStore(db, read_only=True) as other:
        read = other.get_read("SYN-001", "W06", reader=READER)
        assert read.status == "signed" and len(read.measurements) == len(props)
        assert other.verify_audit().ok


def test_export_writes_real_files(read_w06, tmp_path):
    s, tps, db, props = read_w06
    assert {"sdtm", "odm"} <= set(export_formats())
    # the baseline read is not signed: the exporter refuses with its one-line message, no file
    with pytest.raises(InputError, match="not signed"):
        s.export("sdtm", tmp_path / "refused")
    assert not list((tmp_path / "refused").glob("**/*"))
    files = s.export("sdtm", tmp_path / "sdtm", include_unsigned=True)
    assert files and all(Path(f).is_file() and Path(f).stat().st_size > 0 for f in files)
    assert all(Path(f).is_relative_to(tmp_path / "sdtm") for f in files)
    odm = s.export("odm", tmp_path / "odm", include_unsigned=True)
    text = b"".join(Path(f).read_bytes() for f in odm)
    assert b"SYN-001" in text
    with pytest.raises(UsageError, match="not available"):
        s.export("no-such-format", tmp_path)


def test_lesions_are_renamed_reclassified_and_deleted_within_the_rules(fresh):
    s, tps, db = fresh
    _read_baseline(s, tps["BL"])
    # NT01 is a 12 mm node: it may not become a target (baseline rule); nothing changes
    with pytest.raises(RuleViolation, match="NT01: node short axis"):
        s.change_lesion("NT01", "upgrade", category="target")
    with pytest.raises(InputError, match="baseline lesion: it cannot become NEW"):
        s.change_lesion("T01", "mistake", category="new")
    with pytest.raises(InputError, match="T02 is one of"):
        s.change_lesion("T01", "rename", new_id="T02")
    with pytest.raises(InputError, match="needs a reason"):
        s.delete_lesion("T01", "")
    assert {les.lesion_id: les.category.value for les in s.store.lesions(
        "SYN-001", reader=READER)}["NT01"] == "NON-TARGET"
    assert s.change_lesion("T04", "smaller liver lesion", category="non-target") == "T04"
    assert s.stored("BL")["T04"].category == "NON-TARGET"
    s.delete_lesion("T04", "not a lesion")
    assert "T04" not in s.stored("BL")
    assert s.store.verify_audit().ok


def test_overlapping_lesion_is_refused_naming_the_stored_one(fresh):
    s, tps, _ = fresh
    t02 = tps["BL"]["lesions"]["T02"]
    s.add_lesion(s.segment_at("BL", lps=t02["center_lps"]), "target", organ="liver")
    again = s.segment_at("BL", lps=np.add(t02["center_lps"], (3.0, 0.0, 0.0)))
    assert s.overlapping(again) == ["T01"] and s.overlapping(again, exclude="T01") == []
    with pytest.raises(RuleViolation, match="overlaps T01 stored on BL"):
        s.add_lesion(again, "non-target", organ="liver")
    # a caliper line across it, too
    a, b = (np.asarray(p, float) for p in again.measurement.long_axis_endpoints_lps)
    line = s.measure_line("BL", [tuple(a), tuple(b)])
    with pytest.raises(RuleViolation, match="overlaps T01"):
        s.add_lesion(line, "target", organ="liver")
    assert list(s.stored("BL")) == ["T01"]
    # a different lesion is not refused
    t01 = tps["BL"]["lesions"]["T01"]
    s.add_lesion(s.segment_at("BL", lps=t01["center_lps"]), "target", organ="lung")
    assert sorted(s.stored("BL")) == ["T01", "T02"]


def test_a_proposal_is_reached_on_its_lesion_and_not_beside_it() -> None:
    """:meth:`Proposal.reaches`: a point within ``PROPOSAL_REACH_MM`` of the tracked mask (or,
    without one, of the proposed centre) measures that lesion; a point farther off is a lesion
    of its own; a proposal with no position is reached anywhere."""
    from recist_tool.reading import PROPOSAL_REACH_MM, Finding, Proposal
    from recist_tool.segment import LesionMask, Prompt
    from recist_tool.volume import Volume

    vol = Volume.from_grid(np.zeros((10, 40, 40), np.int16), spacing=(2.0, 1.0, 1.0))
    crop = np.zeros((3, 5, 5), bool)
    crop[1, 1:4, 1:4] = True  # voxels (5, 11..13, 11..13)
    mask = LesionMask(crop, (4, 10, 10), vol.shape, "classic", "1", Prompt(point_zyx=(5, 12, 12)))
    finding = Finding("W06", None, mask=mask)

    def proposal(finding, centre):
        return Proposal("T01", "target", "liver", False, "found", centre, 0.7, (), finding)

    def at(z, y, x):
        return tuple(vol.index_to_lps((z, y, x)))

    p = proposal(finding, at(5, 12, 12))
    assert p.reaches(at(5, 12, 12), vol)  # on the mask
    assert p.reaches(at(5, 13 + PROPOSAL_REACH_MM - 0.5, 12), vol)  # just beside its edge
    assert not p.reaches(at(5, 13 + PROPOSAL_REACH_MM + 0.5, 12), vol)  # beyond the reach
    assert not p.reaches(at(8, 12, 12), vol)  # 6 mm above the mask's slice
    no_mask = proposal(None, at(5, 20, 20))
    assert no_mask.reaches(at(5, 20, 24), vol) and not no_mask.reaches(at(5, 20, 26), vol)
    assert proposal(None, None).reaches(at(0, 0, 0), vol)  # 'place': the reader places it
