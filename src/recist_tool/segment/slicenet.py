"""``slicenet``: a trained 2D network that outlines a lesion slice by slice at the lesion's scale.

Why 2D and scale-normalised: a trial's target lesions run from 10 to 150 mm, and one fixed field
of view fits none of them well. Every prediction here is made on a square **tile** of
:data:`TILE` × :data:`TILE` pixels whose side is :data:`SIDE_PER_LENGTH` times the lesion's
length (at least :data:`MIN_SIDE_MM`), so a 12 mm node and a 150 mm mass look alike to the
network: a lesion filling about half of its tile. The tile is sampled from one native slice
through the volume's exact geometry (bilinear), and the network's probability is interpolated
back onto the native pixels.

Input channels (:data:`N_INPUTS`):

0. CT in a wide window (:data:`WINDOWS` [0]: lung to bone),
1. CT in a soft-tissue window (:data:`WINDOWS` [1]: liver, muscle, nodes),
2. the prompt on the first slice: the reader's caliper **line** (or a **click**, a line of zero
   length) drawn as a Gaussian ridge of :data:`PROMPT_SIGMA_PX` pixels,
3. the prompt's **box** (1 inside its rectangle),
4. the **prior**: the mask of the neighbouring slice, already outlined,
5. 6. the CT (both windows) of the slice **behind** in the direction of travel (the prior's
   slice; the slice below on the first slice),
7. 8. the CT (both windows) of the slice **ahead** (2.5D input: where the lesion ends, the CT
   changes from behind to here while the prior does not; :func:`neighbour_slices`).

Weights record their input channels (``meta["inputs"]``): weights of the first recipe
(2026-12-04, channels 0-4 only, no ``inputs`` key) still load and are given those five;
any other count is refused with :class:`SegmentationError`.

3D: the first slice is the line's (or the box's middle slice, or the click's). Its mask is then
carried to the next slice above and below as the prior, with the tile re-centred on the mask's
centre, until the network finds less than :data:`END_AREA_SHARE` of the first slice's area, the
scan or the box ends, or the lesion has been followed :data:`MAX_EXTENT_FACTOR` times its length
(the mask is then flagged ``leak_bounded``). A click gives no length: the first slice is
predicted at growing lengths (:data:`CLICK_LENGTHS_MM`) until the mask no longer reaches the side
of its tile (the network learnt that a lesion larger than its tile fills it), and predicted once
more at that mask's own length.

The network is trained by ``models/train_slicenet.py`` (data and recipe in ``models/MODEL_CARD.md``);
weights are read from ``models/slicenet.pt`` (or ``$RECIST_SLICENET_WEIGHTS`` or ``weights=``),
never from the network. Without weights the segmenter raises :class:`SegmentationError`; the
default ``unet`` then routes large lesions to ``contour`` instead.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from scipy import ndimage

from recist_tool.errors import SegmentationError
from recist_tool.segment.base import LesionMask, NoLesionError, Prompt, clip_to_box
from recist_tool.segment.network import unet
from recist_tool.volume import Volume

if TYPE_CHECKING:
    from torch.nn import Module as TorchModule

__all__ = ["SliceNetSegmenter", "build_network", "tile_coords", "tile_input", "to_tile",
           "from_tile", "longest_chord", "neighbour_slices", "TILE", "SIDE_PER_LENGTH",
           "default_weights_path"]

#: Tile size (pixels) of the network's input and output.
TILE = 64
#: Tile side over the lesion's length (line length, box side, or a click's chosen length).
SIDE_PER_LENGTH = 2.0
#: Smallest tile side (mm): a 10 mm lesion is seen with some context around it.
MIN_SIDE_MM = 24.0
#: HU windows (low, high) of the two CT channels, mapped to 0..1.
WINDOWS = ((-1000.0, 400.0), (-160.0, 240.0))
#: Width (tile pixels) of the line / click ridge.
PROMPT_SIGMA_PX = 1.5
#: Channels of the 2D U-Net's levels.
FEATURES = (12, 24, 48, 96)
#: Input channels (see the module docstring).
N_INPUTS = 9
#: Input channels of the first recipe's weights (2026-12-04: no neighbouring slices' CT).
N_INPUTS_V1 = 5
#: A slice whose mask is smaller than this share of the first slice's ends the lesion.
END_AREA_SHARE = 0.02
#: The lesion is followed at most this many times its length above and below its first slice.
MAX_EXTENT_FACTOR = 2.0
#: From one slice to the next the outline moves out by at most this many times the slice gap
#: (a surface at 45 degrees): the carried outline cannot swell into the tissue around it.
MAX_SLOPE = 1.0
#: Lengths (mm) tried for a click, which has no size of its own.
CLICK_LENGTHS_MM = (12.0, 20.0, 32.0, 50.0, 80.0, 125.0, 190.0)
#: Probability threshold of the mask.
THRESHOLD = 0.5
#: File name of the shipped weights under ``models/``.
WEIGHTS_NAME = "slicenet.pt"


def _torch():
    import torch

    return torch


def build_network(features: tuple[int, ...] = FEATURES, n_inputs: int = N_INPUTS):
    """The 2D U-Net (:func:`~recist_tool.segment.network.unet`): ``n_inputs`` channels in,
    one logit out; each level two 3x3 convolutions with batch normalisation and ReLU."""
    torch = _torch()
    nn = torch.nn

    def block(cin: int, cout: int) -> TorchModule:
        return nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True))

    return unet(2, n_inputs, features, block)


# --------------------------------------------------------------------------- tile geometry
def tile_coords(centre_yx: np.ndarray, side_mm: float, spacing_yx, angle: float = 0.0
                ) -> np.ndarray:
    """Native pixel coordinates ``(2, TILE, TILE)`` (y, x) of a tile's pixel centres.

    Parameters
    ----------
    centre_yx : array_like
        Tile centre in native pixel indices ``(y, x)``.
    side_mm : float
        Tile side in mm.
    spacing_yx : array_like
        Native pixel spacing ``(dy, dx)`` mm.
    angle : float
        In-plane rotation of the tile (radians; training augmentation, 0 at inference).

    Examples
    --------
    >>> c = tile_coords(np.array([100.0, 100.0]), 64.0, (1.0, 1.0))
    >>> c.shape, float(c[0].min()), float(c[0].max())
    ((2, 64, 64), 68.5, 131.5)
    """
    step = side_mm / TILE
    u = (np.arange(TILE) - (TILE - 1) / 2.0) * step
    uu, vv = np.meshgrid(u, u, indexing="ij")
    ca, sa = np.cos(angle), np.sin(angle)
    dy, dx = ca * uu - sa * vv, sa * uu + ca * vv
    sp = np.asarray(spacing_yx, float)
    return np.stack([centre_yx[0] + dy / sp[0], centre_yx[1] + dx / sp[1]])


def to_tile(points_yx: np.ndarray, centre_yx: np.ndarray, side_mm: float, spacing_yx,
            angle: float = 0.0) -> np.ndarray:
    """Native pixel points ``(n, 2)`` in tile pixel coordinates (the inverse of
    :func:`tile_coords`)."""
    sp = np.asarray(spacing_yx, float)
    d = (np.asarray(points_yx, float) - centre_yx) * sp
    ca, sa = np.cos(angle), np.sin(angle)
    u = ca * d[:, 0] + sa * d[:, 1]
    v = -sa * d[:, 0] + ca * d[:, 1]
    return np.stack([u, v], axis=1) / (side_mm / TILE) + (TILE - 1) / 2.0


def _window(hu: np.ndarray) -> list[np.ndarray]:
    return [np.clip((hu - lo) / (hi - lo), 0.0, 1.0) for lo, hi in WINDOWS]


def _ridge(ends_tile: np.ndarray) -> np.ndarray:
    """Gaussian ridge along a segment (tile coordinates; equal ends give a dot)."""
    a, b = ends_tile
    g = np.stack(np.meshgrid(np.arange(TILE), np.arange(TILE), indexing="ij"), -1).astype(float)
    ab = b - a
    n = float(ab @ ab)
    t = np.clip(((g - a) @ ab) / n, 0.0, 1.0) if n > 1e-9 else np.zeros(g.shape[:2])
    d2 = np.sum((g - (a + t[..., None] * ab)) ** 2, axis=-1)
    return np.exp(-0.5 * d2 / PROMPT_SIGMA_PX ** 2)


def _rect(lo_tile: np.ndarray, hi_tile: np.ndarray) -> np.ndarray:
    i = np.arange(TILE)[:, None]
    j = np.arange(TILE)[None, :]
    return ((i >= lo_tile[0]) & (i <= hi_tile[0]) & (j >= lo_tile[1]) & (j <= hi_tile[1])
            ).astype(np.float32)


def neighbour_slices(array: np.ndarray, z: int, direction: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """The slices behind (``z - direction``) and ahead (``z + direction``) of slice ``z``, the
    end slice repeated past the scan's ends.

    Examples
    --------
    >>> a = np.arange(3)[:, None, None] * np.ones((3, 2, 2))
    >>> [float(s[0, 0]) for s in neighbour_slices(a, 2, 1)]  # up: behind 1, ahead repeats 2
    [1.0, 2.0]
    >>> [float(s[0, 0]) for s in neighbour_slices(a, 2, -1)]  # down: behind repeats 2, ahead 1
    [2.0, 1.0]
    """
    n = array.shape[0]
    return (array[int(np.clip(z - direction, 0, n - 1))],
            array[int(np.clip(z + direction, 0, n - 1))])


def tile_input(slice_hu: np.ndarray, coords: np.ndarray, line_tile: np.ndarray | None = None,
               box_tile: np.ndarray | None = None, prior: np.ndarray | None = None,
               neighbours: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """The network input ``(N_INPUTS, TILE, TILE)`` float32 for one tile.

    Parameters
    ----------
    slice_hu : numpy.ndarray
        One native slice (HU).
    coords : numpy.ndarray
        Its tile's native coordinates (:func:`tile_coords`).
    line_tile : numpy.ndarray, optional
        The line's (or click's) two ends in tile coordinates ``(2, 2)``.
    box_tile : numpy.ndarray, optional
        The box's corners in tile coordinates ``(2, 2)`` (lo, hi; any order).
    prior : numpy.ndarray, optional
        The neighbouring slice's mask on this tile ``(TILE, TILE)``.
    neighbours : tuple of numpy.ndarray, optional
        The native slices behind and ahead (:func:`neighbour_slices`); without them the slice
        itself stands in for both.
    """
    def sample(s: np.ndarray) -> np.ndarray:
        return ndimage.map_coordinates(np.asarray(s, np.float32), coords, order=1,
                                       mode="nearest")

    hu = sample(slice_hu)
    chans = _window(hu)
    chans.append(_ridge(line_tile) if line_tile is not None else np.zeros((TILE, TILE)))
    if box_tile is not None:
        chans.append(_rect(box_tile.min(axis=0), box_tile.max(axis=0)))
    else:
        chans.append(np.zeros((TILE, TILE)))
    chans.append(np.zeros((TILE, TILE)) if prior is None else np.asarray(prior, float))
    for s in neighbours if neighbours is not None else (None, None):
        chans.extend(_window(hu if s is None else sample(s)))
    return np.stack(chans).astype(np.float32)


def from_tile(prob: np.ndarray, shape_yx: tuple[int, int], centre_yx: np.ndarray,
              side_mm: float, spacing_yx) -> tuple[np.ndarray, tuple[int, int]]:
    """A tile's probability on the native pixels it covers: ``(crop, (y0, x0))``."""
    sp = np.asarray(spacing_yx, float)
    half = 0.5 * side_mm / sp
    lo = np.maximum(np.floor(centre_yx - half).astype(int), 0)
    hi = np.minimum(np.ceil(centre_yx + half).astype(int) + 1, shape_yx)
    yy, xx = np.meshgrid(np.arange(lo[0], hi[0]), np.arange(lo[1], hi[1]), indexing="ij")
    t = to_tile(np.stack([yy.ravel(), xx.ravel()], 1), centre_yx, side_mm, sp)
    p = ndimage.map_coordinates(prob, t.T, order=1, mode="constant", cval=0.0)
    return p.reshape(yy.shape), (int(lo[0]), int(lo[1]))


