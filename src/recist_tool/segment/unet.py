"""``unet``: a small promptable 3D U-Net trained in this project (``models/train.py``).

Inference: a box of :data:`PATCH_SHAPE` voxels at :data:`WORK_SPACING` mm (aligned with the
volume's axes) is sampled around the click through the volume's exact geometry, the click is
encoded as a Gaussian heat-map channel, the network predicts a lesion probability, and the
probabilities are interpolated back onto the native grid (sheared and uneven stacks included).
When the prediction reaches the border of the box, the box is retried once at twice the working
spacing (a lesion larger than the field of view); if it still touches, the mask is flagged
``leak_bounded``. The probability threshold is the one calibrated with the weights; a click away
from the lesion's centre gets a second prediction centred on the first mask's deepest point
(``recentre``). When the mask misses the click and the box reaches past the first or last
slice of the scan (where the box repeats the end slice), the network predicts once more on the
stack mirrored at its ends, and that answer is kept when it holds the click: a lesion cut by the
end of the scan (``info["mirrored_ends"]``); when it finds nothing there, mirrored or not,
``classic`` answers. Lesions that are not in aerated lung, and lesions
flagged as lymph nodes (``node=True``), where the network is not validated, are handed to
``classic`` (``lung_only``). Large lesions go to the large-lesion segmenter
(:func:`large_lesion_segmenter`: the trained ``slicenet``, or the weight-free ``contour`` without
its weights): a caliper line (or the longer in-plane side of a box) at least
:data:`LARGE_LESION_MM` long, and a click whose first mask (``classic``'s, or the network's) is
that large, or the network's mask that reaches the edge of its widest field of view or, from
:data:`PART_MIN_MM`, whose outline separates it from the tissue around it (not aerated lung)
by less than ``classic``'s minimum contrast, or has the lesion's density beyond more than
:data:`LESION_BEYOND_SHARE` of it (it stopped inside a larger lesion:
:func:`~recist_tool.segment.edge.outline_contrast`). Every mask handed on says why in
``info["routed_by"]``. A click whose first mask is ``classic``'s grown to
the edge of its volume of interest, where the large-lesion segmenter finds no lesion, is
refused: tissue of one density running on for centimetres is an organ's parenchyma, not a
lesion in it (a reader's line is still outlined). So is such a click whose outline the tissue
``classic`` grew through runs on beyond at its density (:mod:`recist_tool.segment.distinct`):
the outline closes a piece of the organ.

A weight file whose metadata names another ``patch_shape``, ``work_spacing_mm`` or
``click_sigma_mm`` is run on that grid (the ``model-file`` segmenter relies on it).

Weights are read from ``models/unet_lesion.pt`` (or the path in ``$RECIST_UNET_WEIGHTS`` or the
``weights=`` argument), never from the network. Without weights the segmenter falls back to
``classic`` with a warning.
"""

from __future__ import annotations

import hashlib
import os
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from recist_tool.errors import SegmentationError
from recist_tool.segment.base import LesionMask, NoLesionError, Prompt, clip_to_box
from recist_tool.segment.contour import box_extent_mm
from recist_tool.segment.distinct import tissue_beyond
from recist_tool.segment.edge import EDGES, half_contrast_edge, outline_contrast
from recist_tool.segment.grid import WorkGrid, gaussian_click, normalise_hu
from recist_tool.segment.network import unet
from recist_tool.segment.seed import AIR_MAX_HU, MIN_CONTRAST_HU, check_seed
from recist_tool.volume import Volume

if TYPE_CHECKING:
    from torch.nn import Module as TorchModule

#: Working voxel size ``(dz, dy, dx)`` mm of the network's input at scale 1.
WORK_SPACING = (1.5, 1.0, 1.0)
#: Network input size ``(z, y, x)`` voxels (field of view 48 mm at scale 1).
PATCH_SHAPE = (32, 48, 48)
#: Width of the click heat map (mm).
CLICK_SIGMA_MM = 3.0
#: Channels of the encoder levels.
CHANNELS = (8, 16, 32, 64)
#: A second prediction centred on the first mask's deepest point is made when that point lies
#: farther than this (mm) from the click.
RECENTRE_MIN_MM = 1.5
#: With ``lung_only``, the network answers when at least this share of the rays from the click
#: leave the lesion into aerated lung (LIDC nodules >= 10 mm: 99 % of clicks; the sample-data
#: liver metastases and mediastinal nodes: 0-0.19), ``classic`` otherwise.
LUNG_RAYS_MIN = 0.25
#: Why a click is passed to ``classic`` (see ``lung_only``).
NOT_IN_LUNG = ("the lesion is not in aerated lung; the network is validated on lung lesions "
               "only, so the weight-free 'classic' segmenter answers")
