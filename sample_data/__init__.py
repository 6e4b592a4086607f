"""Deterministic generator of a synthetic CT trial as DICOM (``recist sample-data``)."""
