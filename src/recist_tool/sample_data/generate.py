"""Generate the synthetic trial: DICOM series, ``ground_truth.json`` and ``manifest.csv``.

Layout written under ``out_dir``::

    ground_truth.json
    manifest.csv
    SYN-001/BL/CT000001.dcm ...      one folder per subject and visit (the folder of SYN-001/BL
    SYN-001/W06/...                  also holds a localizer, a second series)
    SYN-001/W12/...
    SYN-002/...

The same seed gives byte-identical files: UIDs are hashes of the seed and names, noise and patient
shifts come from ``numpy.random.default_rng`` seeded with ``[seed, subject, visit]``.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import numpy as np

from recist_tool.sample_data.dicom_writer import (
    SeriesHeader,
    det_uid,
    write_ct_series,
    write_localizer,
)
from recist_tool.sample_data.expected import check_margins, expected_responses
from recist_tool.sample_data.phantom import (
    Ellipsoid,
    LesionShape,
    Pose,
    SliceGrid,
    add_noise,
    paint_lesion,
    render_anatomy,
    xyz,
)
from recist_tool.sample_data.scenario import (
    LESION_HU,
    NECROSIS_HU,
    VISITS,
    Acquisition,
    LesionPlan,
    Lobe,
    SubjectPlan,
    build_subjects,
)

__all__ = ["generate_trial", "trial_ground_truth", "write_benchmark_series", "MANIFEST_COLUMNS",
           "GENERATOR_VERSION"]

GENERATOR_VERSION = "1"
MANIFEST_COLUMNS = ("subject", "visit", "date", "series_path", "series_uid", "lesion_id",
                    "category", "organ", "nodal", "seed_x", "seed_y", "seed_z")
#: Scan range in the body frame (mm, feet → head) and the reconstruction centre's LPS ``y``.
SCAN_RANGE_BODY_Z = (-140.0, 75.0)
#: The full-size profile's scan range (chest and abdomen, 375 mm: 301–376 slices of 1–1.25 mm).
SCAN_RANGE_FULL_SIZE_Z = (-300.0, 75.0)
#: The full-size profile's inspiration level at follow-ups relative to baseline (mm at the lung
#: bases, random sign): the breathing difference between visits (:class:`Pose`).
BREATH_RANGE_MM = (3.0, 8.0)
RECON_CENTER_Y = 18.0
#: Semi-axes of a cavity relative to its nodule, and the cavity's density.
CAVITY_SCALE = 0.45
CAVITY_HU = -950.0


def make_grid(acq: Acquisition, table_z: float, n_slices: int | None = None,
              scan_range: tuple[float, float] = SCAN_RANGE_BODY_Z) -> SliceGrid:
    """The axial grid of an acquisition, covering the fixed ``scan_range`` (body frame, mm)
    around ``table_z``."""
    px = acq.pixel_spacing
    n = acq.matrix
    dz = acq.slice_thickness
    z0 = table_z + scan_range[0]
    if n_slices is None:
        n_slices = int((scan_range[1] - scan_range[0]) / dz) + 1
    z = tuple(round(z0 + k * dz, 4) for k in range(n_slices))
    x0 = round(-(n - 1) / 2 * px, 4)
    y0 = round(RECON_CENTER_Y - (n - 1) / 2 * px, 4)
    return SliceGrid(n, n, (px, px), x0, y0, z, dz)


def _lobe(outer: Ellipsoid, lobe: Lobe) -> Ellipsoid:
    """A lobe (given relative to the main ellipsoid's frame and semi-axes) in the body frame."""
    rot = outer.rotation_matrix
    semi = np.asarray(outer.semi_axes, float)
    center = np.asarray(outer.center, float) + rot @ (semi * np.asarray(lobe.offset, float))
    a = np.deg2rad(lobe.yaw_deg)
    turn = np.array([[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0], [0.0, 0.0, 1.0]])
    return Ellipsoid(xyz(center), xyz(semi * np.asarray(lobe.semi, float)),
                     tuple(xyz(row) for row in rot @ turn))


def lesion_shape(les: LesionPlan, visit: str, contrast: bool) -> LesionShape | None:
    """The analytic lesion (body frame) at ``visit``; None when absent or not yet there."""
    size = les.sizes.get(visit)
    if size is None:
        return None
    outer = Ellipsoid.oriented(les.center_at(visit), [s / 2.0 for s in size], les.yaw_deg,
                               les.tilt_deg)
    hu = LESION_HU[les.tissue][1 if contrast else 0]
    lobes = tuple(_lobe(outer, lobe) for lobe in les.lobes)
    if les.cavitating_from is not None:
        order = [v for v, _ in VISITS]
        if order.index(visit) >= order.index(les.cavitating_from):
            return LesionShape(outer, hu, outer.scaled(CAVITY_SCALE), CAVITY_HU, lobes)
    if les.necrotic_core is not None:
        return LesionShape(outer, hu, outer.scaled(les.necrotic_core),
                           NECROSIS_HU[1 if contrast else 0], lobes)
    return LesionShape(outer, hu, None, CAVITY_HU, lobes)


def _pose(rng: np.random.Generator, table_z: float, baseline: bool) -> Pose:
    if baseline:
        return Pose(0.0, (0.0, RECON_CENTER_Y, table_z))
    sign = rng.choice([-1.0, 1.0], size=3)
    mag = rng.uniform([1.5, 1.5, 2.0], [4.0, 4.0, 6.0])
    shift = sign * mag
    yaw = float(rng.uniform(-1.5, 1.5))
    translation = (round(float(shift[0]), 2), round(RECON_CENTER_Y + float(shift[1]), 2),
                   round(table_z + float(shift[2]), 2))
    return Pose(round(yaw, 3), translation)


def _r(v: float, nd: int = 2) -> float:
    return float(round(float(v), nd))


def _header(plan: SubjectPlan, subj_i: int, visit: str, visit_i: int, acq: Acquisition,
            seed: int, full_size: bool = False) -> SeriesHeader:
    sid = plan.subject
    if full_size:  # UIDs of their own: the full-size series are other images of the same visit
        sid_uid: object = ("full-size", sid)
    else:
        sid_uid = sid
    return SeriesHeader(
        patient_name=plan.patient_name,
        patient_id=sid,
        study_uid=det_uid(seed, sid_uid, visit, "study"),
        series_uid=det_uid(seed, sid_uid, visit, "series"),
        frame_of_reference_uid=det_uid(seed, sid_uid, visit, "frame"),
        study_date=plan.dates[visit],
        study_time=f"{9 + (subj_i + visit_i) % 7:02d}{(17 * subj_i + 11 * visit_i) % 60:02d}00",
        accession_number=f"SYNACC{subj_i:03d}{visit_i:02d}",
        study_id=f"{subj_i}{visit_i:02d}",
        study_description="CT CHEST ABDOMEN WITH CONTRAST" if plan.contrast
        else "CT CHEST ABDOMEN",
        series_number=2,
        series_description=f"AX {acq.slice_thickness:g}mm {acq.kernel}",
        manufacturer=acq.manufacturer,
        model=acq.model,
        kernel=acq.kernel,
        kvp=acq.kvp,
        contrast_agent="IOHEXOL 350" if plan.contrast else None,
        slice_thickness=acq.slice_thickness,
        pixel_signed=acq.pixel_signed,
        trial_subject=sid,
        trial_timepoint=visit,
    )


def _visit_lesions(plan: SubjectPlan, visit: str, grid: SliceGrid, pose: Pose,
                   require_all: bool = True,
                   ) -> tuple[dict[str, dict[str, Any]], list[LesionShape]]:
    """Ground-truth entries of the lesions at ``visit`` and their shapes placed in LPS."""
    lesions: dict[str, dict[str, Any]] = {}
    shapes: list[LesionShape] = []
    for les in plan.lesions:
        if visit not in les.sizes:
            continue  # a new lesion before it appears
        shape = lesion_shape(les, visit, plan.contrast)
        les_pose = pose.lesion_pose(les.center_at(visit))  # pose itself unless breathing
        center_lps = les_pose.to_lps(les.center_at(visit))
        entry: dict[str, Any] = {
            "category": les.category,
            "organ": les.organ,
            "nodal": les.nodal,
            "center_lps": [_r(v, 3) for v in center_lps],
            "long_axis_mm": 0.0,
            "short_axis_mm": 0.0,
            "present": shape is not None,
            "site": les.site,
            "lesion_hu": LESION_HU[les.tissue][1 if plan.contrast else 0],
        }
        if shape is not None:
            placed = shape.placed(les_pose)
            sec = placed.measure_on(grid, nodal=les.nodal)
            if sec is None:
                if not require_all:
                    continue
                # the design keeps every lesion inside the scan range
                raise RuntimeError(f"{plan.subject} {visit} {les.lesion_id} misses every slice")
            entry.update({
                "long_axis_mm": _r(sec.long_axis_mm),
                "short_axis_mm": _r(sec.short_axis_mm),
                "slice_index": sec.slice_index,
                "slice_z_lps": _r(sec.z, 4),
                "center_hu": shape.core_hu if shape.core is not None else shape.hu,
                "cavitating": shape.core is not None and shape.core_hu == CAVITY_HU,
                "nominal_diameters_mm": list(cast("tuple[float, float, float]", les.sizes[visit])),
            })
            if les.lobes:
                entry["ellipsoids"] = 1 + len(les.lobes)
            if les.necrotic_core is not None:
                entry["necrotic_core"] = True
                entry["rim_enhancing"] = plan.contrast
            shapes.append(placed)
        lesions[les.lesion_id] = entry
    return lesions, shapes


def _render_visit(plan: SubjectPlan, visit: str, grid: SliceGrid, pose: Pose, acq: Acquisition,
                  rng: np.random.Generator, require_all: bool = True,
                  ) -> tuple[np.ndarray, dict[str, dict[str, Any]]]:
    lesions, shapes = _visit_lesions(plan, visit, grid, pose, require_all)
    vol = render_anatomy(grid, pose, plan.contrast)
    for shape in shapes:
        paint_lesion(vol, grid, shape)
    hu = add_noise(vol, rng, acq.noise_hu, acq.psf_sigma_mm / acq.pixel_spacing)
    return hu, lesions


def generate_trial(
    out_dir: str | os.PathLike[str],
    seed: int = 0,
    n_subjects: int = 3,
    progress: Callable[[str], None] | None = None,
    large_lesions: bool = False,
    full_size: bool = False,
) -> dict[str, Any]:
    """Write the synthetic trial under ``out_dir`` and return its ground truth.

    Parameters
    ----------
    out_dir : path
        Output folder (created; existing files of the same names are overwritten).
    seed : int
        Seeds UIDs, image noise and patient shifts; lesion sizes and dates are fixed by the design.
    n_subjects : int
        Number of subjects (>= 1); archetypes A (PR), B (SD → PD by new lesion), C (SD → PD by
        growth) repeat in that order.
    progress : callable, optional
        Called with a short message after each series.
    large_lesions : bool
        Write the large-lesion trial instead (``README.md``): a lobulated ~80 mm central lung
        primary abutting the mediastinum (SYN-001 T05), a nodal conglomerate (SYN-002 T03) and
        a ~50 mm necrotic, rim-enhancing liver metastasis (SYN-003 T04), with the same responses.
    full_size : bool
        The full-size profile (``README.md``): 512 × 512 pixels of 0.70–0.78 mm, 301–376 slices
        of 1–1.25 mm over 375 mm of chest and abdomen, breathing differences between visits,
        the large-lesion design (implies ``large_lesions``), UIDs of their own.

    Returns
    -------
    dict
        The content written to ``ground_truth.json``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return _build_trial(out, seed, n_subjects, progress, large_lesions, full_size)


def trial_ground_truth(seed: int = 0, n_subjects: int = 3,
                       large_lesions: bool = False, full_size: bool = False) -> dict[str, Any]:
    """The ground truth :func:`generate_trial` would write, without rendering any image.

    Fast (milliseconds; a fraction of a second with ``large_lesions``, whose lobulated lesions
    are measured numerically): geometry, patient shifts, lesion axes and expected responses only.
    """
    return _build_trial(None, seed, n_subjects, None, large_lesions, full_size)


def _build_trial(out: Path | None, seed: int, n_subjects: int,
                 progress: Callable[[str], None] | None,
                 large_lesions: bool = False, full_size: bool = False) -> dict[str, Any]:
    if n_subjects < 1:
        raise ValueError("n_subjects must be at least 1")
    large_lesions = large_lesions or full_size
    plans = build_subjects(n_subjects, rng=np.random.default_rng([seed, 10_000]),
                           large_lesions=large_lesions, full_size=full_size)
    scan_range = SCAN_RANGE_FULL_SIZE_Z if full_size else SCAN_RANGE_BODY_Z
    generator: dict[str, Any] = {"name": "recist_tool.sample_data", "version": GENERATOR_VERSION,
                                 "seed": seed, "n_subjects": n_subjects}
    if large_lesions:
        generator["large_lesions"] = True
    if full_size:
        generator["profile"] = "full-size"
    gt: dict[str, Any] = {
        "generator": generator,
        "conventions": {
            "coordinates": "DICOM patient LPS, mm",
            "long_axis_mm": "largest in-plane diameter of the analytic lesion over the axial "
                            "slice planes of the series (slice with the largest short axis for "
                            "nodes), edge to edge",
            "short_axis_mm": "longest chord perpendicular to the long axis on that slice",
            "slice_index": "index in the stack sorted by ascending z (along the slice normal)",
            "overall_response": "RECIST 1.1 expected at each follow-up; null at baseline",
        },
        "subjects": {},
    }
    rows: list[dict[str, str]] = []
    for subj_i, plan in enumerate(plans, start=1):
        prng = np.random.default_rng([seed, subj_i, 0])
        brng = np.random.default_rng([seed, subj_i, 0, 2])  # breathing, full-size only
        tps: dict[str, Any] = {}
        for visit_i, (visit, _) in enumerate(VISITS):
            acq = plan.acquisitions[visit]
            pose = _pose(prng, plan.table_z, baseline=visit_i == 0)
            if full_size and visit_i > 0:
                breath = float(brng.choice([-1.0, 1.0]) * brng.uniform(*BREATH_RANGE_MM))
                pose = replace(pose, breath_mm=round(breath, 2))
            grid = make_grid(acq, plan.table_z, scan_range=scan_range)
            header = _header(plan, subj_i, visit, visit_i, acq, seed, full_size)
            rel = f"{plan.subject}/{visit}"
            if out is None:
                lesions, _ = _visit_lesions(plan, visit, grid, pose)
            else:
                rng = np.random.default_rng([seed, subj_i, visit_i + 1])
                hu, lesions = _render_visit(plan, visit, grid, pose, acq, rng)
                folder = out / rel
                order = None
                if acq.shuffle_instance_numbers:
                    order = (np.random.default_rng([seed, subj_i, visit_i + 1, 1])
                             .permutation(len(grid.z)) + 1).tolist()
                write_ct_series(folder, hu, grid, header, seed, instance_order=order,
                                no_extension=acq.no_extension)
                if acq.localizer:
                    scout = SeriesHeader(**{**header.__dict__, "series_number": 1,
                                            "series_uid": det_uid(
                                                seed, ("full-size", plan.subject) if full_size
                                                else plan.subject, visit, "scout")})
                    write_localizer(folder, hu, grid, scout, seed)
            base_pose = Pose(0.0, (0.0, RECON_CENTER_Y, plan.table_z))
            tps[visit] = {
                "date": plan.dates[visit].isoformat(),
                "series_path": rel,
                "series_uid": header.series_uid,
                "study_uid": header.study_uid,
                "overall_response": None,
                "acquisition": {
                    "pixel_spacing_mm": acq.pixel_spacing,
                    "slice_thickness_mm": acq.slice_thickness,
                    "slice_spacing_mm": acq.slice_thickness,
                    "shape_zyx": list(grid.shape),
                    "kernel": acq.kernel,
                    "manufacturer": acq.manufacturer,
                    "contrast": plan.contrast,
                    "stored": "int16 signed, intercept 0" if acq.pixel_signed
                    else "uint16 (12 bits), intercept -1024",
                    "instance_numbers_shuffled": acq.shuffle_instance_numbers,
                    "file_extension": "" if acq.no_extension else ".dcm",
                    "localizer_in_folder": acq.localizer,
                },
                "patient_pose": {
                    "yaw_deg": pose.yaw_deg,
                    "shift_from_baseline_mm": [_r(a - b, 3) for a, b in
                                               zip(pose.translation, base_pose.translation,
                                                   strict=True)],
                    **({"breath_mm": pose.breath_mm} if full_size else {}),
                },
                "lesions": lesions,
            }
            if progress is not None:
                progress(f"{rel}: {grid.shape[0]} slices, {len(lesions)} lesions")
        responses = expected_responses([tps[v]["lesions"] for v, _ in VISITS])
        for (visit, _), resp in zip(VISITS, responses, strict=True):
            if resp is None:
                continue
            problems = check_margins(resp)
            if problems:  # pragma: no cover - guards the design against borderline cases
                raise RuntimeError(f"{plan.subject} {visit}: borderline design: {problems}")
            tps[visit].update(resp.as_json())
        gt["subjects"][plan.subject] = {
            "patient_id": plan.subject,
            "archetype": plan.archetype,
            "description": plan.description,
            "contrast": plan.contrast,
            "timepoints": tps,
        }
        rows.extend(_manifest_rows(tps))
    if out is not None:
        (out / "ground_truth.json").write_text(json.dumps(gt, indent=2) + "\n")
        with open(out / "manifest.csv", "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
            w.writeheader()
            w.writerows(rows)
    return gt


def _manifest_rows(tps: dict[str, Any]) -> list[dict[str, str]]:
    rows = []
    subject = None
    for visit_i, (visit, tp) in enumerate(tps.items()):
        subject = tp["series_path"].split("/")[0]
        common = {"subject": subject, "visit": visit, "date": tp["date"],
                  "series_path": tp["series_path"], "series_uid": tp["series_uid"]}
        blank = {k: "" for k in MANIFEST_COLUMNS[5:]}
        if visit_i > 0:
            rows.append({**common, **blank})
        for lid, les in tp["lesions"].items():
            if visit_i > 0 and les["category"] != "new":
                continue
            if visit_i > 0 and any(lid in prev["lesions"] for prev in list(tps.values())[:visit_i]):
                continue
            x, y, z = les["center_lps"]
            rows.append({**common, "lesion_id": lid, "category": les["category"],
                         "organ": les["organ"], "nodal": "true" if les["nodal"] else "false",
                         "seed_x": f"{x:.2f}", "seed_y": f"{y:.2f}", "seed_z": f"{z:.2f}"})
    return rows


def lesion_free_volume(pixel_mm: float, slice_mm: float, contrast: bool, seed: int = 0):
    """The sample trial's anatomy without lesions, with the blur and noise of a series of its
    geometry: a :class:`~recist_tool.volume.Volume` (a background for training, and normal
    tissue to click on in tests).

    Parameters
    ----------
    pixel_mm, slice_mm : float
        Pixel spacing and slice thickness (mm).
    contrast : bool
        Contrast-enhanced (portal-venous liver) or not.
    seed : int
        Seed of the noise.
    """
    from recist_tool.volume import Volume

    acq = Acquisition(pixel_mm, slice_mm, "STANDARD", "GE MEDICAL SYSTEMS", "phantom", 120.0)
    grid = make_grid(acq, table_z=-150.0)
    pose = Pose(0.0, (0.0, RECON_CENTER_Y, -150.0))
    hu = render_anatomy(grid, pose, contrast)
    hu = add_noise(hu, np.random.default_rng(seed), acq.noise_hu,
                   acq.psf_sigma_mm / acq.pixel_spacing)
    return Volume.from_grid(hu, (slice_mm, pixel_mm, pixel_mm), (grid.x0, grid.y0, grid.z[0]))


def write_benchmark_series(
    out_dir: str | os.PathLike[str],
    shape: tuple[int, int, int] = (300, 512, 512),
    transfer_syntax: str = "explicit",
    seed: int = 0,
    workers: int | None = None,
) -> dict[str, Any]:
    """Write one large CT series (the loader benchmark's input) into ``out_dir``.

    The phantom is subject ``SYN-001``'s baseline (archetype A) on a ``shape`` = ``(z, y, x)``
    grid: square pixels of 350 mm / ``x`` and 1 mm slices ending at the lung apices.

    Parameters
    ----------
    out_dir : path
        Folder for the files (created).
    shape : tuple of int
        ``(slices, rows, columns)``; rows must equal columns.
    transfer_syntax : {"explicit", "jpeg2000"}
        Explicit VR Little Endian, or JPEG 2000 lossless encoded with pylibjpeg-openjpeg.
    seed : int
        Seeds noise and UIDs.
    workers : int, optional
        Processes for encoding and writing (default: all CPUs for JPEG 2000, 1 otherwise).

    Returns
    -------
    dict
        ``folder``, ``series_uid``, ``shape_zyx``, ``spacing_zyx_mm``, ``transfer_syntax``,
        ``n_files``, ``bytes``.
    """
    nz, ny, nx = shape
    if ny != nx:
        raise ValueError("write_benchmark_series needs square slices (rows == columns)")
    if transfer_syntax not in ("explicit", "jpeg2000"):
        raise ValueError(
            f"transfer_syntax must be 'explicit' or 'jpeg2000', got {transfer_syntax!r}")
    if workers is None:
        workers = (os.cpu_count() or 1) if transfer_syntax == "jpeg2000" else 1
    plan = build_subjects(1)[0]
    px = round(350.0 / nx, 8)
    acq = Acquisition(px, 1.0, "STANDARD", "GE MEDICAL SYSTEMS", "Revolution CT", 120.0,
                      matrix=nx)
    table_z = -150.0
    grid = make_grid(acq, table_z, n_slices=nz)
    top = table_z + SCAN_RANGE_BODY_Z[1]
    grid = SliceGrid(grid.rows, grid.cols, grid.pixel_spacing, grid.x0, grid.y0,
                     tuple(round(top - (nz - 1 - k) * 1.0, 4) for k in range(nz)), 1.0)
    pose = Pose(0.0, (0.0, RECON_CENTER_Y, table_z))
    hu, _ = _render_visit(plan, "BL", grid, pose, acq, np.random.default_rng([seed, 99]),
                          require_all=False)
    header = _header(plan, 1, "BL", 0, acq, seed)
    header = SeriesHeader(**{**header.__dict__,
                             "series_uid": det_uid(seed, "benchmark", shape, "series"),
                             "series_description": f"BENCHMARK {nz}x{ny}x{nx} {transfer_syntax}"})
    paths = write_ct_series(out_dir, hu, grid, header, seed, transfer_syntax=transfer_syntax,
                            workers=workers)
    return {
        "folder": str(Path(out_dir)),
        "series_uid": header.series_uid,
        "shape_zyx": [nz, ny, nx],
        "spacing_zyx_mm": [1.0, px, px],
        "transfer_syntax": transfer_syntax,
        "n_files": len(paths),
        "bytes": sum(p.stat().st_size for p in paths),
    }
