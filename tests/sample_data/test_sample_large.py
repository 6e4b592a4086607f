"""The large-lesion trial (``large_lesions=True``): analytic truth of unions of ellipsoids, the
design (sizes, organs, responses from expected.py, RECIST limits) and the rendered lesions."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from scipy import ndimage
from scipy.spatial import ConvexHull, distance

from recist_tool.cli import main
from recist_tool.measure import measure_mask
from recist_tool.sample_data import generate_trial, trial_ground_truth
from recist_tool.sample_data.expected import expected_responses
from recist_tool.sample_data.generate import (
    RECON_CENTER_Y,
    _pose,
    _visit_lesions,
    make_grid,
)
from recist_tool.sample_data.phantom import (
    Ellipsoid,
    LesionShape,
    Pose,
    SliceGrid,
    paint_lesion,
    render_anatomy,
    union_section,
)
from recist_tool.sample_data.scenario import build_subjects
from recist_tool.volume import Volume

VISITS = ["BL", "W06", "W12"]
#: The large lesions: subject -> lesion id.
LARGE = {"SYN-001": "T05", "SYN-002": "T03", "SYN-003": "T04"}
DESIGNED = {"A": ["PR", "PR"], "B": ["SD", "PD"], "C": ["SD", "PD"]}


def _brute_section(parts: list[Ellipsoid], z: float) -> tuple[float, float]:
    """Long and short axis of a union's section, independently: the diameter of dense boundary
    points of the union, and the longest inside run along many perpendicular lines."""
    pts = []
    theta = np.linspace(0.0, 2.0 * np.pi, 4000, endpoint=False)
    for e in parts:
        sec = e.section(z)
        if sec is None:
            continue
        m, b2, k = sec
        lam, q = np.linalg.eigh(b2)
        circle = np.stack([np.cos(theta), np.sin(theta)], -1) * np.sqrt(k / lam)
        pts.append(m + circle @ q.T)
    p = np.concatenate(pts)
    hull = p[ConvexHull(p).vertices]
    d = distance.squareform(distance.pdist(hull))
    i, j = np.unravel_index(np.argmax(d), d.shape)
    la = float(d[i, j])
    u = (hull[j] - hull[i]) / la
    w = np.array([-u[1], u[0]])
    span = p @ w
    s = np.arange(span.min() - 1.0, span.max() + 1.0, 0.01)
    best = 0.0
    for t in np.linspace(hull[i] @ u, hull[j] @ u, 500):
        q3 = np.column_stack([t * u[0] + s * w[0], t * u[1] + s * w[1], np.full(s.size, z)])
        inside = np.zeros(s.size, bool)
        for e in parts:
            inside |= e.contains(q3)
        if inside.any():
            edges = np.diff(np.concatenate([[0], inside.astype(int), [0]]))
            runs = np.nonzero(edges == -1)[0] - np.nonzero(edges == 1)[0]
            best = max(best, float(runs.max()) * 0.01)
    return la, best


@pytest.mark.parametrize("z", [0.0, 7.0, -11.0])
def test_union_section_matches_brute_force(z):
    parts = [Ellipsoid.oriented((0.0, 0.0, 0.0), (30.0, 20.0, 25.0), 20.0, 10.0),
             Ellipsoid.oriented((25.0, 15.0, 3.0), (15.0, 12.0, 14.0), -30.0),
             Ellipsoid.oriented((-20.0, -18.0, -4.0), (12.0, 10.0, 12.0), 50.0)]
    la, sa, _ = union_section(parts, z)
    la_b, sa_b = _brute_section(parts, z)
    assert la == pytest.approx(la_b, abs=0.005)
    assert sa == pytest.approx(sa_b, abs=0.05)


def test_union_of_one_ellipsoid_is_its_closed_form():
    ell = Ellipsoid.oriented((3.0, -7.0, 11.0), (16.0, 9.0, 20.0), 70.0, 35.0)
    la, sa, _ = union_section([ell], 15.0)
    la_c, sa_c, _ = ell.axial_section(15.0)
    assert la == pytest.approx(la_c, abs=1e-6) and sa == pytest.approx(sa_c, abs=1e-4)
    assert union_section([ell], 60.0) is None


def test_union_chord_stays_inside_the_lesion():
    """Two lobes side by side: the perpendicular chord of the union does not bridge the notch."""
    a = Ellipsoid((-12.0, 0.0, 0.0), (10.0, 6.0, 6.0))
    b = Ellipsoid((12.0, 0.0, 0.0), (10.0, 6.0, 6.0))
    la, sa, _ = union_section([a, b], 0.0)
    assert la == pytest.approx(44.0, abs=1e-6)
    assert sa == pytest.approx(12.0, abs=1e-3)  # one lobe's width, not a hull width


@pytest.mark.parametrize("subject", ["SYN-001", "SYN-002"])
def test_measure_on_skips_slices_without_changing_the_answer(subject):
    """Slices ordered by a diameter bound give what measuring every slice gives."""
    plan = next(p for p in build_subjects(3, large_lesions=True) if p.subject == subject)
    pose = Pose(0.0, (0.0, RECON_CENTER_Y, plan.table_z))
    grid = make_grid(plan.acquisitions["BL"], plan.table_z)
    _, shapes = _visit_lesions(plan, "BL", grid, pose)
    shape = next(s for s in shapes if s.lobes)
    nodal = subject == "SYN-002"
    fast = shape.measure_on(grid, nodal=nodal)
    full = max(((sec[1] if nodal else sec[0], -k, k, sec) for k, z in enumerate(grid.z)
                if (sec := union_section(shape.parts, float(z))) is not None))
    assert fast.slice_index == full[2]
    assert (fast.long_axis_mm, fast.short_axis_mm) == (full[3][0], full[3][1])


@pytest.fixture(scope="module")
def large_gt() -> dict:
    return trial_ground_truth(seed=0, n_subjects=3, large_lesions=True)


def test_large_lesions_sizes_organs_and_shapes(large_gt):
    assert large_gt["generator"]["large_lesions"] is True
    s = large_gt["subjects"]
    primary = [s["SYN-001"]["timepoints"][v]["lesions"]["T05"] for v in VISITS]
    assert all(p["organ"] == "lung" and not p["nodal"] and p["category"] == "target"
               for p in primary)
    assert 78.0 <= primary[0]["long_axis_mm"] <= 82.0
    assert [p["ellipsoids"] for p in primary] == [4, 4, 4]
    assert [p["cavitating"] for p in primary] == [False, True, True]
    node = [s["SYN-002"]["timepoints"][v]["lesions"]["T03"] for v in VISITS]
    assert all(n["organ"] == "lymph node" and n["nodal"] and n["ellipsoids"] == 3 for n in node)
    assert all(n["short_axis_mm"] >= 15.0 and n["long_axis_mm"] > 1.7 * n["short_axis_mm"]
               for n in node)  # merged nodes: far longer than wide
    met = [s["SYN-003"]["timepoints"][v]["lesions"]["T04"] for v in VISITS]
    assert all(m["organ"] == "liver" and m["necrotic_core"] and m["rim_enhancing"] for m in met)
    assert 48.0 <= met[0]["long_axis_mm"] <= 52.0
    assert all(m["center_hu"] < m["lesion_hu"] < 105.0 for m in met)  # core < rim < liver
    # the primary shrinks towards the mediastinum: its medial end stays where it was
    centres = [np.asarray(p["center_lps"]) for p in primary]
    assert centres[1][0] > centres[0][0] + 5.0  # x: towards the patient's left (medial)


def test_large_trial_keeps_the_other_lesions_of_the_default_trial(large_gt):
    default = trial_ground_truth(seed=0, n_subjects=3)
    assert "large_lesions" not in default["generator"]
    for sid, subj in default["subjects"].items():
        for visit, tp in subj["timepoints"].items():
            big = large_gt["subjects"][sid]["timepoints"][visit]
            assert big["series_uid"] == tp["series_uid"]
            assert big["patient_pose"] == tp["patient_pose"]
            for lid, les in tp["lesions"].items():
                assert "ellipsoids" not in les and "necrotic_core" not in les
                if lid != LARGE[sid]:
                    assert big["lesions"][lid] == les, (sid, visit, lid)


@pytest.mark.parametrize("seed", [0, 7, 23])
def test_large_trial_design_rules_and_responses(seed):
    gt = trial_ground_truth(seed=seed, n_subjects=6, large_lesions=True)  # raises if borderline
    for sid, subj in gt["subjects"].items():
        tps = subj["timepoints"]
        got = [tps[v]["overall_response"] for v in VISITS[1:]]
        assert got == DESIGNED[subj["archetype"]], sid
        bl = tps["BL"]["lesions"]
        targets = {i: les for i, les in bl.items() if les["category"] == "target"}
        assert len(targets) <= 5
        assert max(Counter(les["organ"] for les in targets.values()).values()) <= 2
        for les in targets.values():
            assert les["short_axis_mm"] >= 15.0 if les["nodal"] else les["long_axis_mm"] >= 10.0
        # expected.py on the listed lesions gives the stored responses and sums
        recomputed = expected_responses([tps[v]["lesions"] for v in VISITS])
        for visit, r in zip(VISITS[1:], recomputed[1:], strict=True):
            tp = tps[visit]
            assert r.as_json() == {k: tp[k] for k in r.as_json()}, (sid, visit)
            assert abs(tp["change_from_baseline_pct"] + 30.0) >= 3.0
            assert abs(tp["change_from_nadir_pct"] - 20.0) >= 3.0
        large = [les for les in bl.values() if "ellipsoids" in les or "necrotic_core" in les]
        assert len(large) == 1, sid


def _baseline(subject: str):
    plan = next(p for p in build_subjects(3, large_lesions=True) if p.subject == subject)
    grid = make_grid(plan.acquisitions["BL"], plan.table_z)
    pose = _pose(np.random.default_rng(0), plan.table_z, baseline=True)
    lesions, shapes = _visit_lesions(plan, "BL", grid, pose)
    lid = LARGE[subject]
    shape = shapes[[i for i, les in lesions.items() if les["present"]].index(lid)]
    return plan, grid, pose, lesions[lid], shape


def _one_slice(grid: SliceGrid, k: int) -> SliceGrid:
    return SliceGrid(grid.rows, grid.cols, grid.pixel_spacing, grid.x0, grid.y0, (grid.z[k],),
                     grid.thickness)


@pytest.mark.parametrize("subject", list(LARGE))
def test_project_measurement_of_the_rasterised_lesion_agrees_with_the_truth(subject):
    """The truth's convention is the project's: a perfect partial-volume mask of the lesion on
    the series' grid, measured by ``measure_mask``, gives the stated axes within 0.4 mm."""
    _, grid, _, truth, shape = _baseline(subject)
    k = truth["slice_index"]
    ks = range(max(k - 30, 0), min(k + 31, len(grid.z)))
    sub = SliceGrid(grid.rows, grid.cols, grid.pixel_spacing, grid.x0, grid.y0,
                    tuple(grid.z[i] for i in ks), grid.thickness)
    solid = LesionShape(shape.outer, 1.0, None, 0.0, shape.lobes)
    frac = np.zeros(sub.shape, np.float32)
    paint_lesion(frac, sub, solid)
    vol = Volume.from_grid(frac, (grid.thickness, *grid.pixel_spacing),
                           (grid.x0, grid.y0, sub.z[0]))
    m = measure_mask(vol, frac >= 0.5, node=truth["nodal"])
    assert m.long_axis_mm == pytest.approx(truth["long_axis_mm"], abs=0.4)
    assert m.short_axis_mm == pytest.approx(truth["short_axis_mm"], abs=0.4)