#: Why a click flagged as a lymph node is passed to ``classic`` (see ``lung_only``): a hilar or
#: mediastinal node may border the lung, but no real node was seen in training or validation.
NODE = ("the lesion is flagged as a lymph node; the network is validated on lung nodules only, "
        "so the weight-free 'classic' segmenter answers")
#: Why a click next to the end of the scan is passed to ``classic`` when the network finds
#: nothing there, mirrored or not: a lesion cut by both ends of a thin stack (a single slice,
#: or 3 slices through an 8 mm phantom nodule: the network finds nothing; ``classic`` Dice 0.96).
SCAN_END = ("the network finds no lesion here, next to the end of the scanned volume (its box "
            "reaches past the scan), so the weight-free 'classic' segmenter answers")
#: Lesions at least this long (mm) are outlined by the large-lesion segmenter (``slicenet``, or
#: ``contour`` without its weights): the network learnt LIDC nodules (3-30 mm, few above), and
#: ``classic``'s volume of interest is sized for lesions of that order.
LARGE_LESION_MM = 40.0
#: Why a prompt is passed to the large-lesion segmenter (see :data:`LARGE_LESION_MM`).
LARGE = ("the lesion is {size:.0f} mm long ({how}), at least {limit:g} mm: the '{to}' "
         "segmenter outlines it slice by slice at its own scale")
#: Why a click is passed to the large-lesion segmenter when the network's outline is no edge: it
#: learnt nodules of 3-30 mm, and inside a larger lesion (a lobe of a lobulated 80 mm central
#: primary) it can stop where nothing in the image changes.
PART_OF_LARGER = ("the network's outline separates its {size:.0f} mm mask from the tissue "
                  "around it by {contrast:.0f} HU only (less than {limit:g} HU): it is part of "
                  "a larger lesion, which the '{to}' segmenter outlines slice by slice")
#: Why a network mask is passed on when the lesion's density lies beyond most of its outline.
LESION_BEYOND = ("{share:.0%} of the tissue just outside the network's outline of its {size:.0f} "
                 "mm mask has the lesion's density: it is part of a larger lesion, which the "
                 "'{to}' segmenter outlines slice by slice")
#: A network mask whose outline has the lesion's own density beyond more than this share of it
#: (:func:`~recist_tool.segment.edge.outline_contrast`'s ``lesion_beyond``) stopped inside a
#: larger lesion, though its other sides face the lung (2026-12-05: one lobe of the sample
#: trial's 80 mm central primary, 0.57-0.83 from 7 of 10 clicks; the 11 LIDC validation nodules
#: of 18 mm or more whose network mask reaches 20 mm, 0.0-0.03).
LESION_BEYOND_SHARE = 0.5
#: Why a click on an organ's parenchyma is refused (see the module docstring).
NOT_DISTINCT = ("no lesion distinct from the tissue around it here: {why}; draw the lesion's "
                "caliper line to outline it")
#: Why a caliper line shorter than :data:`LARGE_LESION_MM` is passed to the large-lesion
#: segmenter when ``classic`` refuses it: a click there is refused, a reader's line is not.
LINE_ASSERTS = ("'classic' finds no lesion at this line ({why}); a reader's line asserts one: "
                "the '{to}' segmenter outlines it from the line's ends")
#: :data:`PART_OF_LARGER` applies to masks at least this long (mm): below it the network is
#: within what it learnt well (LIDC validation nodules of 10-20 mm: Dice 0.81), and a nodule
#: against the pleura or in dense lung can read under 30 HU (LIDC-IDRI-0476 nodule 1, 17 mm
#: from an off-centre click: 27 HU, which ``contour`` outlined worse).
PART_MIN_MM = 20.0
#: ``edge="auto"``: the network's learnt outline on series whose slices are at most this thick
#: (mm), the half-contrast edge on thicker ones. The learnt outline, and the threshold
#: calibrated with it, follow LIDC consensus outlines drawn on slices 0.45-2.5 mm thick (the
#: thickest of the shared crops); on thicker slices the network has seen no reader's outline,
#: and its generous rim takes in the wide partial-volume fringe of thick slices (the one real
#: 5 mm tumour, pyradiomics lung1: Dice 0.651 learnt, 0.880 half-contrast).
THIN_SLICE_MAX_MM = 2.5
#: The ``edge`` options: a rule (``auto``) or one of the outline conventions of
#: :data:`~recist_tool.segment.edge.EDGES`.
EDGE_CHOICES = ("auto", *EDGES)
#: Lesion probability threshold for weights that carry no calibrated one.
DEFAULT_THRESHOLD = 0.5
#: File name of the shipped weights inside ``models/``.
WEIGHTS_NAME = "unet_lesion.pt"
#: Where a wheel installs ``models/`` (``[tool.setuptools.data-files]``), under ``sys.prefix``.
INSTALLED_WEIGHTS_DIR = Path("share", "recist-tool", "models")


