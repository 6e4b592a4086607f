"""What the DICOM objects derived from a trial CT share (the SR of
:mod:`recist_tool.export.dicom_sr` and the SEG of :mod:`recist_tool.export.dicom_seg`): stable
UIDs, the lesion's tracking identifier and UID (the same in SR and SEG, at every timepoint), the
observer's name as a DICOM PN, and the CT's patient, study and clinical-trial modules.
"""

from __future__ import annotations

import uuid
from typing import Any

from recist_tool.io.dicom_codes import TRACKING_PREFIXES

__all__ = ["SEG_SERIES_NUMBER", "SR_SERIES_NUMBER", "conform_source", "copy_trial_modules", "person_name",
           "stable_uid", "tracking_identifier", "tracking_uid"]

#: Series number of the SR series (the SEG series uses the next number).
SR_SERIES_NUMBER = 9001
#: Series number of the SEG series.
SEG_SERIES_NUMBER = SR_SERIES_NUMBER + 1
_UID_NAMESPACE = uuid.UUID("6f1f4a1e-9b0e-5c53-a1a4-7265636973ff")


def stable_uid(*parts: str) -> str:
    """A DICOM UID (``2.25.<uuid5>``) that depends only on ``parts``."""
    return "2.25." + str(uuid.uuid5(_UID_NAMESPACE, "\x1f".join(parts)).int)


def tracking_uid(trial: str, subject: str, reader: str, lesion_id: str) -> str:
    """Tracking Unique Identifier of a reader's lesion: the same at every timepoint, SR and SEG."""
    return stable_uid("tracking", trial, subject, reader, lesion_id.upper())


def tracking_identifier(lesion_id: str) -> str:
    """Tracking Identifier text: cornerstone's Bidirectional tool type, then the lesion id."""
    return f"{TRACKING_PREFIXES[0]}:{lesion_id.upper()}"


def person_name(name: str) -> str:
    """A printed name as a DICOM PN value.

    A name already in PN form (``Family^Given``) is kept; a printed name (``Jane Doe``) is not
    split into parts (no rule does that right for every culture) and becomes the family-name
    component as written: ``Jane Doe^``.
    """
    name = " ".join(name.replace("\\", " ").replace("=", " ").split())[:60]
    return name if "^" in name else f"{name}^"


#: Clinical Trial Subject / Study attributes copied from the CT (type 2 ones as empty when the CT
#: lacks them but carries the module).
_TRIAL_SUBJECT = ("ClinicalTrialSponsorName", "ClinicalTrialProtocolID",
                  "ClinicalTrialProtocolName", "ClinicalTrialSiteID", "ClinicalTrialSiteName",
                  "ClinicalTrialSubjectID", "ClinicalTrialSubjectReadingID")
_TRIAL_STUDY = ("ClinicalTrialTimePointID", "ClinicalTrialTimePointDescription")


#: Type 2 patient / study / series attributes a derived object must carry: empty when the CT
#: lacks them (some scanners leave them out), so the SR / SEG stays valid.
_TYPE2 = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
          "ReferringPhysicianName", "StudyID", "AccessionNumber")


def conform_source(ds: Any) -> Any:
    """A copy of a CT header with missing type 2 patient / study attributes present and empty."""
    import copy

    missing = [kw for kw in _TYPE2 if kw not in ds]
    if not missing:
        return ds
    out = copy.deepcopy(ds)
    for kw in missing:
        setattr(out, kw, "")
    return out


def copy_trial_modules(target: Any, ct: Any) -> None:
    """Copy the CT's Clinical Trial Subject and Study modules onto a derived object.

    The Clinical Trial Subject module is all-or-nothing: when the CT has it (Sponsor Name set),
    every attribute goes over, type 2 ones empty when the CT has none.
    """
    if "ClinicalTrialSponsorName" in ct:
        for kw in _TRIAL_SUBJECT:
            if kw in ct:
                setattr(target, kw, ct.data_element(kw).value)
            elif kw in ("ClinicalTrialProtocolName", "ClinicalTrialSiteName"):
                setattr(target, kw, "")
    for kw in _TRIAL_STUDY:
        if kw in ct:
            setattr(target, kw, ct.data_element(kw).value)