def _anatomy_and_mask(subject: str) -> tuple[dict, LesionShape, SliceGrid, np.ndarray,
                                              np.ndarray]:
    """Truth, shape, the one-slice grid, the anatomy without lesions (HU) and the lesion's
    mask (partial volume >= 0.5) on the large lesion's ground-truth slice at baseline."""
    plan, grid, pose, truth, shape = _baseline(subject)
    g = _one_slice(grid, truth["slice_index"])
    vol = render_anatomy(g, pose, plan.contrast)[0]
    frac = np.zeros(g.shape, np.float32)
    paint_lesion(frac, g, LesionShape(shape.outer, 1.0, None, 0.0, shape.lobes))
    return truth, shape, g, vol, frac[0] >= 0.5


def test_central_primary_abuts_the_mediastinal_fat():
    truth, _, g, vol, lesion = _anatomy_and_mask("SYN-001")
    rim = ndimage.binary_dilation(lesion, iterations=2) & ~lesion
    # around it aerated lung, and the mediastinal fat over a stretch of its outline; no soft
    # tissue of its own density (no edge there)
    assert (np.abs(vol[rim] + 100.0) < 1.0).sum() * g.pixel_spacing[0] >= 20.0
    assert (vol[rim] < -800.0).mean() > 0.8
    assert not (np.abs(vol[rim] - truth["lesion_hu"]) < 40.0).any()


