"""The generated trial: DICOM validity, geometry, lesions where the ground truth says, design."""

from __future__ import annotations

import csv
import filecmp
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import UID, CTImageStorage, ExplicitVRLittleEndian
from skimage import measure

from recist_tool.cli import main
from recist_tool.sample_data import MANIFEST_COLUMNS, generate_trial, trial_ground_truth

VISITS = ["BL", "W06", "W12"]


def _timepoints(gt):
    for sid, subj in gt["subjects"].items():
        for visit, tp in subj["timepoints"].items():
            yield sid, visit, tp


def test_layout_and_ground_truth_file(trial, dcm):
    out, gt = trial
    assert dcm.load_ground_truth(out) == gt
    assert list(gt["subjects"]) == ["SYN-001", "SYN-002"]
    for subj in gt["subjects"].values():
        assert list(subj["timepoints"]) == VISITS
        for tp in subj["timepoints"].values():
            assert (out / tp["series_path"]).is_dir()
            assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", tp["date"])
            for les in tp["lesions"].values():
                assert set(les) >= {"category", "organ", "nodal", "center_lps", "long_axis_mm",
                                    "short_axis_mm"}
                assert les["long_axis_mm"] >= les["short_axis_mm"] >= 0
    # visit dates: baseline, then about 6 and 12 weeks later
    for subj in gt["subjects"].values():
        from datetime import date
        d = [date.fromisoformat(subj["timepoints"][v]["date"]) for v in VISITS]
        assert 35 <= (d[1] - d[0]).days <= 49 and 77 <= (d[2] - d[0]).days <= 91


def test_every_file_is_valid_ct_dicom(trial):
    out, gt = trial
    files = [f for f in out.rglob("*") if f.is_file() and f.suffix not in (".json", ".csv")]
    assert len(files) > 300
    series = Counter()
    for f in files:
        ds = pydicom.dcmread(f)
        assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        assert ds.SOPClassUID == CTImageStorage
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        for uid in (ds.SOPInstanceUID, ds.SeriesInstanceUID, ds.StudyInstanceUID,
                    ds.FrameOfReferenceUID):
            assert UID(uid).is_valid and uid.startswith("2.25.")
        assert ds.Modality == "CT"
        assert ds.pixel_array.shape == (ds.Rows, ds.Columns)
        series[ds.SeriesInstanceUID] += 1
        if "LOCALIZER" in ds.ImageType:
            continue
        assert list(ds.ImageType) == ["ORIGINAL", "PRIMARY", "AXIAL"]
        assert 0.6 <= float(ds.PixelSpacing[0]) <= 0.9
        assert float(ds.PixelSpacing[0]) == float(ds.PixelSpacing[1])
        assert 1.25 <= float(ds.SliceThickness) <= 5.0
        assert ds.ConvolutionKernel and ds.Manufacturer and float(ds.KVP) > 0
        assert float(ds.RescaleSlope) == 1.0
        assert (ds.PixelRepresentation, float(ds.RescaleIntercept)) in ((0, -1024.0), (1, 0.0))
    # one axial series per visit plus the localizer
    assert len(series) == 2 * 3 + 1
    sop = [pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID for f in files]
    assert len(set(sop)) == len(sop)


def test_header_variety_the_loader_must_handle(trial, dcm):
    out, gt = trial
    tps = {(s, v): tp for s, v, tp in _timepoints(gt)}
    signed = {tp["acquisition"]["stored"].startswith("int16") for tp in tps.values()}
    assert signed == {True, False}
    contrast = {tp["acquisition"]["contrast"] for tp in tps.values()}
    assert contrast == {True, False}
    # files without extension
    noext = out / tps[("SYN-002", "W12")]["series_path"]
    assert all(f.suffix == "" for f in noext.iterdir())
    # InstanceNumber unrelated to spatial order in one series, monotonic in the others
    for tp in tps.values():
        _, dss = dcm.read_series(out / tp["series_path"], tp["series_uid"])
        inst = [int(d.InstanceNumber) for d in dss]
        assert sorted(inst) == list(range(1, len(dss) + 1))
        if tp["acquisition"]["instance_numbers_shuffled"]:
            assert inst != sorted(inst) and inst != sorted(inst, reverse=True)
        else:
            assert inst == sorted(inst, reverse=True)  # 1 = most cranial slice
    assert any(tp["acquisition"]["instance_numbers_shuffled"] for tp in tps.values())
    scout = pydicom.dcmread(out / "SYN-001/BL/SCOUT0001.dcm")
    assert "LOCALIZER" in scout.ImageType
    assert ds_contrast(out / tps[("SYN-001", "BL")]["series_path"]) is not None