def _torch():
    import torch

    return torch


def build_network(channels: tuple[int, ...] = CHANNELS):
    """The 3D U-Net (2 input channels: CT, click; 1 output logit).

    Each block is two 3x3x3 convolutions, each followed by instance normalisation (affine) and a
    leaky ReLU. The instance norm is written as ``GroupNorm`` with one group per channel: the
    same function and the same parameters (``weight``, ``bias``), but torch has a kernel for it
    on channels-last tensors, which ``InstanceNorm3d`` lacks (it copies them to and from the
    standard layout). Run the network on channels-last tensors
    (``memory_format=torch.channels_last_3d``): on an AVX2 CPU a forward pass of two patches
    takes 0.057 s against 0.078 s in the standard layout.
    """
    torch = _torch()
    nn = torch.nn

    def norm(c: int) -> TorchModule:
        return nn.GroupNorm(c, c, eps=1e-5, affine=True)  # = InstanceNorm3d(c, affine=True)

    def block(cin: int, cout: int) -> TorchModule:
        return nn.Sequential(
            nn.Conv3d(cin, cout, 3, padding=1, bias=False), norm(cout),
            nn.LeakyReLU(0.01, inplace=True),
            nn.Conv3d(cout, cout, 3, padding=1, bias=False), norm(cout),
            nn.LeakyReLU(0.01, inplace=True),
        )

    return unet(3, 2, channels, block)


def default_weights_path() -> Path:
    """Where the shipped weights are read from.

    ``$RECIST_UNET_WEIGHTS`` when set; else ``models/unet_lesion.pt`` of the source tree (a clone
    or an editable install); else the copy a wheel installs under
    ``<prefix>/share/recist-tool/models/`` (the environment's prefix, or the user base for
    ``pip install --user``). When none exists, the source-tree path is returned (and
    :class:`UNetSegmenter` falls back to ``classic``).
    """
    import site

    env = os.environ.get("RECIST_UNET_WEIGHTS")
    if env:
        return Path(env)
    source_tree = Path(__file__).resolve().parents[3] / "models" / WEIGHTS_NAME
    installed = [Path(base) / INSTALLED_WEIGHTS_DIR / WEIGHTS_NAME
                 for base in (sys.prefix, site.getuserbase())]
    return next((p for p in [source_tree, *installed] if p.is_file()), source_tree)


def make_input(patch_hu: np.ndarray, click_work: np.ndarray, spacing=WORK_SPACING,
               sigma_mm: float = CLICK_SIGMA_MM) -> np.ndarray:
    """Stack the normalised CT patch and the click heat map: ``(2, z, y, x)`` float32."""
    heat = gaussian_click(patch_hu.shape, spacing, click_work, sigma_mm)
    return np.stack([normalise_hu(patch_hu), heat])


