"""``classic``: a weight-free seeded segmenter (intensity statistics, region growing, shape bound).

Steps, all in physical millimetres on a crop (volume of interest) around the click:

1. The median HU in a 1.5 mm ball around the seed must be soft tissue or a lung opacity
   (:func:`~recist_tool.segment.seed.check_seed`); air, fat and bone raise
   :class:`~recist_tool.segment.base.NoLesionError`.
2. The crop is smoothed lightly and ~100 rays are cast from the seed (uniform directions in mm).
   On each ray the first point leaving the lesion's intensity band marks the edge; the intensity a
   few mm beyond it is the surrounding tissue. Their medians give the lesion/background contrast.
3. Region growing: the 6-connected component of voxels within ``band_fraction`` of that contrast
   around the lesion intensity (works for bright lesions in lung and fat, and for hypodense
   lesions in enhancing liver alike).
4. Leak control: the component is limited to a star-shaped envelope built from the ray edges
   (rays that found no edge, e.g. into the chest wall or a vessel, take their neighbours' radius),
   then opened by reconstruction with a ball of ``open_fraction`` of the lesion's inscribed radius
   (cuts vessels and pleural tags), holes filled in 3D and per slice (cavities).
5. If the raw component reached the crop border, the returned mask is the bounded part and
   ``leak_bounded`` is set.
6. A lesion that is not a node and whose mask has a rim round it (a necrotic metastasis clicked
   in its core: :func:`~recist_tool.segment.layers.outer_layer`) is grown to the rim's outer
   edge (``info["outer_layer"]``).

A lesion outside the lung may have two kinds of surroundings, e.g. a hilar node between fat and
aerated lung: the median of its surroundings then lies between the two, and a band from it would
take in the fat, into which the growing leaks. So outside the lung, when the surroundings nearest
the lesion's intensity (those of the quarter of the rays closest to it,
:data:`NEAREST_SURROUND_QUANTILE`) are fat (:data:`FAT_HU`) and fall inside the band, the
contrast is taken against them instead (``info["surround"]``: ``median`` or ``nearest``). Other
near surroundings (a nodule against the chest wall) are left to the shape bound: their contrast
is too low to separate the lesion by intensity.
"""

from __future__ import annotations

from typing import cast

import numpy as np
from scipy import ndimage
from scipy.ndimage import map_coordinates
from scipy.spatial import cKDTree

from recist_tool.segment.base import LesionMask, NoLesionError, Prompt, clip_to_box
from recist_tool.segment.layers import with_outer_layer
from recist_tool.segment.morphology import fill_cavities
from recist_tool.segment.seed import (
    AIR_MAX_HU,
    FAT_HU,
    MIN_CONTRAST_HU,
    check_seed,
    seed_statistics,
)
from recist_tool.volume import Volume

__version__ = "1.4"


def _fibonacci_sphere(n: int) -> np.ndarray:
    i = np.arange(n) + 0.5
    phi = np.arccos(1 - 2 * i / n)
    theta = np.pi * (1 + 5**0.5) * i
    return np.stack([np.cos(phi), np.sin(phi) * np.sin(theta), np.sin(phi) * np.cos(theta)], 1)


_DIRS = _fibonacci_sphere(98)  # (z, y, x) unit vectors in mm space
_TREE = cKDTree(_DIRS)
#: Outside the lung, the surroundings of the quarter of the rays closest to the lesion's intensity,
#: when they are fat (e.g. beside a hilar node whose other side is lung), must stay outside the
#: band.
NEAREST_SURROUND_QUANTILE = 25.0