def default_weights_path() -> Path:
    """``$RECIST_SLICENET_WEIGHTS`` when set, else ``models/slicenet.pt`` of the source tree,
    else the copy a wheel installs beside the ``unet`` weights."""
    from recist_tool.segment.unet import default_weights_path as unet_path

    env = os.environ.get("RECIST_SLICENET_WEIGHTS")
    if env:
        return Path(env)
    return unet_path().with_name(WEIGHTS_NAME)


# --------------------------------------------------------------------------- segmenter
class SliceNetSegmenter:
    """Lesions of any size from a line, a box or a click, outlined slice by slice by a trained
    2D network at the lesion's own scale (see the module docstring).

    Parameters
    ----------
    weights : str or Path, optional
        Weight file (default :func:`default_weights_path`).
    threads : int, optional
        torch intra-op threads.
    ends_from : {"contour", "network"}
        Where the lesion ends above and below its first slice: where ``contour``'s outline for
        the same prompt ends (its contrast fades; default), or only where the network's own
        outline shrinks away (it tends to carry its prior on past the lesion's end).
    """

    name = "slicenet"

    def __init__(self, weights: str | Path | None = None, threads: int | None = None,
                 ends_from: str = "contour") -> None:
        if ends_from not in ("contour", "network"):
            raise ValueError(f"ends_from must be contour or network, got {ends_from!r}")
        self.ends_from = ends_from
        torch = _torch()
        path = Path(weights) if weights else default_weights_path()
        if not path.is_file():
            raise SegmentationError(f"slicenet weights not found at {path}")
        blob = torch.load(path, map_location="cpu", weights_only=True)
        self.meta: dict[str, Any] = dict(blob.get("meta", {}))
        #: Input channels of these weights (the first recipe's did not record theirs: 5).
        self.n_inputs = int(self.meta.get("inputs", N_INPUTS_V1))
        if self.n_inputs not in (N_INPUTS_V1, N_INPUTS):
            raise SegmentationError(
                f"slicenet weights at {path} take {self.n_inputs} input channels; this version "
                f"reads weights of {N_INPUTS_V1} (recipe of 2026-12-04) or {N_INPUTS} "
                f"(with the neighbouring slices' CT): retrain with models/train_slicenet.py")
        self.net = build_network(tuple(self.meta.get("features", FEATURES)), self.n_inputs)
        self.net.load_state_dict(blob["state_dict"])
        self.net.eval()
        if threads:
            torch.set_num_threads(int(threads))
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:8]
        self.version = f"{self.meta.get('version', '1')}+{digest}"

    # ------------------------------------------------------------------ one tile
    def _predict(self, x: np.ndarray) -> np.ndarray:
        torch = _torch()
        with torch.inference_mode():
            logit = self.net(torch.from_numpy(x[None] if x.ndim == 3 else x))
        return torch.sigmoid(logit)[:, 0].numpy()

    def _slice(self, volume: Volume, z: int, centre: np.ndarray, side: float,
               line: np.ndarray | None, box: np.ndarray | None,
               prior_native: np.ndarray | None, direction: int = 1) -> np.ndarray:
        """The native mask of slice ``z`` (boolean, full slice), the outline travelling in
        ``direction`` (the prior is the slice ``z - direction``'s)."""
        sp = np.asarray(volume.spacing[1:], float)
        coords = tile_coords(centre, side, sp)
        prior = None
        if prior_native is not None:
            prior = ndimage.map_coordinates(prior_native.astype(np.float32), coords, order=1,
                                            mode="constant") > 0.5
        lt = to_tile(line, centre, side, sp) if line is not None else None
        bt = to_tile(box, centre, side, sp) if box is not None else None
        x = tile_input(volume.array[z], coords, lt, bt, prior,
                       neighbour_slices(volume.array, z, direction))[:self.n_inputs]
        prob = self._predict(x)[0]
        crop, (y0, x0) = from_tile(prob, volume.shape[1:], centre, side, sp)
        out = np.zeros(volume.shape[1:], bool)
        out[y0:y0 + crop.shape[0], x0:x0 + crop.shape[1]] = crop > THRESHOLD
        return out

    # ------------------------------------------------------------------ API
    def segment(self, volume: Volume, prompt: Prompt, *, node: bool = False) -> LesionMask:
        """Segment the lesion of ``prompt`` (see the module docstring)."""
        sp = np.asarray(volume.spacing, float)
        nz = volume.shape[0]
        line = box = None
        zlim = (0, nz - 1)
        info: dict[str, Any] = {"tile": TILE}
        if prompt.line_zyx is not None:
            a, b = (np.asarray(p, float) for p in prompt.line_zyx)
            z0 = int(round(0.5 * (a[0] + b[0])))
            line = np.stack([a[1:], b[1:]])
            centre = line.mean(axis=0)
            length = float(np.hypot(*((a[1:] - b[1:]) * sp[1:])))
            kind = "line"
        elif prompt.point_zyx is None and prompt.point_lps is None:
            lo, hi = (np.asarray(p, float) for p in prompt.box_zyx)  # type: ignore[union-attr]
            z0 = int(round(0.5 * (lo[0] + hi[0])))
            box = np.stack([lo[1:], hi[1:]])
            centre = box.mean(axis=0)
            length = float(np.max((hi[1:] - lo[1:] + 1.0) * sp[1:]))
            kind = "box"
        else:
            seed = np.asarray(prompt.seed_index(volume), float)
            z0 = int(round(seed[0]))
            centre = seed[1:]
            length = self._click_length(volume, z0, centre)
            line = np.stack([centre, centre])
            kind = "click"
        if prompt.box_zyx is not None:
            lo, hi = (np.asarray(p, float) for p in prompt.box_zyx)
            box = np.stack([lo[1:], hi[1:]])
            zlim = (max(0, int(np.ceil(lo[0]))), min(nz - 1, int(np.floor(hi[0]))))
        z0 = int(np.clip(z0, 0, nz - 1))
        side = max(SIDE_PER_LENGTH * length, MIN_SIDE_MM)
        first = self._slice(volume, z0, centre, side, line, box, None)
        if kind == "line":  # keep the part of the outline the line crosses
            first = _component_on_segment(first, cast(np.ndarray, line))  # a line prompt
        else:
            first = _component_near(first, centre, sp[1:])
        if not first.any():
            raise NoLesionError(f"no lesion at this {kind}: the network finds none on slice "
                                f"{z0}", reason="no_boundary")
        mask = np.zeros(volume.shape, bool)
        mask[z0] = first
        area0 = int(first.sum())
        ends = self._contour_ends(volume, prompt, node) if self.ends_from == "contour" else None
        reach = MAX_EXTENT_FACTOR * max(length, _extent_mm(first, sp[1:]))
        grow = max(1, int(np.ceil(MAX_SLOPE * sp[0] / min(sp[1:]))))
        ended: dict[str, str] = {}
        for direction in (1, -1):
            prev = first
            z = z0 + direction
            while True:
                if z < zlim[0] or z > zlim[1]:
                    ended[str(direction)] = "scan end" if z < 0 or z >= nz else "box end"
                    break
                if ends is not None and not ends[0] <= z <= ends[1]:
                    ended[str(direction)] = "contour's end"
                    break
                if abs(z - z0) * sp[0] > reach:
                    ended[str(direction)] = "extent limit"
                    break
                c = np.array(ndimage.center_of_mass(prev))
                cur = self._slice(volume, z, c, side, None, box, prev, direction)
                # a lesion's surface slopes at most MAX_SLOPE between slices
                cur &= ndimage.binary_dilation(prev, iterations=grow)
                cur = _component_near(cur, c, sp[1:]) if cur.any() else cur
                if cur.sum() < max(END_AREA_SHARE * area0, 3):
                    ended[str(direction)] = "size"
                    break
                mask[z] = cur
                prev = cur
                z += direction
        leak = any(v in ("scan end", "extent limit") for v in ended.values())
        warn: tuple[str, ...] = ()
        if "extent limit" in ended.values():
            warn = (f"the lesion was followed {reach:.0f} mm above and below its slice "
                    f"({MAX_EXTENT_FACTOR:g} x its length) and stopped there",)
        info.update({"from": kind, "length_mm": round(length, 1), "side_mm": round(side, 1),
                     "ended_by": ended, "first_slice": z0})
        nzs = np.argwhere(mask)
        lo3, hi3 = nzs.min(axis=0), nzs.max(axis=0) + 1
        crop = mask[lo3[0]:hi3[0], lo3[1]:hi3[1], lo3[2]:hi3[2]]
        offset = cast("tuple[int, int, int]", tuple(int(v) for v in lo3))
        if prompt.box_zyx is not None:
            crop = clip_to_box(crop, offset, prompt.box_zyx, refuse_empty=True)
        return LesionMask(crop, offset, volume.shape, self.name, self.version, prompt,
                          leak_bounded=leak, warnings=warn, info=info).tight()

    def _contour_ends(self, volume: Volume, prompt: Prompt, node: bool
                      ) -> tuple[int, int] | None:
        """First and last slice of ``contour``'s mask for the same prompt (its end of the
        lesion: the outline's contrast fades), or None when it finds no lesion."""
        from recist_tool.segment.contour import ContourSegmenter

        try:
            m = ContourSegmenter().segment(volume, prompt, node=node)
        except NoLesionError:
            return None
        return m.offset[0], m.offset[0] + m.mask.shape[0] - 1

    def _click_length(self, volume: Volume, z0: int, centre: np.ndarray) -> float:
        """The length (mm) a click's lesion is outlined at: the network is asked at growing
        lengths (:data:`CLICK_LENGTHS_MM`) until its mask no longer reaches the side of the
        tile (a lesion larger than the tile fills it); the mask's own extent is the length."""
        sp = np.asarray(volume.spacing[1:], float)
        dot = np.stack([centre, centre])
        for length in CLICK_LENGTHS_MM:
            side = max(SIDE_PER_LENGTH * length, MIN_SIDE_MM)
            m = _component_near(self._slice(volume, z0, centre, side, dot, None, None),
                                centre, sp)
            if not m.any():
                continue
            if not _reaches_tile_side(m, centre, side, sp):
                return _extent_mm(m, sp)
        raise NoLesionError("no lesion at this point: the network finds no lesion of "
                            f"{CLICK_LENGTHS_MM[0]:g} to {CLICK_LENGTHS_MM[-1]:g} mm here",
                            reason="no_boundary")


