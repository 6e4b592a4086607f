"""The stored record of one measurement, built in one place for reading, tracking and batch.

:func:`measurement_values` gives the keyword arguments of
:meth:`recist_tool.store.TrialStore.record_measurement`: diameters rounded by
:func:`recist_tool.recist.model.to_stored_mm` (0.1 mm, half to even), the volume to 0.001 mL, and
the end points (:func:`axis_endpoints`) in LPS millimetres to 0.001 mm.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from recist_tool.recist.model import to_stored_mm

__all__ = ["axis_endpoints", "measurement_values", "stored_ml", "stored_points"]

#: Decimal places of stored end points and centroids (mm) and of stored volumes (mL).
POINT_DECIMALS = 3


def stored_points(points: Any) -> list[list[float]] | None:
    """End points as stored: a list of ``[x, y, z]`` LPS mm lists rounded to 0.001 mm."""
    return None if points is None else [[round(float(c), POINT_DECIMALS) for c in p]
                                        for p in points]


def stored_ml(value: Decimal | float | None) -> Decimal | None:
    """A volume as stored: mL to 0.001 (``round`` of the float, then its ``repr``)."""
    return None if value is None else Decimal(repr(round(float(value), POINT_DECIMALS)))


def axis_endpoints(measurement: Any, *, centroid_lps: Any = None,
                   segmenter_spec: str | None = None,
                   tracking: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``endpoints_lps`` record of a measurement.

    Parameters
    ----------
    measurement : AxisMeasurement
        Anything with ``long_axis_endpoints_lps``, ``short_axis_endpoints_lps`` and
        ``slice_index``.
    centroid_lps : sequence of float, optional
        The mask's centroid (LPS mm), kept for tracking at later visits.
    segmenter_spec : str, optional
        The segmenter spec a batch ran with (a resumed run tracks with it).
    tracking : dict, optional
        How tracking found the lesion (status, confidence, ...); left out when empty.

    Returns
    -------
    dict
        ``long``, ``short``, ``slice_index``, and ``centroid_lps``, ``segmenter_spec``,
        ``tracking`` where given.
    """
    ends: dict[str, Any] = {"long": stored_points(measurement.long_axis_endpoints_lps),
                            "short": stored_points(measurement.short_axis_endpoints_lps),
                            "slice_index": int(measurement.slice_index)}
    if centroid_lps is not None:
        ends["centroid_lps"] = [round(float(c), POINT_DECIMALS) for c in centroid_lps]
    if segmenter_spec is not None:
        ends["segmenter_spec"] = segmenter_spec
    if tracking:
        ends["tracking"] = dict(tracking)
    return ends


def measurement_values(long_axis_mm: Decimal | float | None, short_axis_mm: Decimal | float | None,
                       volume_ml: Decimal | float | None, endpoints_lps: dict[str, Any] | None, *,
                       segmenter: str | None = None, segmenter_version: str | None = None,
                       method: str = "automatic", mask_path: str | None = None,
                       mask_sha256: str | None = None) -> dict[str, Any]:
    """Keyword arguments of :meth:`~recist_tool.store.TrialStore.record_measurement` for one
    measurement: axes by :func:`~recist_tool.recist.model.to_stored_mm`, the volume by
    :func:`stored_ml`, the rest as given.

    Parameters
    ----------
    long_axis_mm, short_axis_mm : Decimal or float or None
        The axes as measured.
    volume_ml : Decimal or float or None
        The mask's volume.
    endpoints_lps : dict or None
        The :func:`axis_endpoints` record.
    segmenter, segmenter_version, method, mask_path, mask_sha256 : str, optional
        Provenance; ``method`` is ``automatic`` or ``manual``.

    Returns
    -------
    dict

    Examples
    --------
    >>> v = measurement_values(10.25, 6.35, 1.23456, None)
    >>> v["long_axis_mm"], v["short_axis_mm"], v["volume_ml"]
    (Decimal('10.2'), Decimal('6.4'), Decimal('1.235'))
    """
    return {"long_axis_mm": to_stored_mm(long_axis_mm),
            "short_axis_mm": to_stored_mm(short_axis_mm),
            "endpoints_lps": endpoints_lps, "volume_ml": stored_ml(volume_ml),
            "segmenter": segmenter, "segmenter_version": segmenter_version, "method": method,
            "mask_path": mask_path, "mask_sha256": mask_sha256}
