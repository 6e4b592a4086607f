"""The full-size profile (``generate_trial(full_size=True)``, ``recist sample-data --full-size``):
one subject at clinical size, its geometry, determinism, breathing, the analytic truth measured
back from the lesions' masks, and the series through the project's loader.

Generating the subject takes 40 s and 2 GB on 2 shared cores (twice for determinism): slow.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pydicom
import pytest

from recist_tool import io
from recist_tool.cli import main
from recist_tool.measure import measure_mask
from recist_tool.sample_data import generate_trial, trial_ground_truth
from recist_tool.sample_data.generate import RECON_CENTER_Y, lesion_shape
from recist_tool.sample_data.phantom import LesionShape, Pose, SliceGrid, paint_lesion
from recist_tool.sample_data.scenario import build_subjects
from recist_tool.volume import Volume

VISITS = ["BL", "W06", "W12"]


@pytest.fixture(scope="module")
def full(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("full_size")
    return out, generate_trial(out, seed=0, n_subjects=1, full_size=True)


def _digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _headers(folder: Path, series_uid: str) -> list[pydicom.Dataset]:
    dss = [pydicom.dcmread(f, stop_before_pixels=True) for f in sorted(folder.iterdir())]
    dss = [d for d in dss if d.SeriesInstanceUID == series_uid]
    return sorted(dss, key=lambda d: float(d.ImagePositionPatient[2]))


def _pose(tp: dict, table_z: float) -> Pose:
    """The visit's pose from what the truth records (baseline pose + shift, yaw, breathing)."""
    pp = tp["patient_pose"]
    base = (0.0, RECON_CENTER_Y, table_z)
    return Pose(pp["yaw_deg"], tuple(b + s for b, s in zip(base, pp["shift_from_baseline_mm"],
                                                            strict=True)), pp["breath_mm"])


@pytest.mark.slow
def test_full_size_geometry(full):
    out, gt = full
    assert gt["generator"]["profile"] == "full-size" and gt["generator"]["large_lesions"]
    for tp in gt["subjects"]["SYN-001"]["timepoints"].values():
        dss = _headers(out / tp["series_path"], tp["series_uid"])
        acq = tp["acquisition"]
        assert len(dss) == acq["shape_zyx"][0] >= 300
        assert (dss[0].Rows, dss[0].Columns) == (512, 512)
        px = [float(v) for v in dss[0].PixelSpacing]
        assert px[0] == px[1] == acq["pixel_spacing_mm"] and 0.7 <= px[0] <= 0.8
        thick = float(dss[0].SliceThickness)
        assert 1.0 <= thick <= 1.25
        z = np.array([float(d.ImagePositionPatient[2]) for d in dss])
        assert np.allclose(np.diff(z), thick, atol=1e-3)
        assert z[-1] - z[0] >= 370.0  # chest and abdomen


@pytest.mark.slow
def test_full_size_is_deterministic_with_its_own_uids(full, tmp_path):
    out, gt = full
    again = generate_trial(tmp_path / "again", seed=0, n_subjects=1, full_size=True)
    assert again == gt
    assert _digests(tmp_path / "again") == _digests(out)
    small = trial_ground_truth(seed=0, n_subjects=1, large_lesions=True)
    full_uids = {tp["series_uid"] for tp in gt["subjects"]["SYN-001"]["timepoints"].values()}
    small_uids = {tp["series_uid"] for tp in small["subjects"]["SYN-001"]["timepoints"].values()}
    assert not full_uids & small_uids


def test_full_size_breathing_and_positioning_differ_between_visits():
    gt = trial_ground_truth(seed=0, n_subjects=3, full_size=True)
    for subj in gt["subjects"].values():
        poses = [tp["patient_pose"] for tp in subj["timepoints"].values()]
        assert poses[0]["breath_mm"] == 0.0
        breaths = [p["breath_mm"] for p in poses[1:]]
        assert all(3.0 <= abs(b) <= 8.0 for b in breaths) and breaths[0] != breaths[1]
        assert all(any(abs(s) >= 1.5 for s in p["shift_from_baseline_mm"]) for p in poses[1:])
    # the same design and responses as the small large-lesion trial
    small = trial_ground_truth(seed=0, n_subjects=3, large_lesions=True)
    for sid, subj in gt["subjects"].items():
        for visit, tp in subj["timepoints"].items():
            ref = small["subjects"][sid]["timepoints"][visit]
            assert tp["overall_response"] == ref["overall_response"]
            assert tp["lesions"].keys() == ref["lesions"].keys()


