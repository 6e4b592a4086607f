"""The per-case job and the runner on tiny synthetic series (fast): a lesion is measured; a seed in
air, a wrong modality and corrupt files fail the case with a reason; a failed baseline stops its
follow-ups; a baseline-only batch stores, exports and re-runs without adding rows."""

from __future__ import annotations

import csv
import datetime as dt
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from pydicom.uid import generate_uid

from recist_tool.batch import Case, LesionSeed, plan_cases, read_manifest, run_batch, score_case
from recist_tool.batch.runner import LocalBackend, execute

from ..io.dicom_factory import ct_slice

RADIUS_MM = 7.0


def write_nodule_series(folder: Path, modality: str = "CT") -> tuple[float, float, float]:
    """A 48 x 48 x 32 series of 1 mm voxels: aerated lung with a 14 mm soft-tissue ball; returns
    the ball's centre (LPS mm)."""
    folder.mkdir(parents=True)
    uid = generate_uid()
    origin = np.array([-24.0, -24.0, -16.0])
    zz, yy, xx = np.mgrid[0:32, 0:48, 0:48].astype(float)
    centre_idx = np.array([16.0, 23.5, 24.5])  # (z, y, x)
    d = np.sqrt((zz - centre_idx[0]) ** 2 + (yy - centre_idx[1]) ** 2 + (xx - centre_idx[2]) ** 2)
    hu = np.where(d <= RADIUS_MM, 40.0, -850.0)
    rng = np.random.default_rng(1)
    stored = np.clip(hu + 1024 + rng.normal(0, 8, hu.shape), 0, 4000).astype(np.uint16)
    for k in range(32):
        ds = ct_slice(stored[k], tuple(origin + [0, 0, k]), series_uid=uid, spacing=(1.0, 1.0),
                      thickness=1.0, instance=32 - k, modality=modality)
        ds.save_as(folder / f"IM{k:04d}", enforce_file_format=True)
    x, y, z = origin + [centre_idx[2], centre_idx[1], centre_idx[0]]
    return (float(x), float(y), float(z))


@pytest.fixture(scope="module")
def nodule(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, tuple[float, float, float]]:
    root = tmp_path_factory.mktemp("nodule")
    return root / "ct", write_nodule_series(root / "ct")


def _case(path: Path, seed: tuple[float, float, float], visit: str = "BL") -> Case:
    return Case("P1", visit, dt.date(2025, 1, 2), str(path), None,
                (LesionSeed("T01", "target", "lung", False, seed, "m.csv:2"),), "m.csv:2")


def test_baseline_lesion_is_segmented_and_measured(nodule: tuple[Path, tuple]) -> None:
    path, centre = nodule
    r = score_case(_case(path, centre))
    assert r.ok, r.error
    (les,) = r.lesions
    assert les.state == "MEASURED" and les.status == "seeded" and les.segmenter == "classic"
    assert abs(les.long_axis_mm - 2 * RADIUS_MM) < 1.5 and abs(les.short_axis_mm - 2 * RADIUS_MM) < 1.5
    assert np.allclose(les.centroid_lps, centre, atol=0.6)
    assert r.n_slices == 32 and r.cpu_seconds > 0
    stages = dict(r.stages)  # the case's wall time by stage, and the worker's peak memory
    assert {"load", "segment", "measure"} <= set(stages) and "register" not in stages
    # each stage is stored to 0.1 ms, so their sum may pass the total by half that per stage
    assert 0 < sum(stages.values()) <= r.seconds + 0.00005 * len(stages) and r.peak_rss_mib > 50


def test_a_lesion_given_by_its_caliper_line_is_segmented_from_it(nodule: tuple[Path, tuple]
                                                                 ) -> None:
    """A manifest line (the reader's long axis, LPS mm) reaches the segmenter as the prompt's
    line: ``contour`` (which needs no seed) outlines the nodule from it."""
    path, centre = nodule
    x, y, z = centre
    line = ((x - RADIUS_MM, y, z), (x + RADIUS_MM, y, z))
    case = Case("P1", "BL", dt.date(2025, 1, 2), str(path), None,
                (LesionSeed("T01", "target", "lung", False, centre, "m.csv:2", line),), "m.csv:2")
    r = score_case(case, segmenter="contour")
    assert r.ok, r.error
    (les,) = r.lesions
    assert les.segmenter == "contour" and les.state == "MEASURED"
    assert abs(les.long_axis_mm - 2 * RADIUS_MM) < 1.5