def test_conglomerate_sits_in_fat_and_is_one_connected_mass():
    truth, shape, g, vol, mass = _anatomy_and_mask("SYN-002")
    assert ndimage.label(mass)[1] == 1  # the nodes are merged
    xs, ys = g.xy()
    inside = [mass[int(np.argmin(np.abs(ys - c[1]))), int(np.argmin(np.abs(xs - c[0])))]
              for c in (e.center for e in shape.parts)]
    assert sum(inside) >= 2  # at least two node centres on the measured slice
    ring = ndimage.binary_dilation(mass, iterations=2) & ~mass
    # fat, lung or bronchial air around it: no heart, vessel or soft tissue of node density
    assert not (np.abs(vol[ring] - truth["lesion_hu"]) < 40.0).any()
    assert (np.abs(vol[ring] + 100.0) < 1.0).mean() > 0.5


def test_necrotic_liver_metastasis_has_a_rim_and_a_core():
    plan, grid, pose, truth, shape = _baseline("SYN-003")
    g = _one_slice(grid, truth["slice_index"])
    vol = render_anatomy(g, pose, plan.contrast)
    paint_lesion(vol, g, shape)
    xs, ys = g.xy()
    col = int(np.argmin(np.abs(xs - truth["center_lps"][0])))
    row = int(np.argmin(np.abs(ys - truth["center_lps"][1])))
    px = grid.pixel_spacing[0]
    profile = vol[0, row, col:col + int(40 / px)]
    assert profile[0] == pytest.approx(truth["center_hu"], abs=1.0)
    assert (np.abs(profile - truth["lesion_hu"]) < 1.0).sum() >= 3  # the rim, a few pixels
    assert profile[-1] == pytest.approx(105.0, abs=1.0)  # liver with contrast


