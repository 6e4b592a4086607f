"""``slicenet``: the tile geometry it is trained and run on (no weights are shipped: see
``models/MODEL_CARD.md``, "slicenet")."""

from __future__ import annotations

import numpy as np
import pytest

from recist_tool.segment.slicenet import (
    TILE,
    from_tile,
    tile_coords,
    to_tile,
)


def test_to_tile_inverts_tile_coords() -> None:
    centre = np.array([120.3, 87.9])
    coords = tile_coords(centre, 97.0, (0.7, 0.9), angle=0.4)
    pts = coords.reshape(2, -1).T
    back = to_tile(pts, centre, 97.0, (0.7, 0.9), angle=0.4)
    ii, jj = np.meshgrid(np.arange(TILE), np.arange(TILE), indexing="ij")
    assert np.allclose(back, np.stack([ii.ravel(), jj.ravel()], 1), atol=1e-9)


def test_from_tile_puts_a_tile_disc_back_at_its_size() -> None:
    """A disc filling half the tile's side comes back on the native pixels at the size in mm
    the tile was made for, whatever the pixel spacing."""
    yy, xx = np.mgrid[:TILE, :TILE] - (TILE - 1) / 2.0
    disc = (np.hypot(yy, xx) <= TILE / 4).astype(np.float32)
    for spacing in ((0.7, 0.7), (1.2, 0.8)):
        crop, _ = from_tile(disc, (400, 400), np.array([200.0, 200.0]), 120.0, spacing)
        area_mm2 = (crop > 0.5).sum() * spacing[0] * spacing[1]
        assert area_mm2 == pytest.approx(np.pi * 30.0 ** 2, rel=0.05)