@pytest.mark.parametrize(("kind", "reason"), [
    ("air", "T01 (m.csv:2): no lesion at this point"),
    ("mr", "no CT volume"),
    ("corrupt", "no CT volume"),
    ("missing", "missing"),
])
def test_bad_case_fails_with_a_reason(nodule: tuple[Path, tuple], tmp_path: Path, kind: str,
                                      reason: str) -> None:
    path, centre = nodule
    seed = centre
    if kind == "air":
        seed = (centre[0] + 15, centre[1] + 15, centre[2])
    elif kind == "mr":
        path = tmp_path / "mr"
        write_nodule_series(path, modality="MR")
    elif kind == "corrupt":
        path = tmp_path / "corrupt"
        path.mkdir()
        (path / "IM0001").write_bytes(b"\0" * 128 + b"DICM" + b"\xff" * 64)
    else:
        path = tmp_path / "missing"
    r = score_case(_case(path, seed))
    assert not r.ok and r.lesions == ()
    assert reason in r.error and "\n" not in r.error


def test_failed_baseline_stops_its_followups(nodule: tuple[Path, tuple], tmp_path: Path) -> None:
    path, centre = nodule
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "subject,visit,date,series_path,lesion_id,category,organ,nodal,seed_x,seed_y,seed_z\n"
        f"P1,BL,2025-01-02,{path},T01,target,lung,false,{centre[0] + 15},{centre[1] + 15},{centre[2]}\n"
        f"P1,W06,2025-02-13,{path},,,,,,,\n")
    seen = []
    backend = LocalBackend(0, "classic")
    results = execute(plan_cases(read_manifest(manifest)), backend,
                      on_result=lambda c, r: seen.append((c.visit, r.ok, r.error)))
    assert [(r.visit, r.ok) for r in results] == [("BL", False), ("W06", False)]
    assert seen[1] == ("W06", False, "not scored: baseline BL failed")


def test_baseline_only_batch_stores_exports_and_reruns(nodule: tuple[Path, tuple],
                                                       tmp_path: Path) -> None:
    path, centre = nodule
    manifest = tmp_path / "m.toml"
    manifest.write_text(f'[[case]]\nsubject = "P1"\nvisit = "BL"\ndate = 2025-01-02\n'
                        f'series_path = "{path}"\nlesions = [{{ lesion_id = "T01", category = '
                        f'"target", organ = "lung", seed = [{centre[0]}, {centre[1]}, {centre[2]}] }}]\n')
    db = tmp_path / "r.db"
    s = run_batch(manifest, db=db, outdir=tmp_path / "out", workers=0, segmenter="classic")
    assert s.ok and len(s.results) == 1 and s.backend == "in-process"
    rows = list(csv.DictReader((tmp_path / "out" / "measurements.csv").open()))
    assert [(r["subject"], r["visit"], r["lesion_id"], r["category"], r["state"]) for r in rows] == [
        ("P1", "BL", "T01", "TARGET", "MEASURED")]
    resp = list(csv.DictReader((tmp_path / "out" / "responses.csv").open()))
    assert resp[0]["sod_mm"] == rows[0]["long_axis_mm"] and resp[0]["overall_response"] == ""
    with sqlite3.connect(db) as c:
        before = [c.execute(f"select count(*) from {t}").fetchone()[0]
                  for t in ("measurement", "lesion", "timepoint", "reader", "audit_event")]
    again = run_batch(manifest, db=db, outdir=tmp_path / "out", workers=0,
                      segmenter="classic")  # no --resume
    assert again.ok and len(again.results) == 1
    with sqlite3.connect(db) as c:
        after = [c.execute(f"select count(*) from {t}").fetchone()[0]
                 for t in ("measurement", "lesion", "timepoint", "reader", "audit_event")]
    assert after == before
    assert (tmp_path / "out" / "measurements.csv").read_text().count("\n") == 2
    assert not list((tmp_path / "out").glob(".*.tmp"))


def test_segmenter_options(nodule: tuple[Path, tuple]) -> None:
    from recist_tool.batch.job import parse_segmenter_spec, worker_segmenter
    from recist_tool.errors import UsageError

    assert parse_segmenter_spec("classic") == ("classic", {})
    assert parse_segmenter_spec("classic:band_fraction=0.5, radius_mm=40") == (
        "classic", {"band_fraction": 0.5, "radius_mm": 40})
    assert parse_segmenter_spec("unet:weights=/m/u.pt") == ("unet", {"weights": "/m/u.pt"})
    with pytest.raises(UsageError, match="not key=value"):
        parse_segmenter_spec("classic:0.5")
    with pytest.raises(UsageError, match="does not take the options"):
        worker_segmenter("classic:colour=1")
    path, centre = nodule
    r = score_case(_case(path, centre), segmenter="classic:band_fraction=0.5")
    assert r.ok and r.lesions[0].segmenter_version.endswith("(band_fraction=0.5)")
    assert worker_segmenter("classic:band_fraction=0.5").band_fraction == 0.5