def test_breathing_moves_a_lesion_with_the_anatomy_at_its_centre():
    pose = Pose(0.0, (0.0, 0.0, 0.0), 8.0)
    for zc in (80.0, 40.0, -20.0, -89.0, -150.0):
        zd = pose.lesion_pose((0.0, 0.0, zc)).translation[2] + zc
        assert zd + float(pose.breath_shift(zd)) == pytest.approx(zc, abs=1e-9)
    assert pose.lesion_pose((0.0, 0.0, -150.0)).translation[2] == pytest.approx(-8.0)
    assert Pose().lesion_pose((1.0, 2.0, 3.0)) == Pose()


@pytest.mark.slow
def test_full_size_truth_measured_back_from_the_analytic_masks(full):
    """Each present lesion's analytic partial-volume mask on the series' grid (pose rebuilt from
    what the truth records), measured by ``measure_mask``: the truth's axes within 0.5 mm."""
    _, gt = full
    plan = build_subjects(1, large_lesions=True, full_size=True)[0]
    for visit in VISITS:
        tp = gt["subjects"]["SYN-001"]["timepoints"][visit]
        acq = tp["acquisition"]
        pose = _pose(tp, plan.table_z)
        dss_grid = _grid(tp, plan)
        for les in plan.lesions:
            truth = tp["lesions"].get(les.lesion_id)
            if truth is None or not truth["present"]:
                continue
            lp = pose.lesion_pose(les.center_at(visit))
            assert np.allclose(lp.to_lps(les.center_at(visit)), truth["center_lps"], atol=1e-3)
            shape = lesion_shape(les, visit, plan.contrast).placed(lp)
            k = truth["slice_index"]
            ks = range(max(k - 50, 0), min(k + 51, len(dss_grid.z)))
            sub = SliceGrid(dss_grid.rows, dss_grid.cols, dss_grid.pixel_spacing, dss_grid.x0,
                            dss_grid.y0, tuple(dss_grid.z[i] for i in ks), dss_grid.thickness)
            frac = np.zeros(sub.shape, np.float32)
            paint_lesion(frac, sub, LesionShape(shape.outer, 1.0, None, 0.0, shape.lobes))
            vol = Volume.from_grid(frac, (acq["slice_thickness_mm"],) * 1
                                   + (acq["pixel_spacing_mm"],) * 2,
                                   (sub.x0, sub.y0, sub.z[0]))
            m = measure_mask(vol, frac >= 0.5, node=truth["nodal"])
            assert m.long_axis_mm == pytest.approx(truth["long_axis_mm"], abs=0.5), \
                (visit, les.lesion_id)
            assert m.short_axis_mm == pytest.approx(truth["short_axis_mm"], abs=0.5), \
                (visit, les.lesion_id)


def _grid(tp: dict, plan) -> SliceGrid:
    from recist_tool.sample_data.generate import SCAN_RANGE_FULL_SIZE_Z, make_grid

    return make_grid(plan.acquisitions[tp["series_path"].split("/")[1]], plan.table_z,
                     scan_range=SCAN_RANGE_FULL_SIZE_Z)


@pytest.mark.slow
def test_full_size_series_load_with_the_project_loader(full):
    """``io.load_volume`` reads each series at its stated geometry, and the image holds each
    lesion (its density, or its core's) at the truth's centre, breathing included."""
    out, gt = full
    for tp in gt["subjects"]["SYN-001"]["timepoints"].values():
        vol = io.load_volume(out / tp["series_path"], tp["series_uid"], workers=1)
        acq = tp["acquisition"]
        assert list(vol.shape) == acq["shape_zyx"]
        assert np.allclose(vol.spacing, (acq["slice_thickness_mm"],
                                         acq["pixel_spacing_mm"], acq["pixel_spacing_mm"]))
        for lid, les in tp["lesions"].items():
            if not les["present"] or les["nominal_diameters_mm"][1] < 10.0:
                continue
            k, r, c = (int(round(v)) for v in vol.lps_to_index(les["center_lps"]))
            patch = vol.array[k - 1:k + 2, r - 2:r + 3, c - 2:c + 3]
            assert float(np.median(patch)) == pytest.approx(les["center_hu"], abs=25.0), lid


def test_cli_passes_full_size(tmp_path, monkeypatch, capsys):
    import recist_tool.sample_data as sample

    seen = {}

    def fake(out, seed=0, n_subjects=3, progress=None, large_lesions=False, full_size=False):
        seen.update(full_size=full_size, n_subjects=n_subjects)
        return trial_ground_truth(seed, n_subjects, large_lesions=large_lesions,
                                  full_size=full_size)

    monkeypatch.setattr(sample, "generate_trial", fake)
    assert main(["sample-data", str(tmp_path / "t"), "--n-subjects", "1", "--full-size"]) == 0
    assert seen == {"full_size": True, "n_subjects": 1}
    text = " ".join(capsys.readouterr().out.split())
    assert "full size" in text and "376" in text