class ClassicSegmenter:
    """Seeded region growing with an adaptive threshold and a ray-based shape bound.

    Parameters
    ----------
    radius_mm : float
        Half-size of the volume of interest around the seed (grown once to ``2 x`` when the
        lesion looks larger).
    band_fraction : float
        Fraction of the lesion-to-surroundings contrast that still counts as lesion, in aerated
        lung (generous, like the LIDC readers' outlines: ground glass and spiculae count).
    soft_tissue_band_fraction : float
        The same in soft-tissue surroundings (liver, nodes, muscle): 0.5 puts the edge at
        half-contrast, the partial-volume boundary, where the long axis is unbiased.
    open_fraction : float
        Radius of the opening ball relative to the lesion's inscribed radius.
    star_slack : float
        Factor applied to the ray edge radii of the star-shaped envelope.
    lung_background : bool
        In aerated lung, measure the contrast against the parenchyma (so that the ground-glass
        part of a part-solid nodule counts as lesion).
    """

    name = "classic"
    version = __version__

    def __init__(self, radius_mm: float = 32.0, band_fraction: float = 0.7,
                 open_fraction: float = 0.35, star_slack: float = 1.1,
                 lung_background: bool = True, soft_tissue_band_fraction: float = 0.5) -> None:
        self.radius_mm = radius_mm
        self.band_fraction = band_fraction
        self.soft_tissue_band_fraction = soft_tissue_band_fraction
        self.open_fraction = open_fraction
        self.star_slack = star_slack
        self.lung_background = lung_background

    # ------------------------------------------------------------------ public
    def segment(self, volume: Volume, prompt: Prompt, *, node: bool = False) -> LesionMask:
        """Segment the lesion under the click; see the module docstring for the method."""
        seed = np.asarray(prompt.seed_voxel(volume))
        check_seed(volume, seed)
        radius = self.radius_mm
        line = prompt.line_length_mm(volume)
        if line is not None:
            radius = max(radius, 0.75 * line + 8.0)
        out = self._segment_crop(volume, seed, radius)
        if out["edge_max_mm"] > 0.6 * radius and radius < 64:
            radius = min(2 * radius, 64.0)
            out = self._segment_crop(volume, seed, radius)
        mask, lo = out["mask"], out["lo"]
        faces = _faces_touched(mask, lo, out["voi"], volume.shape)
        if faces >= 3:
            raise NoLesionError(
                f"no lesion at this point: the tissue around (z, y, x) = "
                f"{tuple(int(v) for v in seed)} has no boundary within {radius:.0f} mm on "
                f"{faces} sides (an organ or normal tissue, not a focal lesion)",
                reason="no_boundary")
        rim = None
        if not node and not out["leak"]:
            # a necrotic lesion prompted in its core: grown to the outer edge of its rim,
            # from a line only when its ends lie there
            mask, lo, rim = with_outer_layer(volume, mask, lo, prompt.line_zyx)
        if prompt.box_zyx is not None:
            mask = clip_to_box(mask, lo, prompt.box_zyx)
        warn: tuple[str, ...] = ()
        if out["leak"]:
            warn = ("region growing reached the edge of the volume of interest; the mask was "
                    "bounded by the lesion's shape estimate",)
        info = {k: out[k] for k in ("lesion_hu", "surround_hu", "surround", "threshold_band_hu",
                                    "inscribed_radius_mm", "rays_with_edge", "voi_radius_mm")}
        if rim is not None:
            info["outer_layer"] = rim
        return LesionMask(mask, cast("tuple[int, int, int]", tuple(int(v) for v in lo)), volume.shape,
                          self.name, self.version,
                          prompt, leak_bounded=bool(out["leak"]), warnings=warn, info=info).tight()

    # ------------------------------------------------------------------ internals
    def lung_ray_fraction(self, volume: Volume, seed) -> float | None:
        """Share of the rays from the click whose first surroundings beyond the lesion's edge
        are aerated lung (below -600 HU); ``None`` when too few rays find an edge within
        :attr:`radius_mm`. Lung nodules give about 0.2–1, mediastinal nodes and liver
        lesions about 0–0.2."""
        rays = _Rays(volume, np.asarray(seed, int), self.radius_mm)
        if rays.n_edge < 0.3 * len(_DIRS):
            return None
        return rays.lung_fraction()

    def _segment_crop(self, volume: Volume, seed: np.ndarray, radius: float) -> dict:
        rays = _Rays(volume, seed, radius)
        sp, lo, hi, s, img = rays.sp, rays.lo, rays.hi, rays.s, rays.img
        voi_lo = lo.copy()
        mu, mad, t, pts, dev = rays.mu, rays.mad, rays.t, rays.pts, rays.dev
        step, bg_vals, n_edge = rays.step, rays.bg_vals, rays.n_edge
        if n_edge < 0.3 * len(_DIRS):
            if radius >= 64:
                raise NoLesionError(
                    f"no lesion at this point: no boundary found within {radius:.0f} mm of "
                    f"(z, y, x) = {tuple(int(v) for v in seed)}", reason="no_boundary")
            return {"edge_max_mm": radius, "mask": np.zeros((1, 1, 1), bool), "lo": lo,
                    "leak": True, "lesion_hu": mu, "surround_hu": None, "surround": None,
                    "threshold_band_hu": None,
                    "voi": (lo, hi),
                    "inscribed_radius_mm": None, "rays_with_edge": n_edge, "voi_radius_mm": radius}
        bg = float(np.median(bg_vals))
        aerated = img < AIR_MAX_HU
        in_lung = rays.in_lung()
        if in_lung and self.lung_background:
            # in lung the surroundings are aerated parenchyma; ground glass counts as lesion
            bg = min(bg, float(np.median(img[aerated])))
        contrast = abs(bg - mu)
        if contrast < max(MIN_CONTRAST_HU, 2.0 * mad):
            raise NoLesionError(
                f"no lesion at this point: no contrast between the click ({mu:.0f} HU) and its "
                f"surroundings ({bg:.0f} HU)", reason="no_boundary")
        fraction = self.band_fraction if in_lung else self.soft_tissue_band_fraction
        band = max(fraction * contrast, 2.5 * mad, 20.0)
        surround = "median"
        if not in_lung:
            bgs = np.asarray(bg_vals)
            dev_bg = np.abs(bgs - mu)
            nearest = dev_bg <= np.percentile(dev_bg, NEAREST_SURROUND_QUANTILE)
            near_contrast, near_bg = float(dev_bg[nearest].mean()), float(bgs[nearest].mean())
            if near_contrast <= band and FAT_HU[0] <= near_bg <= FAT_HU[1]:
                # the band would take in the fat beside the lesion: separate the lesion from it
                surround, contrast, bg = "nearest", near_contrast, near_bg
                band = max(fraction * contrast, 2.5 * mad, 20.0)
        region = np.abs(img - mu) <= band

        # ---- seeded component (6-connected)
        lab, _ = ndimage.label(region)
        k = lab[tuple(s)]
        if k == 0:
            d, ind = ndimage.distance_transform_edt(lab == 0, sampling=sp, return_indices=True)
            if d[tuple(s)] > 2.0:
                raise NoLesionError("no lesion at this point: the click is not inside a region "
                                    "of uniform tissue", reason="no_boundary")
            k = lab[tuple(ind[:, s[0], s[1], s[2]])]
        comp = lab == k
        leak = _touches_border(comp, lo, hi, volume.shape)
        # ray edges: first point outside the intensity band that is not in a hole of the
        # component (cavities and calcifications inside the lesion do not end a ray)
        filled = fill_cavities(comp)
        holes = (filled & ~comp).view(np.uint8)
        in_hole = map_coordinates(holes, pts.reshape(-1, 3).T, order=0, mode="constant",
                                  cval=0).reshape(len(_DIRS), len(t)) > 0
        cross = (dev > band) & ~in_hole
        edge = np.where(cross.any(axis=1), cross.argmax(axis=1) * step, np.nan)
        comp = filled

        # ---- star-shaped envelope from the ray edges
        med_edge = float(np.nanmedian(edge)) if np.isfinite(edge).any() else radius
        radii = edge.copy()
        if np.isnan(radii).any():
            sim = _DIRS @ _DIRS.T
            for r in np.flatnonzero(np.isnan(radii)):
                nb = np.argsort(-sim[r])[1:9]
                v = radii[nb][~np.isnan(radii[nb])]
                radii[r] = float(np.median(v)) if v.size else med_edge
        idx = np.argwhere(comp)
        rel = (idx - s[None, :]) * sp[None, :]
        d_in = np.linalg.norm(rel, axis=1)
        _, nearest = _TREE.query(rel / np.maximum(d_in, 1e-6)[:, None])
        bound = radii[nearest] * self.star_slack + 1.5 + 0.5 * float(sp.max())
        comp[:] = False
        keep = idx[d_in <= bound]
        if keep.size == 0:
            keep = s[None, :]
        # work on the component's bounding box (plus a margin) from here on
        b_lo = np.maximum(keep.min(axis=0) - 2, 0)
        b_hi = np.minimum(keep.max(axis=0) + 3, comp.shape)
        comp = np.zeros(tuple(b_hi - b_lo), bool)
        comp[tuple((keep - b_lo).T)] = True
        lo = lo + b_lo
        s = s - b_lo
        zz, yy, xx = np.ogrid[:comp.shape[0], :comp.shape[1], :comp.shape[2]]
        dist = np.sqrt(((zz - s[0]) * sp[0]) ** 2 + ((yy - s[1]) * sp[1]) ** 2
                       + ((xx - s[2]) * sp[2]) ** 2)

        # ---- opening by reconstruction (cuts vessels / tags), keep the seed's part
        edt = ndimage.distance_transform_edt(comp, sampling=sp)
        containing = edt > dist
        r_in = float(edt[containing].max()) if containing.any() else float(edt.max())
        ro = self.open_fraction * r_in
        if ro > 0.75 * float(sp[1:].min()):
            core = edt > ro
            if core.any():
                clab, _ = ndimage.label(core)
                cand = np.where(containing & core, edt, 0)
                if cand.max() > 0:
                    p = np.unravel_index(np.argmax(cand), cand.shape)
                    core = clab == clab[p]
                    reach = ro + 0.5 * float(sp[1:].min())
                    grown = ndimage.distance_transform_edt(~core, sampling=sp) <= reach
                    comp = comp & grown
        comp = fill_cavities(comp)
        lab, _ = ndimage.label(comp)
        if lab[tuple(s)] > 0:
            comp = lab == lab[tuple(s)]
        vol_mm3 = float(comp.sum() * np.prod(sp))
        if vol_mm3 < 4.0 / 3.0 * np.pi * 1.5**3:
            raise NoLesionError(
                f"no lesion at this point: only {vol_mm3:.0f} mm3 of lesion-like tissue at "
                f"(z, y, x) = {tuple(int(v) for v in seed)}", reason="too_small")
        edge_max = float(np.nanpercentile(edge, 90)) if np.isfinite(edge).any() else radius
        return {"edge_max_mm": edge_max, "mask": comp, "lo": lo,
                "leak": leak, "lesion_hu": mu, "surround_hu": bg, "surround": surround,
                "voi": (voi_lo, hi),
                "threshold_band_hu": [mu - band, mu + band], "inscribed_radius_mm": r_in,
                "rays_with_edge": n_edge, "voi_radius_mm": radius}