def ds_contrast(folder: Path):
    f = next(p for p in sorted(folder.iterdir()) if not p.name.startswith("SCOUT"))
    return pydicom.dcmread(f, stop_before_pixels=True).get("ContrastBolusAgent")


def test_geometry_is_consistent(trial, dcm):
    out, gt = trial
    for _, _, tp in _timepoints(gt):
        _, dss = dcm.read_series(out / tp["series_path"], tp["series_uid"])
        assert len(dss) == tp["acquisition"]["shape_zyx"][0]
        for d in dss:
            assert [float(v) for v in d.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]
            assert d.FrameOfReferenceUID == dss[0].FrameOfReferenceUID
        ipp = np.array([[float(v) for v in d.ImagePositionPatient] for d in dss])
        assert np.allclose(ipp[:, :2], ipp[0, :2])
        gaps = np.diff(ipp[:, 2])
        assert np.allclose(gaps, float(dss[0].SliceThickness), atol=1e-3)
        assert np.allclose([float(d.SliceLocation) for d in dss], ipp[:, 2])
        # the field of view holds the whole body: air in the image corners
        hu0 = dss[0].pixel_array.astype(float) + float(dss[0].RescaleIntercept)
        assert hu0[0, 0] < -900 and hu0[-1, -1] < -900


def test_lesions_are_where_the_ground_truth_says(trial, dcm):
    out, gt = trial
    checked = 0
    for sid, visit, tp in _timepoints(gt):
        hu, dss = dcm.read_series(out / tp["series_path"], tp["series_uid"])
        thickness = float(dss[0].SliceThickness)
        for lid, les in tp["lesions"].items():
            k, r, c = dcm.lps_to_voxel(dss, les["center_lps"])
            patch = hu[k, r - 2:r + 3, c - 2:c + 3]
            if not les["present"]:
                # gone: the organ's own density, not the lesion's, at its former centre
                assert abs(patch.mean() - les["lesion_hu"]) > 25, (sid, visit, lid)
                continue
            assert k == les["slice_index"] or abs(k - les["slice_index"]) <= 1
            r_min = min(les["nominal_diameters_mm"]) / 2.0
            if les["cavitating"]:
                assert hu[k, r - 1:r + 2, c - 1:c + 2].min() < -500, (sid, visit, lid)
                continue
            if r_min < thickness + 3.0:
                continue  # too small for a full-volume centre voxel
            assert patch.mean() == pytest.approx(les["center_hu"], abs=15.0), (sid, visit, lid)
            checked += 1
            # the lesion stands out from its surroundings beyond its long axis
            ring_r = int(round((les["long_axis_mm"] / 2 + 6.0) / float(dss[k].PixelSpacing[0])))
            around = [hu[k, r + dr, c + dc] for dr, dc in
                      ((ring_r, 0), (-ring_r, 0), (0, ring_r), (0, -ring_r))]
            assert max(abs(np.asarray(around) - les["center_hu"])) > 20, (sid, visit, lid)
    assert checked >= 12


def test_lung_lesion_sits_in_lung_and_liver_lesion_in_liver(trial, dcm):
    out, gt = trial
    tp = gt["subjects"]["SYN-001"]["timepoints"]["BL"]
    hu, dss = dcm.read_series(out / tp["series_path"], tp["series_uid"])
    for lid, expected_bg in (("T01", -850.0), ("T02", 105.0)):
        les = tp["lesions"][lid]
        k, r, c = dcm.lps_to_voxel(dss, les["center_lps"])
        off = int(round((les["long_axis_mm"] / 2 + 8.0) / float(dss[k].PixelSpacing[0])))
        bg = hu[k, r - 2:r + 3, c - off - 2:c - off + 3].mean()
        assert bg == pytest.approx(expected_bg, abs=20.0)


