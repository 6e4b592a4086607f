"""Shape operations shared by the segmenters."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

#: 4-connected in-plane structure: fills holes slice by slice.
_IN_PLANE = ndimage.generate_binary_structure(2, 1)[None]


def fill_cavities(mask: np.ndarray) -> np.ndarray:
    """``mask`` with its enclosed holes filled: in 3D, then slice by slice.

    A cavity of a lesion (air or fluid in a cavitating nodule, a calcification) is lesion for
    RECIST. The second, in-plane pass fills cavities that open to the outside in 3D (through the
    slice above or below) but are enclosed on their own slices.

    Parameters
    ----------
    mask : numpy.ndarray
        Boolean 3D mask ``(z, y, x)``.

    Returns
    -------
    numpy.ndarray
        Boolean, same shape; ``mask`` is a subset of it.
    """
    filled = ndimage.binary_fill_holes(np.asarray(mask, bool))
    filled |= ndimage.binary_fill_holes(filled, structure=_IN_PLANE)
    return filled
