"""``recist measure``: JSON keys, table output, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from recist_tool.cli import main
from recist_tool.measure import measure_mask
from recist_tool.volume import Volume
from tests.conftest import require

KEYS = {"long_axis_mm", "short_axis_mm", "slice_index", "long_axis_endpoints_lps",
        "short_axis_endpoints_lps", "volume_ml", "max_3d_diameter_mm", "n_components"}


def _sitk_volume(path: Path) -> Volume:
    img = sitk.ReadImage(str(path))
    sx, sy, sz = img.GetSpacing()
    d = np.asarray(img.GetDirection(), float).reshape(3, 3)
    return Volume.from_grid(sitk.GetArrayFromImage(img), (sz, sy, sx), img.GetOrigin(),
                            d[:, [2, 1, 0]])


def _write(tmp: Path, arr: np.ndarray, name: str = "mask.nii.gz") -> Path:
    img = sitk.GetImageFromArray(arr.astype(np.uint8))
    img.SetSpacing((0.8, 0.7, 2.0))
    path = tmp / name
    sitk.WriteImage(img, str(path))
    return path


def test_json_on_real_mask(shared_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = require(shared_data / "lesions/pyradiomics_lung1/label.nrrd")
    assert main(["measure", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert KEYS <= set(out)
    ref = measure_mask(_sitk_volume(path))
    assert out["long_axis_mm"] == pytest.approx(ref.long_axis_mm)
    assert out["slice_index"] == ref.slice_index
    assert np.asarray(out["long_axis_endpoints_lps"]).shape == (2, 3)
    assert out["n_components"] == 1 and out["method"] == "mask"


def test_table_and_labels(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    arr = np.zeros((5, 40, 40), np.uint8)
    arr[2, 5:15, 5:20] = 1
    arr[1:4, 25:35, 22:36] = 2
    path = _write(tmp_path, arr)
    assert main(["measure", str(path)]) == 2  # two labels, none chosen
    assert "--label" in capsys.readouterr().err
    assert main(["measure", str(path), "--label", "2", "--node"]) == 0
    out = capsys.readouterr().out
    assert "long axis" in out and "short axis" in out and "volume" in out
    assert main(["measure", str(path), "--label", "1", "--json"]) == 0
    one = json.loads(capsys.readouterr().out)
    assert one["long_axis_mm"] == pytest.approx(np.hypot(10 * 0.7, 15 * 0.8), abs=1.0)
    assert one["volume_ml"] == pytest.approx(150 * 0.8 * 0.7 * 2.0 / 1000)


def test_image_grid_is_used_and_checked(tmp_path: Path, capsys) -> None:
    arr = np.zeros((5, 40, 40), np.uint8)
    arr[2, 5:15, 5:20] = 1
    mask = _write(tmp_path, arr)
    image = _write(tmp_path, np.zeros_like(arr), "image.nii.gz")
    assert main(["measure", str(mask), "--image", str(image), "--json"]) == 0
    capsys.readouterr()
    other = _write(tmp_path, np.zeros((6, 40, 40), np.uint8), "other.nii.gz")
    assert main(["measure", str(mask), "--image", str(other)]) == 3
    assert "shape" in capsys.readouterr().err


def test_empty_and_missing_masks_exit_3(tmp_path: Path, capsys) -> None:
    path = _write(tmp_path, np.zeros((3, 10, 10), np.uint8))
    assert main(["measure", str(path)]) == 3
    err = capsys.readouterr().err
    assert "empty" in err and "Traceback" not in err
    assert main(["measure", str(tmp_path / "nope.nii.gz")]) == 3
    assert "no such file" in capsys.readouterr().err
    image = tmp_path / "ct.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(np.arange(-1000, 1000, dtype=np.int16)
                                           .reshape(2, 20, 50)), str(image))
    assert main(["measure", str(image)]) == 3
    assert "does not look like a lesion mask" in capsys.readouterr().err