def test_trial_design_rules(trial):
    _, gt = trial
    overall = set()
    for subj in gt["subjects"].values():
        tps = subj["timepoints"]
        bl = tps["BL"]["lesions"]
        targets = {i: les for i, les in bl.items() if les["category"] == "target"}
        assert len(bl) >= 4
        assert {les["organ"] for les in bl.values()} == {"lung", "liver", "lymph node"}
        assert 1 <= len(targets) <= 5
        assert max(Counter(les["organ"] for les in targets.values()).values()) <= 2
        for les in targets.values():
            if les["nodal"]:
                assert les["organ"] == "lymph node" and les["short_axis_mm"] >= 15.0
            else:
                assert les["long_axis_mm"] >= 10.0
        for les in bl.values():
            assert les["category"] != "new"
            if les["category"] == "non-target" and les["nodal"]:
                assert 10.0 <= les["short_axis_mm"] < 15.0
        assert tps["BL"]["overall_response"] is None
        for visit in VISITS[1:]:
            tp = tps[visit]
            overall.add(tp["overall_response"])
            assert set(bl) <= set(tp["lesions"])  # tracked lesions stay listed
            new = [i for i, les in tp["lesions"].items() if les["category"] == "new"]
            assert tp["new_lesions"] == bool(new)
            # the sum is recomputed here from the lesions listed
            sod = sum((les["short_axis_mm"] if les["nodal"] else les["long_axis_mm"])
                      for i, les in tp["lesions"].items() if i in targets)
            assert tp["sod_mm"] == pytest.approx(sod, abs=0.051 * len(targets))
            # far from the thresholds, so measurement noise cannot flip the response
            assert abs(tp["change_from_baseline_pct"] + 30.0) >= 3.0
            assert abs(tp["change_from_nadir_pct"] - 20.0) >= 3.0
    assert {"PR", "SD", "PD"} <= overall
    # growing, shrinking, disappearing and new lesions all occur
    kinds = set()
    for _, subj in gt["subjects"].items():
        tps = subj["timepoints"]
        for lid, les in tps["W12"]["lesions"].items():
            if les["category"] == "new":
                kinds.add("new")
                continue
            before = tps["BL"]["lesions"][lid]["long_axis_mm"]
            if not les["present"]:
                kinds.add("disappeared")
            elif les["long_axis_mm"] > before + 1:
                kinds.add("grew")
            elif les["long_axis_mm"] < before - 1:
                kinds.add("shrank")
    assert kinds == {"new", "disappeared", "grew", "shrank"}


def test_patient_shifts_between_visits(trial):
    _, gt = trial
    for _, visit, tp in _timepoints(gt):
        shift = np.asarray(tp["patient_pose"]["shift_from_baseline_mm"])
        if visit == "BL":
            assert not shift.any()
        else:
            assert 1.0 <= np.abs(shift).max() <= 6.0


def test_manifest_matches_ground_truth(trial):
    out, gt = trial
    with open(out / "manifest.csv", newline="") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames) == MANIFEST_COLUMNS
        rows = list(reader)
    for sid, visit, tp in _timepoints(gt):
        mine = [r for r in rows if r["subject"] == sid and r["visit"] == visit]
        assert all(r["date"] == tp["date"] and r["series_path"] == tp["series_path"]
                   and r["series_uid"] == tp["series_uid"] for r in mine)
        seeded = {r["lesion_id"]: r for r in mine if r["lesion_id"]}
        if visit == "BL":
            assert set(seeded) == set(tp["lesions"])
            assert not [r for r in mine if not r["lesion_id"]]
        else:
            assert len([r for r in mine if not r["lesion_id"]]) == 1
            assert set(seeded) == {i for i, les in tp["lesions"].items()
                                   if les["category"] == "new"}
        for lid, r in seeded.items():
            les = tp["lesions"][lid]
            assert r["category"] == les["category"] and r["organ"] == les["organ"]
            assert r["nodal"] == ("true" if les["nodal"] else "false")
            seed = [float(r["seed_x"]), float(r["seed_y"]), float(r["seed_z"])]
            assert np.allclose(seed, les["center_lps"], atol=0.006)


def test_no_real_looking_identifiers(trial):
    out, gt = trial
    for sid, _, tp in _timepoints(gt):
        f = next(p for p in sorted((out / tp["series_path"]).iterdir()))
        ds = pydicom.dcmread(f, stop_before_pixels=True)
        assert re.fullmatch(r"SYN-\d{3}", ds.PatientID) and ds.PatientID == sid
        assert str(ds.PatientName).startswith("SYNTHETIC^")
        assert ds.PatientBirthDate == "" and ds.ReferringPhysicianName == ""
        assert ds.PatientIdentityRemoved == "YES"
        assert "SYNTHETIC" in ds.DeidentificationMethod
        assert ds.AccessionNumber.startswith("SYN")
        for kw in ("InstitutionName", "InstitutionAddress", "OtherPatientIDs", "PatientAddress",
                   "OperatorsName", "PerformingPhysicianName"):
            assert kw not in ds