def _reaches_tile_side(mask2d: np.ndarray, centre_yx: np.ndarray, side_mm: float,
                       spacing_yx) -> bool:
    """Whether a native 2D mask reaches within two tile pixels of its tile's side."""
    pts = np.argwhere(mask2d)
    t = to_tile(pts, centre_yx, side_mm, spacing_yx)
    return bool(np.any((t < 2.0) | (t > TILE - 3.0)))


def longest_chord(mask2d: np.ndarray, spacing_yx) -> np.ndarray:
    """The two ends ``(2, 2)`` (pixel indices ``(y, x)``) of a 2D mask's longest chord between
    pixel centres, found among its convex hull's corners.

    Examples
    --------
    >>> m = np.zeros((5, 9), bool); m[2, 1:8] = True
    >>> longest_chord(m, (1.0, 1.0)).tolist()
    [[2.0, 1.0], [2.0, 7.0]]
    """
    from scipy.spatial import ConvexHull, QhullError

    pts = np.argwhere(mask2d).astype(float)
    sp = np.asarray(spacing_yx, float)
    if len(pts) > 3:
        try:
            pts = pts[ConvexHull(pts * sp).vertices]
        except QhullError:  # all on one line: every pixel is a candidate
            pass
    d = (((pts[:, None] - pts[None]) * sp) ** 2).sum(-1)
    i, j = np.unravel_index(int(np.argmax(d)), d.shape)
    return np.stack([pts[i], pts[j]])


