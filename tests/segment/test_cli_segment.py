"""``recist segment`` and ``recist evaluate-model``: output, exit codes, one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from recist_tool.cli import main
from recist_tool.io import save_volume
from recist_tool.segment.synthetic import make_case


@pytest.fixture(scope="module")
def case_files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("seg")
    case = make_case("lung_solid", 8.0, seed=4)
    img, ref = tmp / "ct.nii.gz", tmp / "ref.nii.gz"
    save_volume(case.volume, img)
    save_volume(case.volume.with_array(case.mask.astype(np.uint8)), ref)
    return case, img, ref, tmp


def test_segment_json_and_mask(case_files, capsys) -> None:
    case, img, ref, tmp = case_files
    out = tmp / "mask.nii.gz"
    z, y, x = case.centre_zyx
    rc = main(["segment", str(img), "--seed", f"{z},{y},{x}", "--segmenter", "classic",
               "-o", str(out), "--reference", str(ref), "--json"])
    assert rc == 0
    res = json.loads(capsys.readouterr().out)
    assert {"long_axis_mm", "short_axis_mm", "volume_ml", "segmenter", "dice_vs",
            "seconds"} <= set(res)
    assert res["segmenter"] == "classic" and res["dice_vs"] > 0.9
    assert res["long_axis_mm"] == pytest.approx(2 * max(case.radii_mm), abs=2.5)
    from recist_tool.io import load_volume

    written = np.asarray(load_volume(out).array) > 0
    assert written.shape == case.volume.shape and written.sum() == res["n_voxels"]


def test_segment_seed_lps_matches_voxel_seed(case_files, capsys) -> None:
    case, img, _, _ = case_files
    from recist_tool.io import load_volume

    vol = load_volume(img)
    lps = vol.index_to_lps(case.centre_zyx)
    rc = main(["segment", str(img), "--seed-lps", ",".join(f"{v:.4f}" for v in lps),
               "--segmenter", "classic", "--json"])
    assert rc == 0
    res = json.loads(capsys.readouterr().out)
    assert res["seed_zyx"] == list(case.centre_zyx)
    rc = main(["segment", str(img), "--seed-lps", ",".join(f"{v:.4f}" for v in lps),
               "--segmenter", "classic:band_fraction=0.5", "--json"])
    assert rc == 0
    assert json.loads(capsys.readouterr().out)["segmenter"] == "classic"


@pytest.mark.parametrize(("args", "code"), [
    (["--seed", "20,2,2"], 3),          # air outside the body
    (["--seed", "500,2,2"], 3),         # outside the volume
    (["--seed", "1,2"], 2),             # malformed
    ([], 2),                            # no seed
    (["--seed", "1,2,3", "--seed-lps", "1,2,3"], 2),
    (["--seed", "20,80,80", "--segmenter", "nope"], 3),
    (["--seed", "20,80,80", "--segmenter", "classic:colour=1"], 2),  # an option it lacks
    (["--seed", "20,80,80", "--segmenter", "unet:lung_only=no"], 2),  # not true/false
])
def test_segment_errors_are_one_line(case_files, capsys, args, code) -> None:
    _, img, _, _ = case_files
    rc = main(["segment", str(img), *args])
    assert rc == code
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("error:")


def test_evaluate_model_json(capsys) -> None:
    rc = main(["evaluate-model", "synthetic:3", "--segmenter", "classic", "--json"])
    assert rc == 0
    res = json.loads(capsys.readouterr().out)
    d = res["datasets"][0]
    assert d["n"] == 3 and d["dice_mean"] > 0.8
    assert rc == 0 and main(["evaluate-model", "synthetic:2", "--segmenter", "classic"]) == 0
    assert main(["evaluate-model", "synthetic:2", "--split", "bogus"]) == 2
    assert main(["evaluate-model", "synthetic:2", "--slice-mm", "-5"]) == 2


def test_evaluate_model_reslices_to_thick_slices(capsys) -> None:
    """``--slice-mm 5``: the synthetic set's 2.5 mm slices are evaluated as 5 mm CT."""
    rc = main(["evaluate-model", "synthetic:3", "--segmenter", "classic", "--slice-mm", "5",
               "--clicks", "0", "--json"])
    assert rc == 0
    out = capsys.readouterr()
    d = json.loads(out.out)["datasets"][0]
    assert d["dataset"] == "synthetic:3@5mm" and d["n"] == 3 and d["dice_mean"] > 0.6  # 0.71
    assert ("synthetic:3@5mm: 3 of 3 cases re-sliced; of the 3 evaluated, 0 have lesion in "
            "their first or last slice") in out.err


def test_segment_says_when_unet_hands_a_lesion_to_classic(tmp_path, capsys) -> None:
    """A liver metastasis clicked with ``unet``: segmented by classic, and the output says why."""
    torch = pytest.importorskip("torch")
    from recist_tool.segment.unet import build_network

    weights = tmp_path / "w.pt"
    torch.save({"state_dict": build_network().state_dict()}, weights)
    case = make_case("liver_met", 10.0, seed=3)
    img = tmp_path / "liver.nii.gz"
    save_volume(case.volume, img)
    z, y, x = case.centre_zyx
    rc = main(["segment", str(img), "--seed", f"{z},{y},{x}", "--segmenter",
               f"unet:weights={weights}", "--json"])
    assert rc == 0
    res = json.loads(capsys.readouterr().out)
    assert res["segmenter"] == "classic" and "not in aerated lung" in res["routed_by"]