class _Rays:
    """The smoothed crop around a seed and the rays cast from it (steps 1–2 of the method)."""

    step = 0.5

    def __init__(self, volume: Volume, seed: np.ndarray, radius: float) -> None:
        sp = np.asarray(volume.spacing, float)
        half = np.ceil(radius / sp).astype(int)
        self.sp = sp
        self.lo = np.maximum(seed - half, 0)
        self.hi = np.minimum(seed + half + 1, volume.shape)
        lo, hi = self.lo, self.hi
        raw = np.asarray(volume.array[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]], np.float32)
        self.img = ndimage.gaussian_filter(raw, np.minimum(0.6 / sp, 0.8), mode="nearest")
        self.s = s = seed - lo
        self.mu, self.mad = seed_statistics(_Arr(self.img, sp), s,
                                            radius_mm=max(1.5, float(sp[1:].max())))
        # edge distance and surrounding intensity along each ray
        self.t = t = np.arange(0.0, radius, self.step)
        self.pts = s[None, None, :] + (_DIRS[:, None, :] * t[None, :, None]) / sp[None, None, :]
        self.prof = map_coordinates(self.img, self.pts.reshape(-1, 3).T, order=1,
                                    mode="nearest").reshape(len(_DIRS), len(t))
        delta = float(np.clip(3.0 * self.mad, 35.0, 150.0))
        self.dev = dev = np.abs(self.prof - self.mu)
        outside = dev > delta
        has = outside.any(axis=1)
        first = np.where(has, outside.argmax(axis=1), -1)
        win = int(8.0 / self.step)
        self.bg_vals = [self.prof[r, k + int(np.argmax(dev[r, k:k + win]))]
                        for r, k in enumerate(first) if k >= 0]
        self.n_edge = int(has.sum())

    def lung_fraction(self) -> float:
        """Share of the rays with an edge whose surroundings are aerated lung (< -600 HU)."""
        return float(np.mean(np.asarray(self.bg_vals) < AIR_MAX_HU)) if self.bg_vals else 0.0

    def in_lung(self) -> bool:
        """Most rays leave the lesion into aerated lung, which is darker than the lesion."""
        if not self.bg_vals:
            return False
        return bool(float(np.median(self.bg_vals)) < self.mu and self.lung_fraction() > 0.5)


