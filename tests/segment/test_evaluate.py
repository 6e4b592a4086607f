"""Evaluation library: LIDC patient split, dataset layouts, metrics."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest
import SimpleITK as sitk

from recist_tool.errors import InputError
from recist_tool.segment import get_segmenter
from recist_tool.segment.evaluate import (
    discover_dataset,
    evaluate_dataset,
    lidc_patient,
    lidc_split,
    symmetric_relative_error,
    thick_slices,
)
from tests.conftest import require

KEYS = {"n", "dice_mean", "long_axis_error_mm_median", "short_axis_error_mm_median",
        "consistency_dice_mean", "seconds_per_click"}


def test_lidc_split_is_by_patient_and_deterministic(shared_data) -> None:
    folder = require(shared_data / "lesions" / "lidc_nodules" / "image")
    by_patient = defaultdict(set)
    for f in folder.iterdir():
        by_patient[lidc_patient(f.name)].add(lidc_split(f.name))
    assert all(len(s) == 1 for s in by_patient.values())  # never split inside a patient
    val = sum("validation" in s for s in by_patient.values())
    assert 0.12 < val / len(by_patient) < 0.28
    assert lidc_split("LIDC-IDRI-0003_R_2") == lidc_split("LIDC-IDRI-0003_R_4.nii.gz")
    ds_val = discover_dataset(folder.parent)
    ds_train = discover_dataset(folder.parent, split="train")
    ds_all = discover_dataset(folder.parent, split="all")
    assert len(ds_val.cases) + len(ds_train.cases) == len(ds_all.cases) == 654
    assert not {c.group for c in ds_val.cases} & {c.group for c in ds_train.cases}


def test_layouts(shared_data, tmp_path) -> None:
    lung1 = discover_dataset(require(shared_data / "lesions" / "pyradiomics_lung1"))
    assert len(lung1.cases) == 1 and lung1.cases[0].image.name == "image.nrrd"
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError):
        discover_dataset(tmp_path / "empty")
    with pytest.raises(InputError):
        discover_dataset(tmp_path / "missing")
    # an image/ + mask/ folder of our own with one synthetic lesion
    for sub in ("image", "mask"):
        (tmp_path / "ds" / sub).mkdir(parents=True)
    from recist_tool.segment.synthetic import make_case

    case = make_case("liver_met", 9.0, seed=2)
    for sub, arr in (("image", case.volume.array), ("mask", case.mask.astype(np.uint8))):
        img = sitk.GetImageFromArray(arr)
        img.SetSpacing(case.volume.spacing[::-1])
        sitk.WriteImage(img, str(tmp_path / "ds" / sub / "case1.nii.gz"))
    ds = discover_dataset(tmp_path / "ds")
    res = evaluate_dataset(ds, get_segmenter("classic"), per_case=True)
    assert res["n"] == 1 and res["dice_mean"] > 0.85
    assert res["cases"][0]["long_axis_error_mm"] < 2.0


@pytest.mark.parametrize("spec", ["synthetic:abc", "synthetic:0", "synthetic:-3", "synthetic:"])
def test_a_synthetic_set_needs_a_positive_count(spec: str) -> None:
    with pytest.raises(InputError, match="synthetic:N takes a whole number of cases"):
        discover_dataset(spec)


def test_synthetic_metrics_keys_and_values() -> None:
    ds = discover_dataset("synthetic:5")
    res = evaluate_dataset(ds, get_segmenter("classic"))
    assert KEYS <= set(res)
    assert res["n"] == 5 and res["n_no_lesion"] == 0
    assert res["dice_mean"] > 0.85  # measured 0.92 when written
    assert res["consistency_dice_mean"] > 0.7
    assert res["long_axis_error_mm_median"] < 2.0
    small = evaluate_dataset(ds, get_segmenter("classic"), min_diameter_mm=20.0, clicks=0)
    assert small["n"] + small["n_skipped_small"] == 5 and small["n_skipped_small"] >= 1
    assert small["consistency_dice_mean"] is None


def test_synthetic_nodes_are_segmented_and_measured_as_nodes() -> None:
    """The synthetic set's lymph nodes reach the segmenter with ``node=True`` (as a reader flags
    them), and their axes are measured as a node's; the other kinds are not nodes."""
    ds = discover_dataset("synthetic:5")
    assert [c.node for c in ds.cases] == [c.group == "node" for c in ds.cases]
    assert sum(c.node for c in ds.cases) == 1
    flags: list[bool] = []

    class Recording:
        name, version = "recording", "1"

        def segment(self, volume, prompt, *, node=False):
            flags.append(node)
            return get_segmenter("classic").segment(volume, prompt, node=node)

    evaluate_dataset(ds, Recording(), clicks=0)
    assert flags == [c.node for c in ds.cases]


