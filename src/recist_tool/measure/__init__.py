"""Measurement: lesion mask or caliper line -> long axis, short axis, volume.

Public API
----------
:func:`measure_mask`
    RECIST long axis, short axis (inside the lesion), volume (mL, real slice gaps) and maximal 3D
    diameter of a lesion mask on a :class:`~recist_tool.volume.Volume` grid or a crop of it.
:func:`measure_line`
    The same structure from user-drawn caliper lines (manual measurement).
:class:`AxisMeasurement`, :class:`ComponentAxes`
    The results (frozen dataclasses).

The boundary convention (edge to edge, as a caliper laid on the image) and the measured accuracy
are described in ``docs/measurement.md``.
"""

from recist_tool.measure.line import measure_line
from recist_tool.measure.mask import measure_mask
from recist_tool.measure.result import AxisMeasurement, ComponentAxes

__all__ = ["AxisMeasurement", "ComponentAxes", "measure_line", "measure_mask"]
