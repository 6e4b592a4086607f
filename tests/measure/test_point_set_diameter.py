"""The exact 3D diameter equals the brute-force maximum pairwise distance on any point set."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import pdist

from recist_tool.measure.mask import point_set_diameter


def _clouds(rng: np.random.Generator) -> list[np.ndarray]:
    sphere = rng.normal(size=(2000, 3))
    sphere /= np.linalg.norm(sphere, axis=1)[:, None]
    cigar = rng.normal(size=(1500, 3)) * (30.0, 4.0, 3.0)
    flat = np.column_stack([rng.uniform(-20, 20, (800, 2)), np.zeros(800)])  # one plane (qhull fails)
    line = np.outer(rng.uniform(-5, 5, 300), (1.0, 2.0, -1.0))
    dup = np.repeat(rng.normal(size=(40, 3)), 3, axis=0)
    few = rng.normal(size=(5, 3))
    lattice = np.argwhere(np.ones((9, 9, 9))) * (0.7, 0.7, 2.5)  # ties everywhere
    return [sphere * 25.0, cigar, flat, line, dup, few, lattice, rng.uniform(-50, 50, (700, 3))]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_equals_the_brute_force_maximum(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for pts in _clouds(rng):
        pts = pts @ np.linalg.qr(rng.normal(size=(3, 3)))[0] + rng.normal(size=3) * 100
        assert point_set_diameter(pts) == pytest.approx(pdist(pts).max(), rel=1e-12, abs=1e-9)


def test_degenerate_inputs() -> None:
    assert point_set_diameter(np.zeros((0, 3))) == 0.0
    assert point_set_diameter(np.ones((1, 3))) == 0.0
    assert point_set_diameter(np.ones((7, 3))) == 0.0
    assert point_set_diameter(np.array([[0, 0, 0], [3, 4, 0]], float)) == pytest.approx(5.0)
