"""Deterministic generator of a synthetic CT trial as DICOM (``recist sample-data``).

Public API: :func:`generate_trial` writes the trial (series, ``ground_truth.json``,
``manifest.csv``); :func:`write_benchmark_series` writes one large series for the loader benchmark.
See ``README.md`` in this folder for the trial design.
"""

from recist_tool.sample_data.generate import (
    GENERATOR_VERSION,
    MANIFEST_COLUMNS,
    generate_trial,
    trial_ground_truth,
    write_benchmark_series,
)

__all__ = ["generate_trial", "trial_ground_truth", "write_benchmark_series", "MANIFEST_COLUMNS",
           "GENERATOR_VERSION"]