class UNetSegmenter:
    """The project's promptable 3D U-Net.

    Parameters
    ----------
    weights : str or Path, optional
        Weight file; default :func:`default_weights_path`.
    device : str, optional
        ``cpu`` (default unless CUDA is available) or ``cuda``.
    threads : int, optional
        CPU threads for torch (default: leave torch's setting).
    lung_only : bool
        Use the network only for lesions next to aerated lung (:data:`LUNG_RAYS_MIN`), the
        lesions it was trained and validated on (real LIDC nodules); other clicks (liver,
        lymph nodes, soft tissue), and clicks segmented with ``node=True`` even where they
        border the lung, are segmented by ``classic``, and lesions of :data:`LARGE_LESION_MM`
        or more by :func:`large_lesion_segmenter`; the mask carries that segmenter's name and version, with
        ``info["routed_by"]`` saying why. ``False``: the network answers every prompt.
    recentre : bool
        Predict a second time centred on the first mask's deepest point (see
        :data:`RECENTRE_MIN_MM`): the mask then depends less on where inside the lesion the
        reader clicked.
    threshold : float, optional
        Probability above which a voxel is lesion; default: the threshold calibrated by
        ``models/train.py`` and stored with the weights, else :data:`DEFAULT_THRESHOLD`.
    edge : {"auto", "learnt", "half-contrast"}
        Where the outline is drawn. ``learnt``: the network's, which follows the LIDC consensus
        (hazy rims and ground glass kept). ``half-contrast``: the network's mask cut back to
        the level half-way between the lesion's outer tissue and the lung around it
        (:func:`~recist_tool.segment.edge.half_contrast_edge`), for readers who outline there.
        ``auto`` (default): ``learnt`` on series with slices at most
        :data:`THIN_SLICE_MAX_MM` thick (:attr:`Volume.slice_thickness_mm`), ``half-contrast`` on
        thicker ones. The version ends in ``/half-contrast`` or ``/auto`` (not for
        ``learnt``), and ``info["edge"]`` says which outline a mask has.
    """

    name = "unet"

    def __init__(self, weights: str | Path | None = None, device: str | None = None,
                 threads: int | None = None, threshold: float | None = None,
                 recentre: bool = True, lung_only: bool = True, edge: str = "auto") -> None:
        if edge not in EDGE_CHOICES:
            raise ValueError(f"edge must be one of {', '.join(EDGE_CHOICES)}, got {edge!r}")
        self.edge = edge
        self.weights_path = Path(weights) if weights is not None else default_weights_path()
        self.threshold = DEFAULT_THRESHOLD if threshold is None else float(threshold)
        for flag, value in (("recentre", recentre), ("lung_only", lung_only)):
            if not isinstance(value, (bool, int)):  # e.g. 'no' from a command-line option
                raise ValueError(f"{flag} must be true or false, got {value!r}")
        self.recentre = bool(recentre)
        self.lung_only = bool(lung_only)
        self.patch_shape: tuple[int, ...] = PATCH_SHAPE
        self.work_spacing: tuple[float, ...] = WORK_SPACING
        self.click_sigma_mm = CLICK_SIGMA_MM
        from recist_tool.segment.classic import ClassicSegmenter

        # answers when the weights are missing, and for lesions outside the lung (lung_only)
        self._classic = ClassicSegmenter()
        # answers for large lesions (LARGE_LESION_MM)
        self._large_segmenter = large_lesion_segmenter()
        self._net = None
        self._fallback_msg: str | None = None
        self.version = "unloaded"
        if not self.weights_path.is_file():
            self._fallback_msg = (f"unet weights not found at {self.weights_path}; falling "
                                  f"back to the 'classic' segmenter")
            warnings.warn(self._fallback_msg, RuntimeWarning, stacklevel=2)
            self.version = f"fallback-classic-{self._classic.version}"
            return
        torch = _torch()
        if threads:
            torch.set_num_threads(int(threads))
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        net, meta = self._load_network(self.weights_path)
        net = net.to(self.device)
        self._net = net
        digest = hashlib.sha256(self.weights_path.read_bytes()).hexdigest()[:12]
        self.version = f"{meta.get('version', '1')}+{digest}"
        if edge != "learnt":  # the masks differ: the provenance says so
            self.version += f"/{edge}"
        self.meta: dict[str, Any] = meta
        try:  # the working grid and threshold the network was made for
            if threshold is None:
                self.threshold = float(meta.get("threshold", DEFAULT_THRESHOLD))
            self.patch_shape = tuple(int(v) for v in meta.get("patch_shape", PATCH_SHAPE))
            self.work_spacing = tuple(float(v) for v in meta.get("work_spacing_mm",
                                                                 WORK_SPACING))
            self.click_sigma_mm = float(meta.get("click_sigma_mm", CLICK_SIGMA_MM))
        except (TypeError, ValueError) as exc:
            raise SegmentationError(f"{self.weights_path}: bad metadata ({exc})") from exc
        if len(self.patch_shape) != 3 or len(self.work_spacing) != 3:
            raise SegmentationError(f"{self.weights_path}: metadata patch_shape and "
                                    "work_spacing_mm must have 3 values (z, y, x)")

    def _load_network(self, path: Path) -> tuple[Any, dict[str, Any]]:
        """The network (in inference mode) and its metadata from a weight file of
        ``models/train.py``."""
        torch = _torch()
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise SegmentationError(f"cannot read unet weights {path}: {exc}") from exc
        sd = state.get("state_dict", state)
        meta = state.get("meta", {}) if isinstance(state, dict) else {}
        net = build_network(tuple(meta.get("channels", CHANNELS)))
        try:
            net.load_state_dict({k: v.float() for k, v in sd.items()})
        except Exception as exc:
            raise SegmentationError(f"unet weights {path} do not fit the network: "
                                    f"{exc}") from exc
        return net.to(memory_format=torch.channels_last_3d).eval(), meta

    @property
    def is_fallback(self) -> bool:
        """True when weights were missing and ``classic`` does the work."""
        return self._fallback_msg is not None

    def predict_patch(self, x: np.ndarray) -> np.ndarray:
        """Lesion probability for one ``(2, z, y, x)`` input (flip-averaged in-plane)."""
        torch = _torch()
        # Tiny activations of the trained network are denormal floats, which x86 CPUs process
        # about 5x slower; flushing them to zero does not change the mask. The flag is processor
        # state of the whole process, so it is set for the inference only and cleared after.
        torch.set_flush_denormal(True)
        try:
            with torch.inference_mode():
                # the patch and its mirror image go through the network as one batch of two:
                # on a CPU, torch runs a batch of one through its slow reference convolution
                # (slow_conv3d) rather than oneDNN, about 3x slower per sample (AVX2 box)
                pair = np.ascontiguousarray(np.stack([x, x[..., ::-1]]), dtype=np.float32)
                t = torch.from_numpy(pair).to(self.device, memory_format=torch.channels_last_3d)
                both = self._net(t)  # type: ignore[misc]
                logits = 0.5 * (both[:1] + torch.flip(both[1:], dims=(4,)))
                return torch.sigmoid(logits)[0, 0].float().cpu().numpy()
        finally:
            torch.set_flush_denormal(False)

    def segment(self, volume: Volume, prompt: Prompt, *, node: bool = False) -> LesionMask:
        """Segment the lesion under the click (see module docstring)."""
        if self._fallback_msg is not None:
            m = self._classic.segment(volume, prompt, node=node)
            return LesionMask(m.mask, m.offset, m.volume_shape, self.name, self.version, prompt,
                              m.leak_bounded, m.warnings + (self._fallback_msg,), m.info)
        line = prompt.line_length_mm(volume)
        if self.lung_only and line is not None and line >= LARGE_LESION_MM:
            return self._routed(volume, prompt, node, self._large(line, "its caliper line"),
                                self._large_segmenter)
        if (self.lung_only and line is None and prompt.box_zyx is not None
                and box_extent_mm(volume, prompt.box_zyx)[0] >= LARGE_LESION_MM):
            side = box_extent_mm(volume, prompt.box_zyx)[0]
            return self._routed(volume, prompt, node, self._large(side, "its box"), self._large_segmenter)
        seed_idx = prompt.seed_index(volume)
        seed = prompt.seed_voxel(volume)
        check_seed(volume, seed)
        why = None
        if self.lung_only:
            if node:
                why = NODE
            elif (self._classic.lung_ray_fraction(volume, seed) or 0.0) < LUNG_RAYS_MIN:
                why = NOT_IN_LUNG
        if why is not None:
            try:
                first = self._routed(volume, prompt, node, why)
            except NoLesionError as exc:
                if prompt.line_zyx is None:
                    raise
                # a reader's line asserts a lesion where classic finds none (an isodense one,
                # or one in tissue of its density): outlined from the line's ends
                return self._routed(volume, prompt, node, LINE_ASSERTS.format(
                    why=exc, to=self._large_segmenter.name), self._large_segmenter)
            return self._large_or(first, volume, prompt, node, reached_edge=False)
        seed_lps = volume.index_to_lps(seed_idx)
        scales = [1.0, 2.0]
        line = prompt.line_length_mm(volume)
        if line is not None and line > 0.8 * min(np.asarray(self.patch_shape)
                                                 * self.work_spacing):
            scales = [2.0]
        for scale in scales:
            sp = tuple(s * scale for s in self.work_spacing)
            grid, prob, lesion = self._predict(volume, seed_lps, sp)
            touches = _touches_border(lesion)
            if not touches:
                break
        at_seed = np.asarray(seed)
        mask, offset = grid.to_native(volume, prob, self.threshold)
        mask = _native_component(mask, at_seed - np.asarray(offset))
        recentred = False
        if self.recentre and mask.any() and not touches:
            # the network was trained on clicks anywhere in the lesion's inner part; its answer
            # depends a little on where: predict once more, centred on the first mask's
            # deepest point, and keep that answer when it still holds the click
            centre = grid.work_to_lps(_deepest_point(lesion, sp)[None])[0]
            if np.linalg.norm(centre - seed_lps) > RECENTRE_MIN_MM:
                grid2, prob2, lesion2 = self._predict(volume, centre, sp)
                if lesion2.any() and not _touches_border(lesion2):
                    mask2, offset2 = grid2.to_native(volume, prob2, self.threshold)
                    mask2 = _native_component(mask2, at_seed - np.asarray(offset2))
                    if mask2.any():
                        mask, offset, recentred = mask2, offset2, True
        mirrored = False
        if not _holds(mask, offset, seed) and _leaves_stack(grid, volume):
            # beyond the scan the box repeats the end slice, and the LIDC crops the network
            # learnt from end about where their nodule does: it learnt to stop a nodule short
            # of a repeated slice, and misses a lesion cut by the end of the scan. Predict once
            # more with the stack mirrored at its ends, and keep that when it holds the click
            grid3, prob3, lesion3 = self._predict(volume, seed_lps, sp, mirror_ends=True)
            if lesion3.any():
                mask3, offset3 = grid3.to_native(volume, prob3, self.threshold)
                mask3 = _native_component(mask3, at_seed - np.asarray(offset3))
                if _holds(mask3, offset3, seed):
                    mask, offset, mirrored = mask3, offset3, True
                    touches = touches or _touches_border(lesion3)
        if not mask.any() and _leaves_stack(grid, volume):
            return self._routed(volume, prompt, node, SCAN_END)
        if not mask.any():
            raise NoLesionError(
                f"no lesion at this point: the network finds no lesion at (z, y, x) = {seed}",
                reason="no_boundary")
        edge = self.edge_for(volume)
        edge_info: dict[str, Any] = {"rule": "learnt"}
        if edge == "half-contrast":
            mask, offset, edge_info = half_contrast_edge(volume, mask, offset, seed)
        if self.edge == "auto":
            edge_info["chosen_by"] = (f"auto: slices {volume.slice_thickness_mm:g} mm thick, "
                                      f"{'>' if edge == 'half-contrast' else '<='} "
                                      f"{THIN_SLICE_MAX_MM:g} mm")
        if prompt.box_zyx is not None:
            mask = clip_to_box(mask, offset, prompt.box_zyx)
        warn = ("the mask reaches the edge of the network's field of view; the lesion may be "
                "larger or the mask may have leaked",) if touches else ()
        out = LesionMask(mask, offset, volume.shape, self.name, self.version, prompt,
                         leak_bounded=bool(touches), warnings=warn,
                         info={"scale": scale,
                               "work_spacing_mm": [s * scale for s in self.work_spacing],
                               "device": self.device, "recentred": recentred,
                               "mirrored_ends": mirrored, "edge": edge_info}).tight()
        return self._large_or(out, volume, prompt, node, reached_edge=bool(touches))

    def _large(self, size: float, how: str) -> str:
        return LARGE.format(size=size, how=how, limit=LARGE_LESION_MM,
                            to=self._large_segmenter.name)

    def _large_or(self, first: LesionMask, volume: Volume, prompt: Prompt, node: bool,
                  reached_edge: bool) -> LesionMask:
        """``first``, or (with ``lung_only``) the large-lesion segmenter's mask when ``first`` is
        a large lesion (its in-plane extent at least :data:`LARGE_LESION_MM`) or, from the
        network, ``reached_edge`` of its widest field of view or has an outline that is no
        edge (:data:`PART_OF_LARGER`) or has the lesion's density beyond most of it
        (:data:`LESION_BEYOND`), and that segmenter finds the lesion (see the module
        docstring for a click on parenchyma).
        ``classic``'s leaks are not a reason: a click on normal tissue leaks, and is no large
        lesion."""
        if not self.lung_only:
            return first
        size = in_plane_extent_mm(first, volume)
        large = size >= LARGE_LESION_MM or reached_edge
        outline = (outline_contrast(volume, first.mask, first.offset) if not large
                   and first.segmenter == self.name and size >= PART_MIN_MM else None)
        part = not large  # the first mask is a part of the lesion: its long axis is not the lesion's
        if large:
            why = self._large(size, f"the first mask, {first.segmenter}'s" + (
                ", reached the edge of the network's field of view" if reached_edge else ""))
        elif outline is not None and _inside_larger(outline):
            why = PART_OF_LARGER.format(size=size, contrast=outline["contrast_hu"],
                                        limit=MIN_CONTRAST_HU, to=self._large_segmenter.name)
        elif outline is not None and _lesion_beyond(outline):
            why = LESION_BEYOND.format(share=outline["lesion_beyond"], size=size,
                                       to=self._large_segmenter.name)
        else:
            return first
        # classic grew to the edge of its volume of interest through tissue of one density
        ran_on = first.leak_bounded and first.segmenter == self._classic.name
        try:
            out = self._routed(volume, prompt, node, why, self._large_segmenter)
        except NoLesionError as exc:
            if ran_on:  # and the large-lesion segmenter finds no lesion there either
                raise NoLesionError(NOT_DISTINCT.format(
                    why=f"the tissue at the click runs on for {size:.0f} mm or more ({exc})"),
                    reason="no_boundary") from exc
            return first
        if prompt.line_zyx is not None:  # a reader's line is kept, never swapped for another
            return out
        if not part:
            out = self._clearer_outline(out, first, volume, prompt, node)
        if ran_on and prompt.box_zyx is None:
            beyond = tissue_beyond(volume, first, out)
            if beyond["same_tissue"]:  # the outline closes a piece of the organ
                raise NoLesionError(NOT_DISTINCT.format(
                    why=f"the tissue at the click ({beyond['inside_hu']:.0f} HU) runs on beyond "
                        f"the outline found ({100 * beyond['share_beyond']:.0f} % of it, "
                        f"{beyond['beyond_hu']:.0f} HU)"), reason="no_boundary")
            out.info["tissue_beyond"] = beyond
        return out

    def _clearer_outline(self, from_click: LesionMask, first: LesionMask, volume: Volume,
                         prompt: Prompt, node: bool) -> LesionMask:
        """Of the large-lesion segmenter's outline from the click and its outline from the
        first mask's long axis (a caliper line the segmenter draws itself), the one that
        separates the lesion more clearly from its surroundings (``info["contrast_hu"]``, the
        contrast across the outline on its measured slice), as long as it holds the click.

        A click off a heterogeneous lesion's centre can be outlined along an inner change of
        density (a necrotic core, a vessel); the first mask's long axis spans the lesion as
        ``classic`` or the network found it, and the line's two ends anchor the outline at its
        edge. Which of the two was kept is in ``info["outlined_from"]``.
        """
        from recist_tool.measure import measure_mask

        if first.is_empty or "contrast_hu" not in (from_click.info or {}):
            return from_click
        try:
            ends = measure_mask(volume, first.mask, offset=first.offset,
                                node=node).long_axis_endpoints_voxel
            line = self._large_segmenter.segment(
                volume, Prompt(line_zyx=cast("tuple[tuple[float, float, float], tuple[float, float, float]]",
                                             (tuple(map(float, ends[0])), tuple(map(float, ends[1]))))),
                node=node)
        except (NoLesionError, SegmentationError, ValueError):
            return from_click
        seed = np.asarray(prompt.seed_voxel(volume)) - np.asarray(line.offset)
        holds = bool(np.all(seed >= 0) and np.all(seed < line.mask.shape)
                     and line.mask[tuple(seed)])
        a, b = from_click.info["contrast_hu"], line.info.get("contrast_hu", -np.inf)
        kept = from_click if (not holds or a >= b) else line
        info = {**kept.info, "routed_by": from_click.info["routed_by"],
                "outlined_from": ("the click" if kept is from_click
                                  else f"the first mask's long axis ({first.segmenter}'s)"),
                "outline_contrast_hu": {"click": round(float(a), 1),
                                        "first mask's long axis": round(float(b), 1)}}
        return LesionMask(kept.mask, kept.offset, kept.volume_shape, kept.segmenter,
                          kept.version, prompt, kept.leak_bounded, kept.warnings, info)

    def edge_for(self, volume: Volume) -> str:
        """The outline convention (one of :data:`~recist_tool.segment.edge.EDGES`) this
        segmenter draws on ``volume``: its ``edge``, or for ``auto`` the one the thickness of
        the volume's slices calls for (:data:`THIN_SLICE_MAX_MM`)."""
        if self.edge != "auto":
            return self.edge
        thin = volume.slice_thickness_mm <= THIN_SLICE_MAX_MM + 1e-3
        return "learnt" if thin else "half-contrast"

    def _routed(self, volume: Volume, prompt: Prompt, node: bool, why: str,
                segmenter: Any = None) -> LesionMask:
        """``classic``'s (or ``segmenter``'s) answer to the prompt, with ``info["routed_by"]``
        saying why."""
        m = (segmenter or self._classic).segment(volume, prompt, node=node)
        return LesionMask(m.mask, m.offset, m.volume_shape, m.segmenter, m.version, prompt,
                          m.leak_bounded, m.warnings,
                          {**m.info, "routed_by": f"unet {self.version}: {why}"})

    def _predict(self, volume: Volume, centre_lps: np.ndarray, spacing: tuple[float, ...],
                 mirror_ends: bool = False) -> tuple[WorkGrid, np.ndarray, np.ndarray]:
        """Box centred on a click: its grid, the probabilities of the lesion component under
        the click (zero elsewhere) and that component. ``mirror_ends``: see
        :meth:`WorkGrid.sample`."""
        grid = WorkGrid.centred(volume, centre_lps, spacing, self.patch_shape)
        click = grid.lps_to_work(centre_lps)
        image = grid.sample(volume, mode="nearest", mirror_ends=mirror_ends)
        prob = self.predict_patch(make_input(image, click, spacing, self.click_sigma_mm))
        lesion = _component_at(prob > self.threshold, np.rint(click).astype(int))
        return grid, prob * lesion, lesion


