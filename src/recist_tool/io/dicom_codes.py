"""Coded concepts shared by the DICOM SR / SEG writers and the SR reader.

Organ names as the store keeps them (free text such as ``liver`` or ``lymph node``) map to
SNOMED CT anatomic codes (DICOM CID 4 / 7151 values, taken from pydicom's code dictionary);
lesion categories map to the DICOM codes of CID 6145 where one exists. Names without a code map
to "Unknown" as finding site and keep the free text nowhere else: reading an SR back gives the
code meaning, lower case.
"""

from __future__ import annotations

from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

__all__ = ["FINDING", "LONG_AXIS", "ORGAN_CODES", "SHORT_AXIS", "TRACKING_PREFIXES", "UNIT_ML",
           "UNIT_MM", "VOLUME", "category_code", "category_from_code", "organ_code",
           "organ_from_code"]

#: NUM concept names. The code meanings are exactly "Long Axis" / "Short Axis": OHIF's
#: cornerstone adapters find a bidirectional's two NUM items by these meanings (DICOM CID 7470
#: spells them so; pydicom's dictionary has them in lower case, hence explicit codes here).
LONG_AXIS = Code("103339001", "SCT", "Long Axis")
SHORT_AXIS = Code("103340004", "SCT", "Short Axis")
VOLUME = codes.SCT.Volume
UNIT_MM = codes.UCUM.Millimeter
UNIT_ML = Code("ml", "UCUM", "milliliter")
#: TID 1501 finding concept value for every lesion.
FINDING = codes.SCT.Lesion

#: Tracking identifier prefixes a cornerstone / OHIF viewer maps to its Bidirectional tool
#: (current adapters first, then the legacy cornerstoneTools 4 form it still accepts).
TRACKING_PREFIXES = ("Cornerstone3DTools@^0.1.0:Bidirectional", "cornerstoneTools@^4.0.0:Bidirectional")

ORGAN_CODES: dict[str, Code] = {
    "liver": codes.SCT.Liver,
    "lung": codes.SCT.Lung,
    "lymph node": codes.SCT.LymphNode,
    "adrenal gland": codes.SCT.AdrenalGland,
    "adrenal": codes.SCT.AdrenalGland,
    "brain": codes.SCT.Brain,
    "bone": codes.SCT.Bone,
    "pleura": codes.SCT.Pleura,
    "kidney": codes.SCT.Kidney,
    "spleen": codes.SCT.Spleen,
    "soft tissue": codes.SCT.SoftTissue,
    "pancreas": codes.SCT.Pancreas,
    "mediastinum": codes.SCT.Mediastinum,
    "skin": codes.SCT.Skin,
    "stomach": codes.SCT.Stomach,
    "colon": codes.SCT.Colon,
    "ovary": codes.SCT.Ovary,
    "breast": codes.SCT.Breast,
    "thyroid": codes.SCT.Thyroid,
    "esophagus": codes.SCT.Esophagus,
    "heart": codes.SCT.Heart,
    "pericardium": codes.SCT.Pericardium,
    "muscle": codes.SCT.Muscle,
    "prostate": codes.SCT.Prostate,
    "bladder": codes.SCT.Bladder,
    "retroperitoneum": codes.SCT.Retroperitoneum,
    "pleural effusion": codes.SCT.PleuralEffusion,
}

#: Store categories (``recist_tool.recist.Category`` values) → codes. iRECIST's new-lesion
#: target / non-target split is kept as new finding; the category comes back as ``NEW``.
_CATEGORY_CODES: dict[str, Code] = {
    "TARGET": codes.DCM.TargetLesionAtBaseline,
    "NON-TARGET": codes.DCM.NonTargetLesionAtBaseline,
    "NEW": codes.SCT.NewFinding,
}


def organ_code(organ: str) -> Code:
    """SNOMED CT code of an organ name (case-insensitive); ``Unknown`` when none is known."""
    return ORGAN_CODES.get(organ.strip().lower(), codes.SCT.Unknown)


def organ_from_code(value: str, scheme: str, meaning: str) -> str:
    """Organ name for a finding-site code: the name this project uses, else the meaning."""
    for name, code in ORGAN_CODES.items():
        if code.value == value and code.scheme_designator == scheme:
            return name
    if value == codes.SCT.Unknown.value and scheme == "SCT":
        return ""
    return meaning.strip().lower()


def category_code(category: str) -> Code:
    """Code of a lesion category (``TARGET``, ``NON-TARGET``, ``NEW``, ``NEW TARGET`` ...; any case)."""
    cat = category.strip().upper()
    return _CATEGORY_CODES["NEW" if cat.startswith("NEW") else cat]


def category_from_code(value: str, scheme: str) -> str | None:
    """Lesion category (``TARGET``, ``NON-TARGET``, ``NEW``) of a code, or None when none of ours."""
    for name, code in _CATEGORY_CODES.items():
        if code.value == value and code.scheme_designator == scheme:
            return name
    return None
