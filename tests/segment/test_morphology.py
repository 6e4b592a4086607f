"""Shape operations shared by the segmenters."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from recist_tool.segment.morphology import fill_cavities

_Z, _Y, _X = np.indices((21, 21, 21)) - 10
_R = np.sqrt(_Z**2 + _Y**2 + _X**2)
BALL = _R <= 8
CAVITY = _R <= 5


def test_an_enclosed_cavity_is_filled_in_3d() -> None:
    assert np.array_equal(fill_cavities(BALL & ~CAVITY), BALL)


def test_a_cavity_open_through_the_slice_above_is_filled_slice_by_slice() -> None:
    """A channel up through the top of the shell opens the cavity in 3D (a plain 3D fill leaves
    it empty); on every slice it is enclosed, so it is filled."""
    shell = BALL & ~CAVITY & ~((_Z < 0) & (_Y**2 + _X**2 <= 2))
    assert np.array_equal(ndimage.binary_fill_holes(shell), shell)
    tip = BALL & (_Z == -8)  # the ball's top voxel, cut by the channel and open there
    assert tip.sum() == 1 and np.array_equal(fill_cavities(shell), BALL & ~tip)


def test_a_cavity_open_on_its_own_slice_stays_open_there() -> None:
    """A notch out of the side on the middle slice: that slice's cavity reaches the outside and
    stays empty; the slices above and below, where the cavity is enclosed, are filled."""
    notch = (_Z == 0) & (_Y == 0) & (_X > 0) & BALL
    shell = BALL & ~CAVITY & ~notch
    out = fill_cavities(shell)
    assert np.all(out[CAVITY & (_Z != 0)])
    assert not np.any(out[CAVITY & (_Z == 0)]) and not np.any(out[notch])
    assert np.array_equal(out | (CAVITY & (_Z == 0)) | notch, BALL)