def large_lesion_segmenter() -> Any:
    """The segmenter the default hands lesions of :data:`LARGE_LESION_MM` or more to:
    ``slicenet`` (trained on large lesions) when its weights are installed, else the
    weight-free ``contour``."""
    from recist_tool.segment.slicenet import SliceNetSegmenter
    from recist_tool.segment.slicenet import default_weights_path as slicenet_weights

    if slicenet_weights().is_file():
        return SliceNetSegmenter()
    from recist_tool.segment.contour import ContourSegmenter

    return ContourSegmenter()


def _inside_larger(outline: dict[str, float]) -> bool:
    """An outline (:func:`~recist_tool.segment.edge.outline_contrast`) that is no edge, with
    tissue, not aerated lung, around it: a mask that stopped inside a larger lesion (a mask
    drawn wide into the lung reads no contrast either, with lung around it)."""
    return bool(outline["contrast_hu"] < MIN_CONTRAST_HU and outline["outside_hu"] >= AIR_MAX_HU)


def _lesion_beyond(outline: dict[str, float]) -> bool:
    """An outline (:func:`~recist_tool.segment.edge.outline_contrast`) with the lesion's density,
    tissue and not aerated lung, beyond more than :data:`LESION_BEYOND_SHARE` of it: a lobe of a
    larger lesion whose other sides face the lung (a mask drawn wide into the lung has the
    lung's density inside and beyond it)."""
    return bool(outline["lesion_beyond"] > LESION_BEYOND_SHARE
                and outline["outside_hu"] >= AIR_MAX_HU)


