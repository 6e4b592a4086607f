"""Writing export files so that a failure never leaves a partial file behind.

The helpers live in :mod:`recist_tool.io.outputs` (the batch and the SDTM CSV writer below
``export`` use them too); this module names them for the exporters.
"""

from __future__ import annotations

from recist_tool.io.outputs import OutputSet, atomic_file, atomic_outputs, safe_output_path

__all__ = ["OutputSet", "atomic_file", "atomic_outputs", "safe_output_path"]