def test_segment_with_the_half_contrast_edge_reports_its_levels(tmp_path, capsys) -> None:
    """``--segmenter unet:edge=half-contrast`` on a phantom lung nodule: the version names the
    rule, the JSON gives the levels the outline was cut to, and the mask matches the nodule."""
    pytest.importorskip("torch")
    from recist_tool.segment.unet import default_weights_path

    if not default_weights_path().is_file():
        pytest.skip("no unet weights shipped in models/")
    case = make_case("lung_solid", 9.0, seed=5)
    img, ref = tmp_path / "lung.nii.gz", tmp_path / "ref.nii.gz"
    save_volume(case.volume, img)
    save_volume(case.volume.with_array(case.mask.astype(np.uint8)), ref)
    z, y, x = case.centre_zyx
    rc = main(["segment", str(img), "--seed", f"{z},{y},{x}", "--segmenter",
               "unet:edge=half-contrast", "--reference", str(ref), "--json"])
    assert rc == 0
    res = json.loads(capsys.readouterr().out)
    assert res["segmenter"] == "unet" and res["segmenter_version"].endswith("/half-contrast")
    assert res["edge"]["level_hu"] == pytest.approx(0.5 * (35 + res["edge"]["surround_hu"]),
                                                    abs=40)
    assert res["dice_vs"] >= 0.95
    rc = main(["segment", str(img), "--seed", f"{z},{y},{x}", "--segmenter", "unet:edge=solid"])
    assert rc == 2 and "edge must be one of" in capsys.readouterr().err


@pytest.mark.parametrize(("slice_mm", "outline"), [
    (2.5, "learnt (LIDC consensus) (auto: slices 2.5 mm thick, <= 2.5 mm)"),
    (5.0, "half-contrast edge at ")])
def test_segment_says_where_the_default_drew_the_outline(tmp_path, capsys, slice_mm,
                                                         outline) -> None:
    """The default ``unet`` (``edge=auto``) on a phantom lung nodule prints which outline it drew
    and why: the learnt one on 2.5 mm slices, the half-contrast edge on 5 mm slices."""
    pytest.importorskip("torch")
    from recist_tool.segment.unet import default_weights_path

    if not default_weights_path().is_file():
        pytest.skip("no unet weights shipped in models/")
    case = make_case("lung_solid", 9.0, seed=5, spacing=(slice_mm, 0.75, 0.75))
    img = tmp_path / "lung.nii.gz"
    save_volume(case.volume, img)
    z, y, x = case.centre_zyx
    assert main(["segment", str(img), "--seed", f"{z},{y},{x}"]) == 0
    out = capsys.readouterr().out
    assert "/auto" in out and f"  outline: {outline}" in out
    assert f"(auto: slices {slice_mm:g} mm thick" in out


def test_segment_from_a_line_or_a_box(tmp_path, capsys) -> None:
    """``--line`` (LPS mm), ``--line-index`` and ``--box`` (voxels) on a 50 mm liver metastasis:
    the line's two forms give the same mask; a bad line is one line and exit 3."""
    from recist_tool.segment.evaluate import reference_box, reference_line

    case = make_case("liver_met", 25.0, seed=1, shape=(48, 200, 200))
    img = tmp_path / "liver.nii.gz"
    save_volume(case.volume, img)
    a, b = reference_line(case.volume, case.mask, None)
    idx = ":".join(",".join(f"{v:.3f}" for v in p) for p in (a, b))
    lps = ":".join(",".join(f"{v:.4f}" for v in case.volume.index_to_lps(p)) for p in (a, b))
    outs = []
    for opt, val in (("--line-index", idx), ("--line", lps)):
        assert main(["segment", str(img), opt, val, "--segmenter", "contour", "--json"]) == 0
        outs.append(json.loads(capsys.readouterr().out))
    assert outs[0]["n_voxels"] == outs[1]["n_voxels"] and outs[0]["segmenter"] == "contour"
    assert outs[0]["long_axis_mm"] == pytest.approx(2 * 25.0 * 1.0, rel=0.15)
    lo, hi = reference_box(case.volume, case.mask)
    box = ":".join(",".join(f"{v:g}" for v in p) for p in (lo, hi))
    assert main(["segment", str(img), "--box", box, "--segmenter", "classic", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["prompt"]["box_zyx"] == [list(lo), list(hi)]
    for args in (["--line-index", "5,50,50:5,50,50"], ["--line-index", "5,50,50:5,50,900"],
                 ["--box", "5,50,50:4,60,60"], ["--line-index", "5,50,50"]):
        rc = main(["segment", str(img), *args])
        err = capsys.readouterr().err.strip()
        assert rc in (2, 3) and err.count("\n") == 0 and err.startswith("error:"), (args, err)
