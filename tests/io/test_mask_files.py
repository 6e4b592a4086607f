"""Lesion mask crops written by ``save_mask`` come back on the series grid, tilted stacks included."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from recist_tool.errors import GeometryError, InputError
from recist_tool.io.masks import load_mask_crop, save_mask, save_mask_file
from recist_tool.volume import Volume


def _tilted(nz: int = 30) -> Volume:
    # gantry tilt: each slice shifted 0.4 mm along the column direction; oblique rows
    r = np.array([np.cos(0.2), np.sin(0.2), 0.0])
    c = np.array([-np.sin(0.2), np.cos(0.2), 0.0])
    n = np.cross(r, c)
    pos = np.array([[-120.0, 80.0, -300.0] + k * 2.5 * n + k * 0.4 * c for k in range(nz)])
    return Volume.from_slices(np.zeros((nz, 64, 72), np.int16), pos, r, c, (0.7, 0.9))


@pytest.mark.parametrize("volume", [_tilted(), Volume.from_grid(np.zeros((20, 40, 50), np.int16),
                                                                   (5.0, 0.8, 0.8), (10, -5, 3))])
def test_crop_round_trip(volume: Volume, tmp_path) -> None:  # noqa: ANN001
    rng = np.random.default_rng(3)
    crop = rng.random((6, 11, 9)) > 0.5
    offset = (4, 17, 23)
    path, digest = save_mask(crop, volume, tmp_path / "m" / "T01.nii.gz", offset=offset)
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
    back, off = load_mask_crop(path, volume)
    assert off == offset
    np.testing.assert_array_equal(back, crop)


def test_crop_on_another_grid_is_refused(tmp_path) -> None:  # noqa: ANN001
    vol = Volume.from_grid(np.zeros((20, 40, 50), np.int16), (5.0, 0.8, 0.8))
    path, _ = save_mask(np.ones((2, 3, 3), bool), vol, tmp_path / "a.nii.gz", offset=(1, 1, 1))
    shifted = Volume.from_grid(np.zeros((20, 40, 50), np.int16), (5.0, 0.8, 0.8), (0.0, 0.3, 0.0))
    with pytest.raises(GeometryError, match="grid"):
        load_mask_crop(path, shifted)
    with pytest.raises(InputError, match="non-empty"):
        save_mask(np.zeros((2, 2, 2), bool), vol, tmp_path / "b.nii.gz")
    with pytest.raises(InputError, match="no such mask"):
        load_mask_crop(tmp_path / "missing.nii.gz", vol)


def test_save_mask_file_names_the_file_by_its_hash_and_leaves_no_temporary(tmp_path) -> None:  # noqa: ANN001
    vol = Volume.from_grid(np.zeros((10, 20, 20), np.int16), (2.0, 0.8, 0.8), (0, 0, 0))
    crop = np.zeros((3, 4, 5), bool)
    crop[1, 1:3, 1:4] = True
    path, digest = save_mask_file(crop, vol, tmp_path / "S1" / "BL", "T01", offset=(2, 3, 4))
    assert path == (tmp_path / "S1" / "BL" / f"T01-{digest[:12]}.nii.gz").resolve()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_save_mask_file_failure_leaves_nothing(tmp_path) -> None:  # noqa: ANN001
    vol = Volume.from_grid(np.zeros((10, 20, 20), np.int16), (2.0, 0.8, 0.8), (0, 0, 0))
    with pytest.raises(GeometryError):
        save_mask_file(np.ones((3, 4, 5), bool), vol, tmp_path / "S1", "T01", offset=(9, 0, 0))
    assert not (tmp_path / "S1").exists()
