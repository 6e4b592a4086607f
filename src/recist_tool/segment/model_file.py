"""``model-file``: a promptable network from a file (torch.export or TorchScript), run by the
``unet`` pipeline.

A core lab's own model plugs in as a file, without code:
``recist segment … --segmenter model-file:path=net.pt2`` (or
``get_segmenter("model-file", path="net.pt2")``). Everything around the network is ``unet``'s
(:class:`~recist_tool.segment.unet.UNetSegmenter`): seed checks, the box around the click sampled
through the volume's exact geometry, the retry at twice the spacing, recentring, the mapping back
to the native grid, and ``lung_only`` routing to ``classic`` (off by default here: say where a
model of your own is validated).

The file is a ``torch.export`` program (``torch.export.save``; name ending ``.pt2``) or, any
other name, a TorchScript archive (``torch.jit.save``). The network's contract:

* **input** ``float32 (2, 2, z, y, x)`` on the working grid: channel 0 the CT, HU clipped to
  [−1000, 500] and mapped by (HU + 250) / 500; channel 1 a Gaussian heat map of the click
  (peak 1, σ ``click_sigma_mm``). The two samples are the patch and its left–right mirror
  image; the pipeline averages the two answers;
* **output** ``(2, 1, z, y, x)`` lesion logits (a sigmoid gives the probability);
* **metadata** (optional): a ``recist.json`` extra file of the archive (``extra_files=`` /
  ``_extra_files=`` of the save function) with ``patch_shape`` ``[z, y, x]``,
  ``work_spacing_mm`` ``[dz, dy, dx]``, ``click_sigma_mm``, ``threshold`` and ``version``;
  missing keys take ``unet``'s values (32×48×48 at 1.5×1.0×1.0 mm, σ 3 mm) and threshold 0.5.

:func:`export_network` writes the shipped network in this form (to serve it elsewhere, or as the
template of a model of one's own).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

from recist_tool.errors import SegmentationError
from recist_tool.segment.unet import UNetSegmenter, _torch

#: Name of the metadata file inside a model archive.
META_NAME = "recist.json"


class ModelFileSegmenter(UNetSegmenter):
    """A network file with the ``unet`` input/output contract (module docstring).

    Parameters
    ----------
    path : str or Path
        A ``torch.export`` program (``.pt2``) or a TorchScript archive.
    device : str, optional
        ``cpu`` (default unless CUDA is available) or ``cuda``.
    threads : int, optional
        CPU threads for torch.
    threshold : float, optional
        Probability threshold; default the file's ``threshold``, else 0.5.
    recentre : bool
        As for ``unet``.
    lung_only : bool
        Hand clicks outside aerated lung, and nodes, to ``classic`` (as ``unet`` does); default
        False: the network answers every click.
    edge : {"learnt", "half-contrast", "auto"}
        Where a lung lesion's outline is drawn, as for ``unet``; default ``learnt``, the
        file's own outline (``unet``'s ``auto`` rule is set for the shipped network's training
        references).
    """

    name = "model-file"

    def __init__(self, path: str | Path | None = None, device: str | None = None,
                 threads: int | None = None, threshold: float | None = None,
                 recentre: bool = True, lung_only: bool = False, edge: str = "learnt") -> None:
        if path is None:
            raise SegmentationError("the model-file segmenter needs a file: "
                                    "--segmenter model-file:path=NET.pt2")
        if not Path(path).is_file():
            raise SegmentationError(f"model file not found: {path}")
        super().__init__(weights=path, device=device, threads=threads, threshold=threshold,
                         recentre=recentre, lung_only=lung_only, edge=edge)

    def _load_network(self, path: Path) -> tuple[Any, dict[str, Any]]:
        torch = _torch()
        extra = {META_NAME: ""}
        exported = path.suffix == ".pt2"
        try:
            if exported:
                net = torch.export.load(str(path), extra_files=extra).module()
            else:
                with warnings.catch_warnings():  # the user chose the format; torch deprecates it
                    warnings.simplefilter("ignore", DeprecationWarning)
                    net = torch.jit.load(str(path), map_location="cpu",
                                         _extra_files=extra).eval()
        except Exception as exc:  # not such an archive
            why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            kind = "torch.export program" if exported else "TorchScript model"
            raise SegmentationError(f"cannot read {kind} {path}: {why}") from exc
        try:
            meta = json.loads(extra[META_NAME]) if extra[META_NAME] else {}
        except ValueError as exc:
            raise SegmentationError(f"{path}: {META_NAME} is not JSON ({exc})") from exc
        if not isinstance(meta, dict):
            raise SegmentationError(f"{path}: {META_NAME} must hold a JSON object")
        return net, meta


def export_network(out: str | Path, weights: str | Path | None = None) -> Path:
    """Write the ``unet`` network (default: the shipped weights) as a ``torch.export`` program.

    Parameters
    ----------
    out : str or Path
        The file to write (``.pt2``).
    weights : str or Path, optional
        A weight file of ``models/train.py``; default the one ``unet`` uses.

    Returns
    -------
    Path
        ``out``, with which ``ModelFileSegmenter(path=out)`` segments as ``unet`` does (the same
        probabilities to float rounding); its ``recist.json`` carries the threshold, the working
        grid and the version of the weights.
    """
    torch = _torch()
    out = Path(out)
    if out.suffix != ".pt2":
        raise SegmentationError(f"{out}: a torch.export program is written to a .pt2 file")
    seg = UNetSegmenter(weights=weights, device="cpu")
    if seg.is_fallback:
        raise SegmentationError(f"no unet weights to export at {seg.weights_path}")
    with torch.no_grad():
        program = torch.export.export(seg._net, (torch.zeros((2, 2, *seg.patch_shape)),))
    meta = {"version": f"unet-{seg.version}", "threshold": seg.threshold,
            "patch_shape": list(seg.patch_shape), "work_spacing_mm": list(seg.work_spacing),
            "click_sigma_mm": seg.click_sigma_mm}
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.export.save(program, str(out), extra_files={META_NAME: json.dumps(meta)})
    return out
