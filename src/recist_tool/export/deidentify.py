"""De-identified DICOM SR / SEG for a core lab: DICOM PS3.15 Annex E, Basic Profile.

``recist export --format dicom-sr|dicom-seg --deidentify`` passes every object it built through
:func:`deidentify_dataset` before writing it. What is done follows DICOM PS3.15 Annex E (Attribute
Confidentiality Profiles), Table E.1-1 *Application Level Confidentiality Profile Attributes*:

* each attribute of :data:`ACTIONS` (the table's Basic Profile column, for the attributes a CT, a
  TID 1500 SR or a SEG of this tool can carry) is removed (``X``), emptied (``Z``), given a dummy
  value (``D``), kept (``K``) or has its UID replaced (``U``), at any depth (sequences included)
  and in the file meta information; where the table allows several actions (``X/Z/D``) the one that
  keeps the object valid is used (:func:`resolve_action`);
* private attributes, overlays and curves are removed (Table E.1-1, "Private attributes",
  "Overlay Data", "Curve Data");
* a safety net beyond the table: any other person name is emptied, any other UID that is not a
  registered DICOM UID (transfer syntax, SOP class, coding scheme...) is replaced and, without the
  dates option, any other date or time is emptied, so an attribute missing from :data:`ACTIONS`
  cannot leak a name, an original UID or a date;
* the Clean Structured Content Option (PS3.15 E.3.7) for the SR's content tree: the tree is kept
  (the Basic Profile alone would remove Content Sequence), the reader's name becomes the
  pseudonymous evaluator identifier (``RADIOLOGIST 1``) and the login-name item is dropped;
* the Retain Longitudinal Temporal Information with Full Dates Option (PS3.15 E.3.6) when asked
  (``--retain-dates``): the dates and times of :data:`DATE_ATTRIBUTES` are kept; without it they
  are removed, emptied or (type 1 ones) replaced by the dummy date 19000101.

The subject code replaces Patient Name and Patient ID (the exports carry subject codes, never
names); the Clinical Trial Subject, Study and Series modules (PS3.3 C.7.1.3, C.7.2.3, C.7.3.2) are
filled from the ``[deidentify]`` table of the trial settings; Patient Identity Removed is YES and
De-identification Method (Code Sequence) records the profile and options applied (PS3.16 CID 7050).

UIDs are replaced by a keyed, deterministic mapping (:func:`remap_uid`): ``2.25`` UIDs derived
from an HMAC-SHA256 of the original UID under a per-trial secret that never goes into an export.
The same secret maps the same UID to the same new UID in every run, so an SR, the SEG of the same
visit and the CT de-identified with :func:`deidentify_dataset` and the same secret still reference
one another (Study, Series, SOP Instance, Frame of Reference and Tracking UIDs); another secret
gives unrelated UIDs.

Libraries checked before writing this by hand: pydicom has no confidentiality profile (it gives
the tree walk and the data dictionary used here); highdicom has
none; ``deid`` (pydicom/deid) applies recipe files whose default is not Table E.1-1; ``dicognito``
replaces identifiers with random fake names and dates; ``dicom-anonymizer`` (KitwareMedical)
carries Table E.1-1 but its UID replacement is not keyed by a secret and it has no Clean
Structured Content handling for SR trees (see ``docs/export_pacs.md``).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
import tomllib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recist_tool.errors import InputError, UsageError

__all__ = ["ACTIONS", "DATE_ATTRIBUTES", "DeidSettings", "SECRET_ENV", "deidentify_dataset",
           "read_deid_settings", "remap_uid", "resolve_action"]

#: Environment variable holding the per-trial secret (else ``[deidentify] secret_file``).
SECRET_ENV = "RECIST_DEID_SECRET"
#: Shortest secret accepted (bytes).
SECRET_MIN_BYTES = 16

#: DICOM PS3.15 Table E.1-1, Basic Profile column, for the attributes of a CT image, a TID 1500
#: Comprehensive 3D SR and a Segmentation (keyword → action code of Table E.1-1a: D dummy, Z zero
#: length, X remove, K keep, C clean, U replace UID; ``X/Z/D`` etc. as in the table, ``U*`` a
#: sequence kept with the UIDs inside replaced). Attributes absent here are kept (the table keeps
#: what it does not list), save the safety net for names, UIDs and dates of
#: :func:`deidentify_dataset`. Checked against the table of the 2023b edition.
ACTIONS: dict[str, str] = {
    # --- identifiers of the patient (Patient module and kin)
    "PatientName": "Z", "PatientID": "Z", "IssuerOfPatientID": "X", "OtherPatientIDs": "X",
    "OtherPatientIDsSequence": "X", "OtherPatientNames": "X", "PatientBirthName": "X",
    "PatientMotherBirthName": "X", "PatientBirthDate": "Z", "PatientBirthTime": "X",
    "PatientSex": "Z", "PatientAge": "X", "PatientSize": "X", "PatientWeight": "X",
    "PatientAddress": "X", "PatientTelephoneNumbers": "X", "CountryOfResidence": "X",
    "RegionOfResidence": "X", "EthnicGroup": "X", "Occupation": "X", "MilitaryRank": "X",
    "BranchOfService": "X", "MedicalRecordLocator": "X", "PatientReligiousPreference": "X",
    "PatientComments": "X", "AdditionalPatientHistory": "X", "MedicalAlerts": "X",
    "Allergies": "X", "SmokingStatus": "X", "PregnancyStatus": "X", "PatientState": "X",
    "PatientInsurancePlanCodeSequence": "X", "PatientSexNeutered": "X/Z",
    "ReferencedPatientSequence": "X", "ResponsiblePerson": "X", "ResponsibleOrganization": "X",
    "AdmissionID": "X", "AdmittingDate": "X", "AdmittingTime": "X",
    "AdmittingDiagnosesDescription": "X", "AdmittingDiagnosesCodeSequence": "X",
    "CurrentPatientLocation": "X", "PatientInstitutionResidence": "X",
    "PatientTelecomInformation": "X", "LastMenstrualDate": "X", "InsurancePlanIdentification": "X",
    "ReferencedPatientPhotoSequence": "X", "PatientPrimaryLanguageCodeSequence": "X",
    "IdentifyingComments": "X", "VisitComments": "X", "SpecialNeeds": "X",
    # --- study, visit and request
    "StudyInstanceUID": "U", "StudyDate": "Z", "StudyTime": "Z", "StudyID": "Z",
    "AccessionNumber": "Z", "StudyDescription": "X", "ReferringPhysicianName": "Z",
    "ReferringPhysicianAddress": "X", "ReferringPhysicianTelephoneNumbers": "X",
    "ReferringPhysicianIdentificationSequence": "X", "PhysiciansOfRecord": "X",
    "PhysiciansOfRecordIdentificationSequence": "X", "NameOfPhysiciansReadingStudy": "X",
    "PhysiciansReadingStudyIdentificationSequence": "X", "ReferencedStudySequence": "X/Z",
    "RequestAttributesSequence": "X", "RequestedProcedureDescription": "X/Z",
    "RequestedProcedureID": "X", "RequestingPhysician": "X", "RequestingService": "X",
    "ReasonForStudy": "X", "StudyComments": "X", "StudyIDIssuer": "X",
    "ScheduledProcedureStepDescription": "X", "ConsultingPhysicianName": "Z",
    "ConsultingPhysicianIdentificationSequence": "X", "PersonAddress": "X",
    "PersonTelephoneNumbers": "X", "PlacerOrderNumberImagingServiceRequest": "Z",
    "FillerOrderNumberImagingServiceRequest": "Z",
    "PerformedProcedureStepDescription": "X", "PerformedProcedureStepID": "X",
    "PerformedProcedureStepStartDate": "X", "PerformedProcedureStepStartTime": "X",
    "PerformedProcedureStepEndDate": "X", "PerformedProcedureStepEndTime": "X",
    "CommentsOnThePerformedProcedureStep": "X",
    "ReferencedPerformedProcedureStepSequence": "X/Z/D",
    # --- series, equipment, institution, operators
    "SeriesInstanceUID": "U", "SeriesDate": "X/D", "SeriesTime": "X/D", "SeriesDescription": "X",
    "ProtocolName": "X/D", "OperatorsName": "X/Z/D", "OperatorIdentificationSequence": "X/D",
    "PerformingPhysicianName": "X", "PerformingPhysicianIdentificationSequence": "X",
    "PerformedStationName": "X", "PerformedLocation": "X", "StationName": "X/Z/D",
    "InstitutionName": "X/Z/D", "InstitutionAddress": "X", "InstitutionalDepartmentName": "X",
    "InstitutionCodeSequence": "X/Z/D", "TimezoneOffsetFromUTC": "X",
    "DeviceSerialNumber": "X/Z/D", "DeviceUID": "U", "GantryID": "X", "DetectorID": "X/D",
    "PlateID": "X", "CassetteID": "X", "ScheduledStationName": "X",
    "ScheduledStudyLocation": "X", "GeneratorID": "X", "ModifyingDeviceID": "X",
    "ModifyingDeviceManufacturer": "X", "ModifiedImageDescription": "X",
    "AcquisitionDeviceProcessingDescription": "X/D", "AcquisitionProtocolDescription": "X",
    "ContributionDescription": "X", "StartAcquisitionDateTime": "X/D",
    "EndAcquisitionDateTime": "X/D", "InstanceCoercionDateTime": "X",
    # --- image / instance
    "SOPInstanceUID": "U", "MediaStorageSOPInstanceUID": "U", "InstanceCreatorUID": "U",
    "ContentDate": "Z/D",
    "ContentTime": "Z/D", "AcquisitionDate": "X/Z", "AcquisitionTime": "X/Z",
    "AcquisitionDateTime": "X/D", "AcquisitionComments": "X", "ImageComments": "X",
    "FrameComments": "X", "ImagePresentationComments": "X", "IconImageSequence": "X",
    "DerivationDescription": "X", "AcquisitionContextSequence": "X", "IrradiationEventUID": "U",
    "ContrastBolusAgent": "Z/D", "TargetUID": "U", "TransactionUID": "U", "FiducialUID": "U",
    "FrameOfReferenceUID": "U", "SynchronizationFrameOfReferenceUID": "U",
    "ReferencedFrameOfReferenceUID": "U", "RelatedFrameOfReferenceUID": "U",
    "ConcatenationUID": "U", "DimensionOrganizationUID": "U", "StorageMediaFileSetUID": "U",
    "ReferencedSOPInstanceUID": "U", "ReferencedSOPInstanceUIDInFile": "U",
    "ReferencedImageSequence": "X/Z/U*", "SourceImageSequence": "X/Z/U*",
    "ModifiedAttributesSequence": "X", "OriginalAttributesSequence": "X",
    "TrackingUID": "U", "ContentCreatorName": "Z", "GraphicAnnotationSequence": "D",
    "TextString": "X", "DigitalSignaturesSequence": "X", "DataSetTrailingPadding": "X",
    "DigitalSignatureUID": "X", "ReferencedDigitalSignatureSequence": "X",
    "ReferencedSOPInstanceMACSequence": "X", "MAC": "X",
    "ContentCreatorIdentificationCodeSequence": "X",
    # --- structured reports (SR Document General / Content modules)
    "ContentSequence": "X", "UID": "U", "PersonName": "D",
    "PersonIdentificationCodeSequence": "D", "VerifyingObserverName": "D",
    "VerifyingObserverSequence": "D", "VerifyingObserverIdentificationCodeSequence": "Z",
    "VerifyingOrganization": "X", "AuthorObserverSequence": "X",
    "ParticipantSequence": "X", "CustodialOrganizationSequence": "X", "ObservationUID": "U",
    "TemplateExtensionOrganizationUID": "U", "TemplateExtensionCreatorUID": "U",
}

#: Dates and times that the Retain Longitudinal Temporal Information with Full Dates Option
#: keeps (PS3.15 Table E.1-1, column "Rtn. Long. Full Dates Opt.": K).
DATE_ATTRIBUTES: frozenset[str] = frozenset({
    "StudyDate", "StudyTime", "SeriesDate", "SeriesTime", "AcquisitionDate", "AcquisitionTime",
    "AcquisitionDateTime", "ContentDate", "ContentTime", "InstanceCreationDate",
    "InstanceCreationTime", "FrameAcquisitionDateTime", "FrameReferenceDateTime",
    "PerformedProcedureStepStartDate", "PerformedProcedureStepStartTime",
    "PerformedProcedureStepEndDate", "PerformedProcedureStepEndTime", "ObservationDateTime",
    "VerificationDateTime", "ContrastBolusStartTime", "ContrastBolusStopTime", "AdmittingDate",
    "AdmittingTime", "Date", "Time", "DateTime",
})

#: Attributes given a dummy (``D``) rather than removed or emptied where Table E.1-1 allows both:
#: they are type 1 in the SR, SEG or CT IODs (PS3.3), so removing them would make the object
#: invalid.
_TYPE1 = frozenset({"ContentDate", "ContentTime", "DeviceSerialNumber"})

#: UID attributes naming classes, syntaxes and coding schemes, never instances: kept.
_CLASS_UIDS = frozenset({
    "SOPClassUID", "MediaStorageSOPClassUID", "ReferencedSOPClassUID", "TransferSyntaxUID",
    "ImplementationClassUID", "ReferencedSOPClassUIDInFile", "ReferencedTransferSyntaxUIDInFile",
    "CodingSchemeUID", "MappingResourceUID", "ContextUID", "ContextGroupExtensionCreatorUID",
    "SOPClassesInStudy",
    "PrivateInformationCreatorUID", "RelatedGeneralSOPClassUID", "OriginalSpecializedSOPClassUID",
    "ReferencedRelatedGeneralSOPClassUIDInFile", "ReferencedColorPaletteInstanceUID",
})

_DUMMY = {"DA": "19000101", "TM": "000000", "DT": "19000101000000", "PN": "ANONYMIZED",
          "SQ": None}
#: Concept code of TID 1003's Person Observer's Login Name (DCM 128774), dropped by the Clean
#: Structured Content Option (PS3.15 E.3.7).
_LOGIN_NAME = ("128774", "DCM")
#: Clinical Trial Subject / Study / Series attributes (PS3.3 C.7.1.3, C.7.2.3, C.7.3.2), replaced
#: as a whole from the settings.
_TRIAL_ATTRS = ("ClinicalTrialSponsorName", "ClinicalTrialProtocolID", "ClinicalTrialProtocolName",
                "ClinicalTrialSiteID", "ClinicalTrialSiteName", "ClinicalTrialSubjectID",
                "ClinicalTrialSubjectReadingID", "ClinicalTrialTimePointID",
                "ClinicalTrialTimePointDescription", "ClinicalTrialCoordinatingCenterName",
                "ClinicalTrialSeriesID", "ClinicalTrialSeriesDescription",
                "ClinicalTrialProtocolEthicsCommitteeName",
                "ClinicalTrialProtocolEthicsCommitteeApprovalNumber")


@dataclass(frozen=True)
class DeidSettings:
    """What :func:`deidentify_dataset` needs besides the object.

    Attributes
    ----------
    secret : bytes
        The per-trial key of :func:`remap_uid`; kept outside the exports.
    sponsor, protocol_id : str
        Clinical Trial Sponsor Name and Protocol ID (type 1); ``protocol_id`` empty means the
        trial's name in the store.
    protocol_name, site_id, site_name, coordinating_center : str
        Type 2 attributes of the Clinical Trial Subject and Series modules (may be empty).
    retain_dates : bool
        Apply the Retain Longitudinal Temporal Information with Full Dates Option (PS3.15 E.3.6).
    """

    secret: bytes
    sponsor: str
    protocol_id: str = ""
    protocol_name: str = ""
    site_id: str = ""
    site_name: str = ""
    coordinating_center: str = ""
    retain_dates: bool = False


def remap_uid(uid: str, secret: bytes) -> str:
    """The de-identified UID of ``uid``: ``2.25.<int>`` from HMAC-SHA256(secret, uid).

    Deterministic for one secret (SR, SEG and CT exported apart keep referencing each other, PS3.15
    Table E.1-1 action U: "consistent within the set of instances"), unrelated across secrets, and
    not invertible without the secret. The first 128 bits of the HMAC become a UUID (variant and
    version bits set, RFC 9562) written as a ``2.25`` UID (PS3.5 B.2). (pydicom's
    ``generate_uid(prefix=None, entropy_srcs=...)`` would not do: without a prefix it ignores the
    entropy and returns a random UUID.)
    """
    digest = hmac.new(secret, str(uid).strip().encode("ascii", "replace"), hashlib.sha256).digest()
    return f"2.25.{uuid.UUID(bytes=digest[:16], version=4).int}"


def resolve_action(keyword: str, code: str, *, retain_dates: bool = False) -> str:
    """The single action applied to ``keyword`` for Table E.1-1's code ``code``.

    With several actions allowed: U (references kept consistent) first; then D for attributes
    that are type 1 in the objects written (:data:`_TYPE1`); then Z (the attribute stays, empty,
    valid for type 2); then X. Under the Retain Longitudinal Temporal Information with Full Dates
    Option, the dates and times of :data:`DATE_ATTRIBUTES` are K (PS3.15 E.3.6).
    """
    if retain_dates and keyword in DATE_ATTRIBUTES:
        return "K"
    options = [c.rstrip("*") for c in code.split("/")]
    if len(options) == 1:
        return options[0]
    for want in ("U", "D" if keyword in _TYPE1 else "", "Z", "X"):
        if want and want in options:
            return want
    return options[0]


def _is_registered_uid(value: str) -> bool:
    from pydicom.uid import UID

    return UID(value).is_transfer_syntax or UID(value).name != str(value)


class _Walker:
    def __init__(self, cfg: DeidSettings, evaluator: str, clean_content: bool) -> None:
        self.cfg = cfg
        self.evaluator = evaluator
        self.clean_content = clean_content
        # Items and elements done, held so that their ids stay theirs: highdicom puts one item
        # or element in several places (a SEG's source image references), done once.
        self.done: dict[int, Any] = {}

    def uid(self, value: Any) -> Any:
        if value is None or value == "":
            return value
        if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
            return [remap_uid(v, self.cfg.secret) for v in value]
        return remap_uid(value, self.cfg.secret)

    def dummy(self, elem: Any) -> Any:
        if elem.keyword in ("PersonName", "VerifyingObserverName"):
            return self.evaluator
        if elem.VR in _DUMMY:
            return _DUMMY[elem.VR]
        return "0" if elem.VR in ("IS", "DS", "SH", "LO", "CS") else "DUMMY"

    def once(self, obj: Any) -> bool:
        if id(obj) in self.done:
            return False
        self.done[id(obj)] = obj
        return True

    def walk(self, ds: Any) -> None:
        if not self.once(ds):
            return
        for elem in list(ds):
            if not self.once(elem):
                continue
            tag = elem.tag
            if tag.is_private or (tag.group & 0xFF00) in (0x5000, 0x6000):
                del ds[tag]  # Table E.1-1: private attributes, curves, overlays: X
                continue
            kw = elem.keyword
            code = ACTIONS.get(kw)
            if kw == "ContentSequence" and self.clean_content:
                code = "C"
            if code is None:
                self.safety_net(ds, elem)
                continue
            action = resolve_action(kw, code, retain_dates=self.cfg.retain_dates)
            if action == "X":
                del ds[tag]
            elif action == "Z":
                elem.value = [] if elem.VR == "SQ" else ""
            elif action == "U":
                if elem.VR == "SQ":
                    for item in elem.value:
                        self.walk(item)
                else:
                    elem.value = self.uid(elem.value)
            elif action == "D":
                if elem.VR == "SQ":
                    for item in elem.value:
                        self.walk(item)
                else:
                    elem.value = self.dummy(elem)
            elif action == "C":
                self.clean(elem)
            elif elem.VR == "SQ":  # K: keep, but what lies inside is de-identified too
                for item in elem.value:
                    self.walk(item)

    def safety_net(self, ds: Any, elem: Any) -> None:
        if elem.VR == "SQ":
            for item in elem.value:
                self.walk(item)
        elif elem.VR == "PN" and elem.value:
            elem.value = ""
        elif elem.VR == "UI" and elem.keyword not in _CLASS_UIDS and elem.value:
            values = elem.value if elem.VM > 1 else [elem.value]
            if not all(_is_registered_uid(v) for v in values):
                elem.value = self.uid(elem.value)
        elif elem.VR in ("DA", "DT", "TM") and elem.value and not self.cfg.retain_dates:
            elem.value = ""

    def clean(self, elem: Any) -> None:
        """Clean Structured Content Option: drop login-name items, then de-identify the rest."""
        keep = []
        for item in elem.value:
            concept = item.get("ConceptNameCodeSequence")
            code = (concept[0].CodeValue, concept[0].CodingSchemeDesignator) if concept else None
            if code == _LOGIN_NAME:
                continue
            self.walk(item)
            keep.append(item)
        elem.value = keep


def deidentify_dataset(ds: Any, cfg: DeidSettings, *, subject: str, trial: str, visit: str = "",
                       evaluator: str = "READER", clean_structured_content: bool = False) -> Any:
    """De-identify ``ds`` in place by PS3.15 Annex E, Basic Profile, and return it.

    Parameters
    ----------
    ds : pydicom.Dataset
        A CT image, SR or SEG (highdicom objects are Datasets); its ``file_meta`` is done too.
    cfg : DeidSettings
    subject : str
        The trial subject code: Patient Name, Patient ID and Clinical Trial Subject ID.
    trial : str
        The trial's name in the store (Clinical Trial Protocol ID when the settings name none).
    visit : str
        Clinical Trial Time Point ID.
    evaluator : str
        Pseudonymous reader identifier for person names of the SR's observer context.
    clean_structured_content : bool
        Keep and clean the SR content tree (Clean Structured Content Option, PS3.15 E.3.7)
        instead of removing it (Basic Profile, Content Sequence: X).

    Returns
    -------
    pydicom.Dataset
        ``ds``, with Patient Identity Removed YES, De-identification Method and its Code Sequence
        (CID 7050), Longitudinal Temporal Information Modified, and the Clinical Trial modules.
    """
    from pydicom.dataset import Dataset
    from pydicom.sr.codedict import codes

    from recist_tool import __version__

    walker = _Walker(cfg, evaluator, clean_structured_content)
    for kw in _TRIAL_ATTRS:
        if kw in ds:
            delattr(ds, kw)
    walker.walk(ds)
    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        walker.walk(meta)
        if "SOPInstanceUID" in ds:
            meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.PatientName = subject
    ds.PatientID = subject
    ds.PatientIdentityRemoved = "YES"
    used = [codes.DCM.BasicApplicationConfidentialityProfile]
    method = ["DICOM PS3.15 E.1 Basic Application Confidentiality Profile"]
    if clean_structured_content:
        used.append(codes.DCM.CleanStructuredContentOption)
        method.append("Clean Structured Content Option")
    if cfg.retain_dates:
        used.append(codes.DCM.RetainLongitudinalTemporalInformationFullDatesOption)
        method.append("Retain Longitudinal Temporal Info Full Dates Option")
    method.append(f"recist-tool {__version__}"[:64])
    ds.DeidentificationMethod = method
    seq = []
    for c in used:
        item = Dataset()
        item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = \
            c.value, c.scheme_designator, c.meaning
        seq.append(item)
    ds.DeidentificationMethodCodeSequence = seq
    ds.LongitudinalTemporalInformationModified = "UNMODIFIED" if cfg.retain_dates else "REMOVED"
    ds.ClinicalTrialSponsorName = cfg.sponsor[:64]
    ds.ClinicalTrialProtocolID = (cfg.protocol_id or trial)[:64]
    ds.ClinicalTrialProtocolName = cfg.protocol_name[:64]
    ds.ClinicalTrialSiteID = cfg.site_id[:64]
    ds.ClinicalTrialSiteName = cfg.site_name[:64]
    ds.ClinicalTrialSubjectID = subject[:64]
    if visit:
        ds.ClinicalTrialTimePointID = visit[:64]
    ds.ClinicalTrialCoordinatingCenterName = cfg.coordinating_center[:64]
    return ds


def _secret(table: Mapping[str, Any], where: str, base: Path,
            environ: Mapping[str, str]) -> bytes:
    value = environ.get(SECRET_ENV)
    if value:
        secret = value.encode("utf-8")
        origin = f"${SECRET_ENV}"
    elif table.get("secret_file"):
        p = Path(str(table["secret_file"])).expanduser()
        p = p if p.is_absolute() else base / p
        origin = str(p)
        try:
            st = p.stat()
            if not stat.S_ISREG(st.st_mode):
                raise InputError(f"{where} secret_file {p}: not a file")
            if os.name == "posix" and st.st_mode & 0o077:
                raise InputError(f"{where} secret_file {p}: readable by others (mode "
                                 f"{stat.S_IMODE(st.st_mode):04o}); make it owner-only: chmod 600")
            secret = p.read_bytes().strip()
        except OSError as exc:
            raise InputError(f"{where} secret_file {p}: cannot read: {exc.strerror}") from exc
    else:
        raise InputError(f"--deidentify needs the trial's secret for UID remapping: set ${SECRET_ENV}"
                         f" or secret_file in {where}")
    if len(secret) < SECRET_MIN_BYTES:
        raise InputError(f"{origin}: the de-identification secret must be at least "
                         f"{SECRET_MIN_BYTES} bytes")
    return secret


def read_deid_settings(path: Path | None, *, retain_dates: bool = False,
                       environ: Mapping[str, str] | None = None) -> DeidSettings:
    """The ``[deidentify]`` table of the trial settings TOML as :class:`DeidSettings`.

    ```toml
    [deidentify]
    sponsor = "Example Oncology"      # Clinical Trial Sponsor Name (required)
    protocol_id = "ES-SCLC-001"       # default: the trial's name in the store
    protocol_name = ""                # site_id, site_name, coordinating_center likewise
    secret_file = "deid.key"          # owner-only (chmod 600); or $RECIST_DEID_SECRET
    ```

    Raises
    ------
    UsageError
        No settings file.
    InputError
        Not TOML, no ``[deidentify]`` table or sponsor, a value that is not text, no secret (or one
        shorter than 16 bytes), a secret file others may read.
    """
    if path is None:
        raise UsageError("--deidentify needs --settings (the trial settings with [deidentify])")
    where = f"{path} [deidentify]"
    try:
        doc = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: not valid TOML: {exc}") from exc
    table = doc.get("deidentify")
    if not isinstance(table, dict):
        raise InputError(f"{path}: --deidentify needs a [deidentify] table (sponsor, secret_file)")
    text: dict[str, str] = {}
    for key in ("sponsor", "protocol_id", "protocol_name", "site_id", "site_name",
                "coordinating_center"):
        value = table.get(key, "")
        if not isinstance(value, str):
            raise InputError(f"{where} {key}: must be text (got {value!r})")
        text[key] = " ".join(value.split())
    if not text["sponsor"]:
        raise InputError(f"{where}: sponsor is required (Clinical Trial Sponsor Name, type 1)")
    secret = _secret(table, where, Path(path).resolve().parent,
                     os.environ if environ is None else environ)
    return DeidSettings(secret=secret, retain_dates=retain_dates, **text)