def _extent_mm(mask2d: np.ndarray, spacing_yx) -> float:
    """Largest in-plane extent (mm) of a 2D mask: its longest chord plus one pixel."""
    a, b = longest_chord(mask2d, spacing_yx)
    return float(np.hypot(*((a - b) * np.asarray(spacing_yx, float))) + np.mean(spacing_yx))


def _component_near(mask2d: np.ndarray, centre_yx: np.ndarray, spacing_yx) -> np.ndarray:
    """The connected part of a 2D mask holding, or nearest to, ``centre_yx``."""
    lab, n = ndimage.label(mask2d)
    if n <= 1:
        return mask2d
    c = np.clip(np.rint(centre_yx).astype(int), 0, np.asarray(mask2d.shape) - 1)
    k = lab[tuple(c)]
    if k == 0:
        d, idx = ndimage.distance_transform_edt(lab == 0, sampling=spacing_yx,
                                                return_indices=True)
        k = lab[idx[0][tuple(c)], idx[1][tuple(c)]]
    return lab == k


def _component_on_segment(mask2d: np.ndarray, line: np.ndarray) -> np.ndarray:
    """The connected parts of a 2D mask that the segment ``line`` (2 × (y, x)) crosses; the
    part nearest its middle when it crosses none."""
    lab, n = ndimage.label(mask2d)
    if n <= 1:
        return mask2d
    t = np.linspace(0.0, 1.0, 200)
    pts = np.rint((1 - t)[:, None] * line[0] + t[:, None] * line[1]).astype(int)
    pts = np.clip(pts, 0, np.asarray(mask2d.shape) - 1)
    hit = set(int(v) for v in lab[pts[:, 0], pts[:, 1]]) - {0}
    if not hit:
        return _component_near(mask2d, line.mean(axis=0), (1.0, 1.0))
    return np.isin(lab, list(hit))