class _Arr:
    """Minimal volume stand-in for :func:`seed_statistics` on a crop."""

    def __init__(self, array: np.ndarray, spacing: np.ndarray) -> None:
        self.array = array
        self.spacing = tuple(float(v) for v in spacing)
        self.shape = array.shape


def _touches_border(comp: np.ndarray, lo, hi, shape) -> bool:
    """True when the component reaches a crop face that is inside the volume."""
    faces = []
    for ax in range(3):
        if lo[ax] > 0:
            faces.append(np.take(comp, 0, axis=ax).any())
        if hi[ax] < shape[ax]:
            faces.append(np.take(comp, -1, axis=ax).any())
    return bool(any(faces))


def _faces_touched(mask: np.ndarray, offset, voi, shape) -> int:
    """How many faces of the volume of interest (inside the volume) the mask reaches."""
    lo, hi = (np.asarray(v) for v in voi)
    nz = np.nonzero(mask)
    if not nz[0].size:
        return 0
    mlo = np.array([a.min() for a in nz]) + np.asarray(offset)
    mhi = np.array([a.max() for a in nz]) + np.asarray(offset) + 1
    n = 0
    for ax in range(3):
        n += int(lo[ax] > 0 and mlo[ax] <= lo[ax])
        n += int(hi[ax] < shape[ax] and mhi[ax] >= hi[ax])
    return n

