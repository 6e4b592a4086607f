"""Evaluation of segmenters on datasets of lesions with reference masks (ULS23-style metrics)."""

from __future__ import annotations

import hashlib
import re


def lidc_patient(name: str) -> str:
    """Patient ID of an LIDC crop file or key, e.g. ``LIDC-IDRI-0003`` for ``LIDC-IDRI-0003_R_2``."""
    m = re.match(r"(LIDC-IDRI-\d+)", name)
    return m.group(1) if m else name.split("_")[0]


def lidc_split(name: str) -> str:
    """Deterministic patient-level split of the LIDC crops: ``train`` or ``validation``.

    Rule: a patient is in ``validation`` when the first 8 hex digits of SHA-256 of its ID
    (``LIDC-IDRI-NNNN``) read as an integer are divisible by 5 (about 20 % of patients);
    all crops of one patient fall on the same side.
    """
    pid = lidc_patient(name)
    h = int(hashlib.sha256(pid.encode()).hexdigest()[:8], 16)
    return "validation" if h % 5 == 0 else "train"
