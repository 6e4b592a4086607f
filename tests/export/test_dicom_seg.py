"""DICOM SEG export: segments labelled by lesion, same tracking UIDs as the SR, voxels read back."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from recist_tool.errors import InputError
from recist_tool.export.dicom_derived import stable_uid, tracking_identifier, tracking_uid
from recist_tool.export.dicom_seg import SegLesion, build_seg, lesions_for_seg
from recist_tool.io.seg import list_segments, read_seg
from tests.export.pacs_fixtures import ScoredTrial, dciodvfy_errors, tiny_series


def _ball(shape, centre, r) -> np.ndarray:
    z, y, x = np.indices(shape)
    return ((z - centre[0]) ** 2 * 4 + (y - centre[1]) ** 2 + (x - centre[2]) ** 2) <= r * r


def _full(vol_shape, les: SegLesion) -> np.ndarray:
    out = np.zeros(vol_shape, bool)
    sl = tuple(slice(o, o + s) for o, s in zip(les.offset, les.mask.shape, strict=True))
    out[sl] = les.mask
    return out


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * float((a & b).sum()) / float(a.sum() + b.sum())


@pytest.mark.parametrize("overlap", [False, True])
def test_segments_read_back_voxel_for_voxel_and_pass_dciodvfy(tmp_path: Path, overlap: bool) -> None:
    series = tiny_series(tmp_path / "ct")
    vol = series.volume
    a = _ball((5, 12, 12), (2, 6, 6), 5)
    b = _ball((3, 8, 8), (1, 4, 4), 3)
    lesions = [
        SegLesion("T01", "liver", a, (1, 4, 3), tracking_uid("TR", "S1", "rad1", "T01"),
                  "classic", "1.0"),
        SegLesion("NT01", "lymph node", b, (2, 8, 6) if overlap else (4, 25, 20),
                  tracking_uid("TR", "S1", "rad1", "NT01"), None, None, automatic=False),
    ]
    seg = build_seg(series, lesions, series_instance_uid=stable_uid("x"),
                    sop_instance_uid=stable_uid("y"), creator="Reader One")
    path = tmp_path / "seg.dcm"
    seg.save_as(path, enforce_file_format=True)
    errors, _ = dciodvfy_errors(path)
    assert errors == []
    assert [(s.number, s.label) for s in list_segments(path)] == [(1, "T01"), (2, "NT01")]
    for n, les in enumerate(lesions, start=1):
        got = read_seg(path, segment_number=n, reference=vol).array > 0
        assert _dice(got, _full(vol.shape, les)) == 1.0
    import highdicom as hd

    back = hd.seg.segread(path)
    d1, d2 = back.get_segment_description(1), back.get_segment_description(2)
    assert (d1.tracking_uid, d1.tracking_id) == (lesions[0].tracking_uid, tracking_identifier("T01"))
    assert d1.algorithm_type.value == "AUTOMATIC" and d2.algorithm_type.value == "MANUAL"
    assert back.PatientID == series.headers[0].PatientID
    assert back.StudyInstanceUID == series.headers[0].StudyInstanceUID


def _m(lesion_id: str, **kw) -> SimpleNamespace:
    base = dict(lesion_id=lesion_id, state="MEASURED", organ="liver", mask_path=None,
                mask_sha256=None, segmenter="classic", segmenter_version="1.0", method="automatic")
    return SimpleNamespace(**{**base, **kw})


def test_measurements_without_mask_are_left_out_and_a_changed_mask_is_refused(tmp_path: Path) -> None:
    from recist_tool.io.masks import save_mask

    series = tiny_series(tmp_path / "ct")
    vol = series.volume
    path, sha = save_mask(_ball((3, 6, 6), (1, 3, 3), 3), vol, tmp_path / "m" / "T01.nii.gz",
                          offset=(2, 10, 10))
    rows = [_m("T01", mask_path=str(path), mask_sha256=sha), _m("T02"),
            _m("NT01", state="PRESENT")]
    got, skipped = lesions_for_seg(rows, vol, trial="TR", subject="S1", reader="rad1", visit="BL")
    assert [g.lesion_id for g in got] == ["T01"] and got[0].offset == (2, 10, 10)
    assert skipped == ["S1 BL T02: not in the SEG (no mask saved)",
                       "S1 BL NT01: not in the SEG (PRESENT)"]
    other = tmp_path / "other.nii.gz"
    save_mask(_ball((3, 6, 6), (1, 3, 3), 2), vol, other, offset=(2, 10, 10))
    shutil.copy(other, path)
    with pytest.raises(InputError, match="sha256 mismatch"):
        lesions_for_seg(rows[:1], vol, trial="TR", subject="S1", reader="rad1", visit="BL")
    with pytest.raises(InputError, match="no lesion mask"):
        build_seg(series, [], series_instance_uid="1.2.3", sop_instance_uid="1.2.4")


@pytest.mark.slow
def test_export_matches_the_stored_masks_and_the_srs_tracking(scored_trial: ScoredTrial,
                                                              tmp_path: Path) -> None:
    import highdicom as hd

    from recist_tool.export import run_export
    from recist_tool.io import load_volume
    from recist_tool.io.masks import load_mask_crop
    from recist_tool.store import TrialStore

    with TrialStore(scored_trial.db_path, read_only=True) as store:
        segs = run_export(store, "dicom-seg", tmp_path / "seg", subjects=["SYN-001"],
                          include_unsigned=True)
        srs = run_export(store, "dicom-sr", tmp_path / "sr", subjects=["SYN-001"],
                         include_unsigned=True)
        reads = {v: store.get_read("SYN-001", v, reader="batch") for v in ("BL", "W06", "W12")}
        tps = {t.visit: t for t in store.timepoint_infos("SYN-001")}
    assert [p.name for p in segs] == ["SYN-001_BL_SEG.dcm", "SYN-001_W06_SEG.dcm",
                                      "SYN-001_W12_SEG.dcm"]
    for seg_path, sr_path in zip(segs, srs, strict=True):
        errors, _ = dciodvfy_errors(seg_path)
        assert errors == [], (seg_path.name, errors)
        visit = seg_path.stem.split("_")[1]
        vol = load_volume(tps[visit].series_path, tps[visit].series_uid)
        masked = {m.lesion_id: m for m in reads[visit].measurements if m.mask_path}
        infos = list_segments(seg_path)
        assert sorted(s.label for s in infos) == sorted(masked)
        seg = hd.seg.segread(seg_path)
        # made by the batch account: the device (Manufacturer) made it, no person's name
        assert not seg.get("ContentCreatorName") and seg.Manufacturer == "recist-tool"
        sr = hd.sr.srread(sr_path)
        sr_uids = {it.ContentSequence[0].TextValue.rsplit(":", 1)[-1]: it.ContentSequence[1].UID
                   for c in sr.ContentSequence
                   if c.ConceptNameCodeSequence[0].CodeMeaning == "Imaging Measurements"
                   for it in c.ContentSequence}
        # the SR's TID 1411 groups reference this SEG: each lesion's segment, by number
        refs = {g.tracking_uid: g.referenced_segment
                for g in sr.content.get_volumetric_roi_measurement_groups()}
        assert {r.referenced_sop_instance_uid for r in refs.values()} == {seg.SOPInstanceUID}
        assert sorted(refs) == sorted(sr_uids[s.label] for s in infos)
        for s in infos:
            ref = refs[sr_uids[s.label]]
            assert list(ref.referenced_segment_numbers) == [s.number]
        for s in infos:
            arr, off = load_mask_crop(masked[s.label].mask_path, vol)
            want = np.zeros(vol.shape, bool)
            want[off[0]:off[0] + arr.shape[0], off[1]:off[1] + arr.shape[1],
                 off[2]:off[2] + arr.shape[2]] = arr
            got = read_seg(seg_path, segment_number=s.number, reference=vol).array > 0
            assert _dice(got, want) == 1.0, (visit, s.label)
            assert seg.get_segment_description(s.number).tracking_uid == sr_uids[s.label]
