"""Measurement: lesion mask or caliper line -> long axis, short axis, volume."""