def in_plane_extent_mm(lesion: LesionMask, volume: Volume) -> float:
    """The largest in-plane extent (mm) of a mask's bounding box, along rows or columns: a
    quick size for routing (at most the long axis; about it for round lesions)."""
    if lesion.is_empty:
        return 0.0
    t = lesion.tight()
    return float(max((t.mask.shape[1]) * volume.spacing[1], (t.mask.shape[2]) * volume.spacing[2]))


def _deepest_point(mask: np.ndarray, spacing) -> np.ndarray:
    """Index of the voxel of ``mask`` farthest (mm) from its outside."""
    from scipy import ndimage

    edt = ndimage.distance_transform_edt(np.pad(mask, 1), sampling=spacing)[1:-1, 1:-1, 1:-1]
    return np.array(np.unravel_index(int(np.argmax(edt)), edt.shape), dtype=float)


def _component_at(mask: np.ndarray, at: np.ndarray) -> np.ndarray:
    """The connected component of ``mask`` containing ``at`` (or the nearest one)."""
    from scipy import ndimage

    if not mask.any():
        return mask
    lab, n = ndimage.label(mask)
    at = np.clip(at, 0, np.asarray(mask.shape) - 1)
    k = lab[tuple(at)]
    if k == 0:
        # nearest component within 3 voxels of the click, else nothing
        _, (iz, iy, ix) = ndimage.distance_transform_edt(lab == 0, return_indices=True)
        near = (iz[tuple(at)], iy[tuple(at)], ix[tuple(at)])
        if np.linalg.norm(np.asarray(near) - at) > 3:
            return np.zeros_like(mask)
        k = lab[near]
    return lab == k


def _native_component(mask: np.ndarray, at: np.ndarray) -> np.ndarray:
    if not mask.any():
        return mask
    from scipy import ndimage

    filled = ndimage.binary_fill_holes(mask)
    return _component_at(filled, at)


def _holds(mask: np.ndarray, offset, voxel) -> bool:
    """Whether the native mask (placed at ``offset``) contains ``voxel``."""
    i = np.asarray(voxel) - np.asarray(offset)
    return bool(np.all(i >= 0) and np.all(i < mask.shape) and mask[tuple(i)])


def _leaves_stack(grid: WorkGrid, volume: Volume) -> bool:
    """Whether the box reaches beyond the first or last slice of the volume."""
    z = volume.lps_to_index(grid.corners_lps())[:, 0]
    return bool(z.min() < -0.5 or z.max() > volume.shape[0] - 0.5)


def _touches_border(mask: np.ndarray) -> bool:
    return bool(mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any()
                or mask[:, :, 0].any() or mask[:, :, -1].any())

