"""``slicenet``: the tile geometry it is trained and run on, its 2.5D input and the weights'
input channels, and the training samples of ``models/train_slicenet.py`` (no weights are
shipped: see ``models/MODEL_CARD.md``, "slicenet")."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from recist_tool.errors import SegmentationError
from recist_tool.segment.slicenet import (
    N_INPUTS,
    N_INPUTS_V1,
    TILE,
    WINDOWS,
    SliceNetSegmenter,
    build_network,
    from_tile,
    tile_coords,
    tile_input,
    to_tile,
)
from recist_tool.volume import Volume

from ..conftest import REPO_ROOT


def _soft(hu: float) -> float:
    lo, hi = WINDOWS[1]
    return (hu - lo) / (hi - lo)


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


def test_tile_input_holds_the_slices_behind_and_ahead() -> None:
    """Channels 5-8 are the CT of the slice behind and the slice ahead in both windows; without
    neighbours the slice stands in for both."""
    coords = tile_coords(np.array([20.0, 20.0]), 30.0, (1.0, 1.0))
    here, behind, ahead = (np.full((40, 40), v, np.float32) for v in (40.0, -100.0, 150.0))
    x = tile_input(here, coords, neighbours=(behind, ahead))
    assert x.shape == (N_INPUTS, TILE, TILE)
    assert np.allclose(x[1], _soft(40.0)) and np.allclose(x[6], _soft(-100.0))
    assert np.allclose(x[8], _soft(150.0))
    assert not np.allclose(x[5], x[0])
    alone = tile_input(here, coords)
    assert np.allclose(alone[5:7], alone[0:2]) and np.allclose(alone[7:9], alone[0:2])


def _save_weights(path, n_inputs: int, meta: dict) -> None:
    import torch

    torch.manual_seed(0)
    net = build_network(n_inputs=n_inputs).eval()
    torch.save({"state_dict": net.state_dict(), "meta": meta}, path)


def _ramp_volume() -> Volume:
    """Slices of constant HU, 10 HU more each slice up (-100 at slice 0)."""
    arr = (np.arange(12, dtype=np.float32)[:, None, None] * 10.0 - 100.0) * np.ones((12, 48, 48))
    return Volume.from_grid(arr.astype(np.float32), (2.0, 1.0, 1.0))


def test_segmenter_gives_the_network_the_slices_in_its_direction_of_travel(tmp_path) -> None:
    """Carried downwards (direction -1) onto slice 5, the slice behind is 6 (the prior's) and
    the slice ahead 4; the network is given all nine channels."""
    w = tmp_path / "v2.pt"
    _save_weights(w, N_INPUTS, {"inputs": N_INPUTS})
    seg = SliceNetSegmenter(w)
    seen = []
    seg._predict = lambda x: (seen.append(x), np.zeros((1, TILE, TILE), np.float32))[1]
    vol = _ramp_volume()
    prior = np.zeros((48, 48), bool)
    prior[18:30, 18:30] = True
    out = seg._slice(vol, 5, np.array([24.0, 24.0]), 40.0, None, None, prior, -1)
    assert out.shape == (48, 48) and not out.any()
    x = seen[0]
    assert x.shape == (N_INPUTS, TILE, TILE)
    assert np.allclose(x[1], _soft(-50.0))  # slice 5
    assert np.allclose(x[6], _soft(-40.0))  # behind: slice 6
    assert np.allclose(x[8], _soft(-60.0))  # ahead: slice 4
    assert x[4].any()


def test_carried_outline_sees_the_slice_it_came_from_behind(tmp_path) -> None:
    """From a line on slice 5 the outline is carried up to the scan's end, then down: on every
    carried slice the slice behind is the one the prior came from (10 HU lower going up, higher
    going down). The network is a stand-in that returns the prior (a disc on the first slice)."""
    from recist_tool.segment.base import Prompt

    w = tmp_path / "v2.pt"
    _save_weights(w, N_INPUTS, {"inputs": N_INPUTS})
    seg = SliceNetSegmenter(w, ends_from="network")
    yy, xx = np.mgrid[:TILE, :TILE] - (TILE - 1) / 2.0
    disc = (np.hypot(yy, xx) <= TILE / 4).astype(np.float32)
    steps = []

    def predict(x):
        if x[4].any():
            steps.append(round(float(np.mean(x[6] - x[1])) * (WINDOWS[1][1] - WINDOWS[1][0])))
            return x[4][None].astype(np.float32)
        return disc[None]

    seg._predict = predict
    m = seg.segment(_ramp_volume(), Prompt(line_zyx=((5, 24, 14), (5, 24, 34))))
    assert steps == [-10] * 6 + [10] * 5
    assert m.info["ended_by"] == {"1": "scan end", "-1": "scan end"}


def test_segmenter_reads_the_input_channels_its_weights_record(tmp_path) -> None:
    """Weights of the first recipe (no ``inputs`` in their meta) get channels 0-4 and run;
    weights of another channel count are refused with a clear error."""
    old = tmp_path / "v1.pt"
    _save_weights(old, N_INPUTS_V1, {"version": "1"})
    seg = SliceNetSegmenter(old)
    assert seg.n_inputs == N_INPUTS_V1
    out = seg._slice(_ramp_volume(), 5, np.array([24.0, 24.0]), 40.0, None, None, None, 1)
    assert out.shape == (48, 48)
    odd = tmp_path / "odd.pt"
    _save_weights(odd, 7, {"inputs": 7})
    with pytest.raises(SegmentationError, match="7 input channels"):
        SliceNetSegmenter(odd)


# --------------------------------------------------------------------------- training samples
@pytest.fixture(scope="module")
def trainer():
    """``models/train_slicenet.py`` imported as a module (a script, not part of the package)."""
    spec = importlib.util.spec_from_file_location("recist_train_slicenet",
                                                  REPO_ROOT / "models" / "train_slicenet.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _ball_item(trainer, first_slice: int):
    """A ball of lesion from ``first_slice`` up in a 30-slice block whose HU rises 10 a slice."""
    zz, yy, xx = np.mgrid[:30, :64, :64]
    m = ((zz - first_slice - 6) ** 2 * 4 + (yy - 32) ** 2 + (xx - 32) ** 2) <= 12 ** 2
    m[:first_slice] = False
    hu = (zz * 10 - 100).astype(np.int16)
    return trainer.make_item(hu, m, (2.0, 1.0, 1.0), "ball")


def test_past_the_end_is_drawn_as_often_as_inside(trainer) -> None:
    rng = np.random.default_rng(3)
    kinds = [trainer.draw_kind(rng) for _ in range(4000)]
    inside, past = kinds.count("inside"), kinds.count("past")
    assert 0.85 < past / inside < 1.15
    assert (past + inside) / len(kinds) > 0.5


def test_a_slice_past_the_end_has_an_empty_target_and_its_neighbours_in_travel_order(
        trainer) -> None:
    """The lesion starts at the scan's first slice, so its only end is the upper one: past it
    the outline travels up, the slice behind is 10 HU lower and the one ahead 10 HU higher
    (unless it is the scan's last); the prior is the lesion's last slice unless dropped."""
    item = _ball_item(trainer, 0)
    last = int(np.flatnonzero(item.mask.any(axis=(1, 2)))[-1])
    assert last + trainer.PAST_END_MAX < 29
    rng = np.random.default_rng(5)
    priors = 0
    for _ in range(40):
        x, y = trainer.sample(rng, item, "past")
        assert x.shape == (N_INPUTS, TILE, TILE)
        assert not y.any()
        priors += bool(x[4].any())
        step = 10.0 / (WINDOWS[1][1] - WINDOWS[1][0])
        assert np.allclose(x[6] - x[1], -step, atol=1e-4)
        assert np.allclose(x[8] - x[1], step, atol=1e-4)
    assert priors >= 30


def test_inside_samples_keep_their_target(trainer) -> None:
    item = _ball_item(trainer, 8)
    rng = np.random.default_rng(2)
    for _ in range(20):
        x, y = trainer.sample(rng, item, "inside")
        assert y.any()
        assert abs(float(np.mean(x[8] - x[6]))) == pytest.approx(
            20.0 / (WINDOWS[1][1] - WINDOWS[1][0]), abs=1e-4)


def test_priors_are_dropped_grown_shrunk_and_shifted(trainer) -> None:
    prev = np.zeros((60, 60), bool)
    prev[20:40, 22:38] = True
    rng = np.random.default_rng(0)
    outs = [trainer.perturb_prior(rng, prev) for _ in range(400)]
    empty = sum(not o.any() for o in outs)
    assert 0.04 < empty / len(outs) < 0.18
    kept = [o for o in outs if o.any()]
    areas = np.array([o.sum() for o in kept])
    assert (areas > prev.sum()).sum() > 80 and (areas < prev.sum()).sum() > 80
    shifts = [np.abs(np.array(np.nonzero(o)).mean(1) - np.array(np.nonzero(prev)).mean(1)).max()
              for o in kept]
    assert sum(s >= 1.0 for s in shifts) > 80