def test_symmetric_relative_error() -> None:
    assert symmetric_relative_error(10.0, 10.0) == 0.0
    assert symmetric_relative_error(12.0, 8.0) == pytest.approx(0.4)
    assert symmetric_relative_error(0.0, 0.0) == 0.0


def _sphere_case(dz: float = 1.25, radius_mm: float = 9.0):
    from recist_tool.volume import Volume

    nz = int(round(50 / dz))
    zz, yy, xx = np.mgrid[:nz, :64, :64]
    r2 = ((zz - (nz - 1) / 2) * dz) ** 2 + ((yy - 32) * 0.7) ** 2 + ((xx - 30) * 0.7) ** 2
    mask = r2 <= radius_mm ** 2
    hu = np.where(mask, 30, -850).astype(np.int16)
    return Volume.from_grid(hu, (dz, 0.7, 0.7), origin=(10.0, -20.0, -100.0)), mask


def test_thick_slices_average_thin_slices_and_keep_the_lesion() -> None:
    """Re-sliced as 5 mm CT, an 18 mm sphere keeps its geometry, volume and long axis; its thick
    mask holds the voxels at least half lesion, and the image is the thin slices averaged."""
    from recist_tool.measure.mask import measure_mask

    vol, mask = _sphere_case()
    lesion_ml = mask.sum() * 1.25
    ratios = []
    for k, phase in [(4, 0), (4, 1), (4, 2), (4, 3), (3, 0), (3, 2)]:
        thick, tmask = thick_slices(vol, mask, k, phase)
        dz = thick.spacing[0]
        assert dz == pytest.approx(1.25 * k)
        assert thick.spacing[1:] == vol.spacing[1:] and tmask.shape == thick.shape
        # thick slice i is centred on thin slice phase + (k - 1) / 2 + i k, on the same axis
        idx = vol.lps_to_index(thick.slice_positions)
        assert np.allclose(idx[:, 1:], 0, atol=1e-6)
        assert np.allclose(idx[:, 0], phase + (k - 1) / 2 + k * np.arange(thick.shape[0]))
        ratios.append(tmask.sum() * dz / lesion_ml)
        assert 0.8 < ratios[-1] < 1.2  # 4-5 thick slices through the lesion: rounding
        assert measure_mask(thick, tmask).long_axis_mm == pytest.approx(18.0, abs=1.5)
        a = np.asarray(thick.array)
        half = -850 + 0.5 * 880
        assert a[tmask].min() >= half - 0.05 * 880 and a[~tmask].max() < half + 0.05 * 880
        assert a.min() == pytest.approx(-850) and a.max() == pytest.approx(30)
    assert np.mean(ratios) == pytest.approx(1.0, abs=0.06)
    assert thick_slices(vol.crop((0, 0, 0), (5, 64, 64)), mask[:5], 4) is None
    with pytest.raises(ValueError, match="k >= 2"):
        thick_slices(vol, mask, 1)


def test_slice_mm_reslices_each_case_to_the_nearest_whole_number_of_slices() -> None:
    """``evaluate_dataset(slice_mm=5)``: 1.25 and 2.5 mm slices make 5 mm, 0.7 mm slices 4.9 mm;
    5 mm slices are already thick and an uneven stack cannot be re-sliced: both left out."""
    from recist_tool.segment.evaluate import Case, Dataset, reslice_case

    cases = []
    for dz in (1.25, 2.5, 0.7, 5.0):
        vol, mask = _sphere_case(dz)
        cases.append(Case(f"dz{dz}", volume=vol, reference=mask))
    thick = {c.name: reslice_case(c.volume, c.reference, 5.0) for c in cases}
    assert {n: t[0].spacing[0] for n, t in thick.items() if t is not None} == pytest.approx(
        {"dz1.25": 5.0, "dz2.5": 5.0, "dz0.7": 4.9})
    assert thick["dz5.0"] is None
    vol, mask = _sphere_case(1.25)
    pos = vol.slice_positions.copy()
    pos[20:] += vol.normal * 1.25  # one gap twice as wide
    uneven = type(vol)(vol.array, vol.spacing, pos[0], vol.direction, pos)
    assert not uneven.is_uniform and reslice_case(uneven, mask, 5.0) is None
    cases.append(Case("uneven", volume=uneven, reference=mask))
    res = evaluate_dataset(Dataset("spheres", cases), get_segmenter("classic"), clicks=0,
                           slice_mm=5.0)
    assert res["dataset"] == "spheres@5mm" and res["slice_mm"] == 5.0
    assert res["n"] == 3 and res["n_not_resliced"] == 2 and res["n_cut_by_stack"] == 0
    assert res["dice_mean"] > 0.85