@pytest.mark.slow
def test_same_seed_gives_identical_bytes(tmp_path, trial):
    out0, gt0 = trial
    gt = generate_trial(tmp_path, seed=0, n_subjects=2)
    assert gt == gt0
    files0 = sorted(p.relative_to(out0) for p in out0.rglob("*") if p.is_file())
    files1 = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert files0 == files1
    _, mismatch, errors = filecmp.cmpfiles(out0, tmp_path, [str(f) for f in files0], shallow=False)
    assert mismatch == [] and errors == []


def test_cli_writes_trial_and_other_seed_changes_uids_not_design(tmp_path, capsys, trial, dcm):
    out = tmp_path / "cli-trial"
    assert main(["sample-data", str(out), "--n-subjects", "1", "--seed", "1"]) == 0
    printed = capsys.readouterr().out
    assert "SYN-001" in printed and "PR" in printed
    gt1 = dcm.load_ground_truth(out)
    assert gt1["generator"]["seed"] == 1 and list(gt1["subjects"]) == ["SYN-001"]
    assert (out / "manifest.csv").is_file()
    a = trial[1]["subjects"]["SYN-001"]["timepoints"]
    b = gt1["subjects"]["SYN-001"]["timepoints"]
    for v in VISITS:
        assert a[v]["series_uid"] != b[v]["series_uid"]
        assert a[v]["study_uid"] != b[v]["study_uid"]
        assert a[v]["date"] == b[v]["date"]
        assert a[v]["overall_response"] == b[v]["overall_response"]
    ds = pydicom.dcmread(next((out / "SYN-001/W06").iterdir()), stop_before_pixels=True)
    assert ds.SeriesInstanceUID == b["W06"]["series_uid"]


def test_cli_rejects_bad_subject_count(tmp_path, capsys):
    assert main(["sample-data", str(tmp_path / "x"), "--n-subjects", "0"]) == 2
    assert "--n-subjects" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_ground_truth_without_images_matches_the_written_one(trial):
    _, gt = trial
    assert trial_ground_truth(seed=0, n_subjects=2) == gt


@pytest.mark.parametrize("seed", range(0, 40, 3))
def test_design_holds_for_any_seed(seed):
    """Patient shifts move lesions across slices; the responses stay the designed ones."""
    gt = trial_ground_truth(seed=seed, n_subjects=6)  # raises on a borderline design
    designed = {"A": ["PR", "PR"], "B": ["SD", "PD"], "C": ["SD", "PD"]}
    for subj in gt["subjects"].values():
        got = [subj["timepoints"][v]["overall_response"] for v in VISITS[1:]]
        assert got == designed[subj["archetype"]]
        bl = subj["timepoints"]["BL"]["lesions"]
        assert len(bl) >= 4 and {les["organ"] for les in bl.values()} == {"lung", "liver",
                                                                          "lymph node"}
        for tp in list(subj["timepoints"].values())[1:]:
            assert abs(tp["change_from_baseline_pct"] + 30.0) >= 3.0
            assert abs(tp["change_from_nadir_pct"] - 20.0) >= 3.0


def test_ground_truth_axes_match_the_rendered_lung_nodules(trial, dcm):
    """On the ground-truth slice, the 50 % iso-contour of a lung nodule has the stated axes."""
    out, gt = trial
    checked = 0
    for _, _, tp in _timepoints(gt):
        hu = None
        for les in tp["lesions"].values():
            if les["organ"] != "lung" or not les["present"]:
                continue
            if hu is None:
                hu, dss = dcm.read_series(out / tp["series_path"], tp["series_uid"])
            k = les["slice_index"]
            _, r, c = dcm.lps_to_voxel(dss, les["center_lps"])
            px = float(dss[k].PixelSpacing[0])
            half = int(les["long_axis_mm"] / px) + 6
            patch = hu[k, r - half:r + half + 1, c - half:c + half + 1]
            level = (les["lesion_hu"] - 850.0) / 2.0
            contours = measure.find_contours(patch, level)
            outer = max(contours, key=len)  # the nodule's outline (a cavity gives an inner one)
            pts = outer * px
            d = np.linalg.norm(pts[:, None] - pts[None], axis=-1)
            i, j = np.unravel_index(np.argmax(d), d.shape)
            assert d[i, j] == pytest.approx(les["long_axis_mm"], abs=0.6)
            u = (pts[j] - pts[i]) / d[i, j]
            across = pts @ np.array([-u[1], u[0]])
            assert across.max() - across.min() == pytest.approx(les["short_axis_mm"], abs=0.6)
            checked += 1
    assert checked >= 5
