"""Tracking five lesions into a full-size follow-up on one core, against SimpleITK's own rigid
registration of the same pair.

Input: the 3D-IRCADb 1.17 abdominal CT (512 × 512 × 119, 0.74 × 0.74 × 1.6 mm; evaluation only,
from ``$RECIST_TEST_DATA`` or ``../shared/data``) and a follow-up made from it by
:func:`recist_tool.track_eval.make_followup` (the ``stable`` draw of ``recist evaluate-tracking``:
a rigid turn and shift, a breathing shift, fresh noise). Five lesions: its two liver tumours
(66 and 78 mm, read at baseline by the default segmenter from each reference's long axis, as
``evaluate-tracking`` reads them), listed as T01-T05 (tumour 1, 2, 1, 2, 1): each is tracked on
its own (its lesion-level registration, its segmentations, its checks), and tumours of this size
are the costly kind.

Timed, in one process, one thread (SimpleITK and torch), ``--repeat`` times (median):

* ``recist-tool track_lesions``: whole-scan registration, then per lesion the lesion-level
  registration, the follow-up's click and line segmentations, the checks and the measurement (the
  baseline outlines are given; re-outlining the baseline from a click is included).
* peer ``SimpleITK rigid``: the registration SimpleITK's documentation shows for a rigid CT pair,
  alone: ``CenteredTransformInitializer`` (geometry), Euler 3D, Mattes mutual information (50
  bins, 1 % random samples), gradient descent (learning rate 1, 100 iterations, scales from
  physical shift), shrink factors 4, 2, 1 with smoothing 2, 1, 0 voxels, on the full-resolution
  images.

Both report the registration error at each tumour's reference centroid (mm, against the known
motion). Run: ``python benchmarks/bench_track.py [--repeat 3]``; prints a table.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np


def _data() -> Path:
    root = Path(os.environ.get("RECIST_TEST_DATA",
                               Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    path = root / "lesions" / "ircadb_liver" / "3Dircadb1.17"
    if not path.is_dir():
        raise SystemExit(f"3D-IRCADb 1.17 not found at {path} (set RECIST_TEST_DATA)")
    return path


def _peer(fixed, moving):  # noqa: ANN001, ANN202 - SimpleITK images
    import SimpleITK as sitk

    init = sitk.CenteredTransformInitializer(fixed, moving, sitk.Euler3DTransform(),
                                             sitk.CenteredTransformInitializerFilter.GEOMETRY)
    r = sitk.ImageRegistrationMethod()
    r.SetMetricAsMattesMutualInformation(numberOfHistogramBins=50)
    r.SetMetricSamplingStrategy(r.RANDOM)
    r.SetMetricSamplingPercentage(0.01, 1)
    r.SetInterpolator(sitk.sitkLinear)
    r.SetOptimizerAsGradientDescent(learningRate=1.0, numberOfIterations=100,
                                    convergenceMinimumValue=1e-6, convergenceWindowSize=10)
    r.SetOptimizerScalesFromPhysicalShift()
    r.SetShrinkFactorsPerLevel(shrinkFactors=[4, 2, 1])
    r.SetSmoothingSigmasPerLevel(smoothingSigmas=[2, 1, 0])
    r.SmoothingSigmasAreSpecifiedInPhysicalUnitsOff()
    r.SetInitialTransform(init, inPlace=False)
    return r.Execute(fixed, moving)


def main() -> None:
    """Run both, print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    import SimpleITK as sitk

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    import torch

    torch.set_num_threads(1)
    from recist_tool.segment import Prompt, default_segmenter_name, get_segmenter
    from recist_tool.segment.evaluate import discover_dataset, reference_line
    from recist_tool.track import BaselineLesion, kept_segmenter_spec, to_sitk, track_lesions
    from recist_tool.track_eval import FOLLOWUPS, _seed, draw_motion, make_followup

    ds = discover_dataset(_data(), split="all")
    vol, _ = ds.cases[0].load()
    masks = [c.load()[1] for c in ds.cases]
    case = ds.cases[0].group or ds.cases[0].name
    rng = np.random.default_rng(_seed(0, ds.name, case, "stable"))
    fu, _, push = make_followup(vol, masks, draw_motion(vol, FOLLOWUPS["stable"], rng), rng)
    spec = default_segmenter_name()
    seg = get_segmenter(spec)
    tumours = []
    for m in masks:
        line = reference_line(vol, m, None)
        bm = seg.segment(vol, Prompt(line_zyx=line))
        ends = vol.index_to_lps(np.asarray(line, float))
        tumours.append((bm, ends, vol.index_to_lps(np.argwhere(m).mean(axis=0))))
    lesions = []
    for k, i in enumerate((0, 1, 0, 1, 0)):
        bm, ends, _ = tumours[i]
        lesions.append(BaselineLesion(f"T0{k + 1}", mask=bm.mask, mask_offset=bm.offset,
                                      segmenter=kept_segmenter_spec(bm, spec),
                                      line_lps=(tuple(map(float, ends[0])),
                                                tuple(map(float, ends[1])))))

    ours, peer = [], []
    res = tx = None
    for _ in range(args.repeat):
        c0 = time.process_time()
        res = track_lesions(vol, fu, lesions, segmenter=spec)
        ours.append(time.process_time() - c0)
        fixed, moving = (sitk.Cast(to_sitk(v), sitk.sitkFloat32) for v in (vol, fu))
        c0 = time.process_time()
        tx = _peer(fixed, moving)
        peer.append(time.process_time() - c0)
    assert res is not None and tx is not None
    err_ours = [float(np.linalg.norm(np.asarray(res.get(f"T0{i + 1}").map_point(c)) - push(c)[0]))
                for i, (_, _, c) in enumerate(tumours)]
    err_peer = [float(np.linalg.norm(np.asarray(tx.TransformPoint(tuple(map(float, c))))
                                     - push(c)[0])) for _, _, c in tumours]
    t_ours, t_peer = statistics.median(ours), statistics.median(peer)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}; "
          f"SimpleITK {sitk.Version.VersionString()}; one thread; CPU seconds, median of "
          f"{args.repeat}")
    print("| method | CPU s | × peer | registration error at tumour 1 / 2, mm | statuses |")
    print("| --- | --- | --- | --- | --- |")
    print(f"| recist-tool track_lesions, 5 lesions | {t_ours:.1f} | {t_ours / t_peer:.2f} | "
          f"{err_ours[0]:.2f} / {err_ours[1]:.2f} | "
          f"{', '.join(t.status for t in res.lesions)} |")
    print(f"| SimpleITK rigid registration (peer) | {t_peer:.1f} | 1.00 | "
          f"{err_peer[0]:.2f} / {err_peer[1]:.2f} | – |")


if __name__ == "__main__":
    main()