@pytest.mark.slow
def test_written_large_trial_holds_the_analytic_lesions(tmp_path, dcm):
    """SYN-001's baseline as written: around the central primary, the pixels are the analytic
    phantom (blurred) plus noise of the stated size; a primary placed 1.5 mm off is not."""
    gt = generate_trial(tmp_path, seed=0, n_subjects=1, large_lesions=True)
    tp = gt["subjects"]["SYN-001"]["timepoints"]["BL"]
    les = tp["lesions"]["T05"]
    hu, dss = dcm.read_series(tmp_path / tp["series_path"], tp["series_uid"])
    plan, grid, pose, truth, shape = _baseline("SYN-001")
    assert truth == les
    acq = plan.acquisitions["BL"]
    k = les["slice_index"]
    g = _one_slice(grid, k)
    others = [s for s in _visit_lesions(plan, "BL", grid, pose)[1] if s != shape]
    lo, hi = shape.bounds()
    xs, ys = g.xy()
    cols = slice(int(np.searchsorted(xs, lo[0] - 5)), int(np.searchsorted(xs, hi[0] + 5)))
    rows = slice(int(np.searchsorted(ys, lo[1] - 5)), int(np.searchsorted(ys, hi[1] + 5)))

    def residual(lesion: LesionShape) -> np.ndarray:
        clean = render_anatomy(g, pose, plan.contrast)
        for s in [*others, lesion]:
            paint_lesion(clean, g, s)
        blurred = ndimage.gaussian_filter(clean[0], acq.psf_sigma_mm / acq.pixel_spacing)
        return (hu[k] - blurred)[rows, cols]

    res = residual(shape)
    assert abs(res.mean()) < 1.5
    assert res.std() == pytest.approx(acq.noise_hu, rel=0.2)
    off = Pose(0.0, (1.5, 0.0, 0.0))
    moved = LesionShape(shape.outer.placed(off), shape.hu, None, shape.core_hu,
                        tuple(e.placed(off) for e in shape.lobes))
    assert residual(moved).std() > 3.0 * acq.noise_hu
    rows_csv = (tmp_path / "manifest.csv").read_text().splitlines()
    seed = next(r for r in rows_csv if ",T05," in r).split(",")[-3:]
    assert shape.contains(np.array([float(v) for v in seed]))  # the manifest's seed is inside


def test_cli_passes_large_lesions(tmp_path, monkeypatch, capsys):
    import recist_tool.sample_data as sample

    seen = {}

    def fake(out, seed=0, n_subjects=3, progress=None, large_lesions=False, full_size=False):
        seen.update(large_lesions=large_lesions, n_subjects=n_subjects)
        return trial_ground_truth(seed, n_subjects, large_lesions=large_lesions)

    monkeypatch.setattr(sample, "generate_trial", fake)
    assert main(["sample-data", str(tmp_path / "t"), "--n-subjects", "1", "--large-lesions"]) == 0
    assert seen == {"large_lesions": True, "n_subjects": 1}
    assert "large lesions" in " ".join(capsys.readouterr().out.split())  # the title may wrap
