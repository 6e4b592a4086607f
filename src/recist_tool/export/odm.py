"""CDISC ODM 1.3.2 export: one XML file with the forms' metadata and every subject's reads.

Built with odmlib's ODM 1.3.2 model and checked against the ODM 1.3.2 schema odmlib ships before
it is renamed into place. Layout (OIDs from the mapping file, docs/export_edc.md):

- ``Study/MetaDataVersion``: a StudyEventDef per visit (+ the best-response event), FormDefs for
  target lesions, non-target lesions, new lesions (repeating ItemGroups, one per lesion),
  timepoint response and best response, their ItemDefs and CodeLists.
- ``AdminData``: a User per reader / audit actor (account name only, the reader's printed name),
  one Location (the core lab) and a SignatureDef per signature meaning.
- ``ClinicalData/SubjectData`` (``SubjectKey`` = the pseudonymous subject code) →
  ``StudyEventData`` per visit → ``FormData`` (``Signature`` when the read is signed, an
  ``Annotation`` ``UNSIGNED`` when it is not) → ``ItemGroupData`` per lesion with the
  ``AuditRecord`` of the lesion's last recorded change (who, when, reason) → ``ItemData``.
  ``ClinicalData/AuditRecords`` carries the subject's whole audit trail (one AuditRecord per event,
  ``SourceID`` = event number, action, table and chain hash).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from recist_tool.errors import InputError
from recist_tool.export.edc_items import CODELISTS, ITEMS, lesion_form
from recist_tool.export.mapping import EdcMapping, load_mapping, oid_safe
from recist_tool.recist.model import Category
from recist_tool.store.snapshot import decimal_text, target_sum

if TYPE_CHECKING:  # pragma: no cover
    from recist_tool.store.snapshot import SubjectExport, TrialExport

__all__ = ["export_odm", "build_odm", "validate_odm_file"]

_FORMS = {"target": ("Target lesions", True), "non_target": ("Non-target lesions", True),
          "new": ("New lesions", True), "response": ("Timepoint response", False),
          "best": ("Best overall response", False)}
_LOC_LEN = 200


def _ts(text: str | None) -> str:
    """An ISO 8601 UTC date-time as ODM wants it (naive store times are UTC)."""
    if not text:
        return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    t = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if t.tzinfo is None:
        t = t.replace(tzinfo=_dt.UTC)
    return t.astimezone(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def _user_oid(actor: str) -> str:
    return "USR." + oid_safe(actor)


class _Audit:
    """Latest audit event per (visit, read version, lesion code), rebuilt from the trail."""

    def __init__(self, subj: SubjectExport) -> None:
        visit_of_tp: dict[int, str] = {}
        read_of: dict[int, tuple[str, int, str]] = {}
        code_of: dict[int, str] = {}
        meas: dict[int, tuple[int, int]] = {}
        self.latest: dict[tuple[str, int, str], Any] = {}
        self.read_events: dict[tuple[str, int], Any] = {}
        for e in subj.audit:
            new = e.new or {}
            if e.entity == "timepoint" and e.action == "INSERT" and e.entity_id is not None:
                visit_of_tp[e.entity_id] = str(new.get("visit"))
            elif e.entity == "timepoint_read" and e.entity_id is not None:
                if e.action == "INSERT":
                    read_of[e.entity_id] = (visit_of_tp.get(cast(int, new.get("timepoint_id")), "?"),
                                            int(new.get("version") or 1), e.actor)
                if e.entity_id in read_of:
                    visit, version, _ = read_of[e.entity_id]
                    self.read_events[(visit, version)] = e
            elif e.entity == "lesion" and e.action == "INSERT" and e.entity_id is not None:
                code_of[e.entity_id] = str(new.get("code"))
            elif e.entity == "measurement" and e.entity_id is not None:
                if e.action == "INSERT":
                    meas[e.entity_id] = (int(cast(int, new.get("read_id"))),
                                         int(cast(int, new.get("lesion_id"))))
                if e.entity_id in meas:
                    read_id, lesion_id = meas[e.entity_id]
                    visit, version, _ = read_of.get(read_id, ("?", 0, ""))
                    self.latest[(visit, version, code_of.get(lesion_id, "?"))] = e


def _item_defs(odm: Any, m: EdcMapping) -> tuple[list[Any], list[Any]]:
    items, codelists = [], []
    for key, (label, dtype, cl, _form) in ITEMS.items():
        kw: dict[str, Any] = {"OID": m.odm_item(key), "Name": label, "DataType": dtype}
        if dtype == "text":
            kw["Length"] = _LOC_LEN if key.endswith("_loc") else 40
        elif dtype == "float":
            kw["Length"], kw["SignificantDigits"] = 8, 3
        it = odm.ItemDef(**kw)
        it.Question = odm.Question(TranslatedText=[odm.TranslatedText(_content=label, lang="en")])
        if cl is not None:
            it.CodeListRef = odm.CodeListRef(CodeListOID=f"CL.{cl}")
        items.append(it)
    for key, (name, values) in CODELISTS.items():
        c = odm.CodeList(OID=f"CL.{key}", Name=name, DataType="text")
        for i, v in enumerate(values, start=1):
            c.CodeListItem.append(odm.CodeListItem(
                CodedValue=v, OrderNumber=i,
                Decode=odm.Decode(TranslatedText=[odm.TranslatedText(_content=v, lang="en")])))
        codelists.append(c)
    return items, codelists


def build_odm(data: TrialExport, mapping: EdcMapping) -> Any:
    """The odmlib ``ODM`` object of an export (not yet written)."""
    import odmlib.odm_1_3_2.model as odm

    from recist_tool import __version__

    trial = data.trial
    study_oid = mapping.text("odm.study_oid", trial=oid_safe(trial))
    mdv_oid = mapping.text("odm.metadata_version_oid", trial=oid_safe(trial))
    loc_oid = str(mapping.get("odm.location_oid"))
    forms = {k: str(mapping.get(f"odm.forms.{k}")) for k in _FORMS}
    groups = {k: str(mapping.get(f"odm.item_groups.{k}")) for k in _FORMS}
    best_event = mapping.text("odm.best_event_oid", trial=oid_safe(trial))
    created = data.created.astimezone(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")

    root = odm.ODM(FileOID=f"recist-tool.{oid_safe(trial)}.{data.created.strftime('%Y%m%dT%H%M%S')}",
                   FileType="Snapshot", Granularity="All", CreationDateTime=created,
                   ODMVersion="1.3.2", Originator="recist-tool", SourceSystem="recist-tool",
                   SourceSystemVersion=__version__)
    study = odm.Study(OID=study_oid, GlobalVariables=odm.GlobalVariables(
        StudyName=odm.StudyName(_content=trial),
        StudyDescription=odm.StudyDescription(_content=f"{trial}: {data.criteria} tumour assessment"),
        ProtocolName=odm.ProtocolName(_content=trial)))
    mdv = odm.MetaDataVersion(OID=mdv_oid, Name=str(mapping.get("odm.metadata_version_name")))

    # visits, in date order over all subjects
    visits: dict[str, _dt.date] = {}
    for s in data.subjects:
        for r in s.reads:
            visits.setdefault(r.visit, r.date)
    event_oid = {v: mapping.odm_visit(v, trial) for v in visits}
    if len(set(event_oid.values())) != len(event_oid):
        raise InputError(f"{mapping.source}: two visits map to the same StudyEventOID "
                         f"({event_oid})")
    protocol = odm.Protocol()
    order = sorted(visits, key=lambda v: visits[v])
    for i, v in enumerate(order + [None], start=1):
        oid = best_event if v is None else event_oid[v]
        protocol.StudyEventRef.append(odm.StudyEventRef(StudyEventOID=oid, OrderNumber=i,
                                                        Mandatory="No"))
    mdv.Protocol = protocol
    for v in order:
        sed = odm.StudyEventDef(OID=event_oid[v], Name=v, Repeating="No", Type="Scheduled")
        for j, f in enumerate(("target", "non_target", "new", "response"), start=1):
            sed.FormRef.append(odm.FormRef(FormOID=forms[f], OrderNumber=j, Mandatory="No"))
        mdv.StudyEventDef.append(sed)
    sed = odm.StudyEventDef(OID=best_event, Name="Best overall response", Repeating="No",
                            Type="Common")
    sed.FormRef.append(odm.FormRef(FormOID=forms["best"], OrderNumber=1, Mandatory="No"))
    mdv.StudyEventDef.append(sed)
    for f, (name, repeating) in _FORMS.items():
        fd = odm.FormDef(OID=forms[f], Name=name, Repeating="No")
        fd.ItemGroupRef.append(odm.ItemGroupRef(ItemGroupOID=groups[f], Mandatory="No"))
        mdv.FormDef.append(fd)
        ig = odm.ItemGroupDef(OID=groups[f], Name=name, Repeating="Yes" if repeating else "No")
        for k, key in enumerate([key for key, spec in ITEMS.items() if spec[3] == f], start=1):
            ig.ItemRef.append(odm.ItemRef(ItemOID=mapping.odm_item(key), OrderNumber=k,
                                          Mandatory="Yes" if key.endswith("_id") else "No"))
        mdv.ItemGroupDef.append(ig)
    mdv.ItemDef, mdv.CodeList = _item_defs(odm, mapping)
    study.MetaDataVersion.append(mdv)
    root.Study.append(study)

    # admin data: users (actors and readers, names only), the core lab, signature meanings
    admin = odm.AdminData(StudyOID=study_oid)
    users: dict[str, str] = {}
    meanings: set[str] = set()
    for s in data.subjects:
        users.setdefault(s.reader, s.reader_full_name or s.reader)
        for e in s.audit:
            users.setdefault(e.actor, e.actor)
        for r in s.reads:
            for g in r.signatures:
                meanings.add(str(g.get("meaning")))
    for actor, full in sorted(users.items()):
        admin.User.append(odm.User(OID=_user_oid(actor), LoginName=odm.LoginName(_content=actor),
                                   FullName=odm.FullName(_content=full),
                                   LocationRef=[odm.LocationRef(LocationOID=loc_oid)]))
    admin.Location.append(odm.Location(
        OID=loc_oid, Name=str(mapping.get("odm.location_name")), LocationType="Other",
        MetaDataVersionRef=[odm.MetaDataVersionRef(
            StudyOID=study_oid, MetaDataVersionOID=mdv_oid,
            EffectiveDate=data.created.date().isoformat())]))
    for meaning in sorted(meanings):
        admin.SignatureDef.append(odm.SignatureDef(
            OID="SD." + oid_safe(meaning), Methodology="Electronic",
            Meaning=odm.Meaning(_content=meaning),
            LegalReason=odm.LegalReason(_content="21 CFR Part 11 electronic signature (password "
                                                 "re-entered at signing)")))
    root.AdminData.append(admin)

    clinical = odm.ClinicalData(StudyOID=study_oid, MetaDataVersionOID=mdv_oid)
    trail = odm.AuditRecords()
    for s in data.subjects:
        clinical.SubjectData.append(_subject(odm, s, data.criteria, mapping, event_oid, forms,
                                             groups, best_event, loc_oid))
        for e in s.audit:
            trail.AuditRecord.append(odm.AuditRecord(
                ID=f"AR.{e.id}", UserRef=odm.UserRef(UserOID=_user_oid(e.actor)),
                LocationRef=odm.LocationRef(LocationOID=loc_oid),
                DateTimeStamp=odm.DateTimeStamp(_content=_ts(e.ts)),
                **({"ReasonForChange": odm.ReasonForChange(_content=e.reason)} if e.reason else {}),
                SourceID=odm.SourceID(_content=f"audit_event {e.id} {e.action} {e.entity}"
                                               f" {e.entity_id} sha256:{e.hash}")))
    if trail.AuditRecord:
        clinical.AuditRecords.append(trail)
    root.ClinicalData.append(clinical)
    return root


def _subject(odm: Any, s: SubjectExport, criteria: str, m: EdcMapping, event_oid: dict[str, str],
             forms: dict[str, str], groups: dict[str, str], best_event: str, loc_oid: str) -> Any:
    audit = _Audit(s)
    sd = odm.SubjectData(SubjectKey=s.code)
    targets = [les for les in s.lesions if les.category == Category.TARGET]
    if not s.lesions:
        raise InputError(f"subject {s.code}: no lesions to export")

    def form(key: str, rd: Any, signed: bool) -> Any:
        fd = odm.FormData(FormOID=forms[key])
        if signed:
            g = rd.signatures[-1]
            fd.Signature = odm.Signature(
                ID=oid_safe(f"SG.{s.code}.{rd.visit}.v{rd.version}.{key}"),
                UserRef=odm.UserRef(UserOID=_user_oid(s.reader)),
                LocationRef=odm.LocationRef(LocationOID=loc_oid),
                SignatureRef=odm.SignatureRef(SignatureOID="SD." + oid_safe(str(g["meaning"]))),
                DateTimeStamp=odm.DateTimeStamp(_content=_ts(str(g["signed_at"]))))
        else:
            fd.Annotation.append(odm.Annotation(SeqNum=1, Comment=odm.Comment(
                SponsorOrSite="Sponsor",
                _content=f"UNSIGNED: {s.reader}'s read of {rd.visit} (version {rd.version}) "
                         "is not signed; exported with --include-unsigned")))
        return fd

    def item(key: str, value: Any) -> Any:
        return None if value in (None, "") else odm.ItemData(ItemOID=m.odm_item(key),
                                                             Value=str(value))

    def group(key: str, repeat: str | None, values: list[tuple[str, Any]],
              lesion: str | None, rd: Any) -> Any:
        ig = odm.ItemGroupData(ItemGroupOID=groups[key])
        if repeat is not None:
            ig.ItemGroupRepeatKey = repeat
        ev = audit.latest.get((rd.visit, rd.version, lesion)) if lesion else \
            audit.read_events.get((rd.visit, rd.version))
        if ev is not None:
            ig.AuditRecord = odm.AuditRecord(
                UserRef=odm.UserRef(UserOID=_user_oid(ev.actor)),
                LocationRef=odm.LocationRef(LocationOID=loc_oid),
                DateTimeStamp=odm.DateTimeStamp(_content=_ts(ev.ts)),
                **({"ReasonForChange": odm.ReasonForChange(_content=ev.reason)}
                   if ev.reason else {}),
                SourceID=odm.SourceID(_content=f"audit_event {ev.id}"))
        ig.ItemData = [x for x in (item(k, v) for k, v in values) if x is not None]
        return ig

    for rd in s.reads:
        se = odm.StudyEventData(StudyEventOID=event_oid[rd.visit])
        signed = s.is_signed(rd.visit) and bool(rd.signatures)
        meas = {x.lesion_id: x for x in rd.measurements}
        lesion_forms: dict[str, Any] = {}
        for les in s.lesions:
            x = meas.get(les.lesion_id)
            if x is None:
                continue
            key = lesion_form(les.category)
            fd = lesion_forms.setdefault(key, form(key, rd, signed))
            nodal = "Y" if les.nodal else "N"
            loc = (les.organ or "")[:_LOC_LEN]
            if key == "target":
                values = [("tl_id", les.lesion_id), ("tl_loc", loc), ("tl_nodal", nodal),
                          ("tl_state", x.state), ("tl_diam", decimal_text(x.diameter_mm)),
                          ("tl_ldiam", decimal_text(x.long_axis_mm)),
                          ("tl_sdiam", decimal_text(x.short_axis_mm)),
                          ("tl_method", x.method)]
            elif key == "non_target":
                values = [("ntl_id", les.lesion_id), ("ntl_loc", loc), ("ntl_nodal", nodal),
                          ("ntl_state", x.state)]
            else:
                values = [("nl_id", les.lesion_id), ("nl_loc", loc), ("nl_nodal", nodal),
                          ("nl_category", les.category.value), ("nl_state", x.state),
                          ("nl_diam", decimal_text(x.diameter_mm))]
            fd.ItemGroupData.append(group(key, les.lesion_id, values, les.lesion_id, rd))
        for key in ("target", "non_target", "new"):
            if key in lesion_forms:
                se.FormData.append(lesion_forms[key])
        r = rd.response
        # every visit: its sum (baseline too), read status and responses (follow-ups)
        total = None
        if targets:
            ssum = target_sum(targets, rd)
            total = decimal_text(ssum.total) if ssum.complete else None
        fd = form("response", rd, signed)
        values = [("sumdiam", total), ("criteria", criteria),
                  ("read_status", "SIGNED" if signed else "UNSIGNED")]
        if r is not None:
            values += [("trgresp", r.target), ("ntrgresp", r.non_target),
                       ("newlprog", None if r.new_lesions == "NONE" else r.new_lesions),
                       ("ovrlresp", r.confirmed_overall or r.overall),
                       ("ovrlresp_computed", r.overall)]
        fd.ItemGroupData.append(group("response", None, values, None, rd))
        se.FormData.append(fd)
        if se.FormData:
            sd.StudyEventData.append(se)
    if s.best is not None:
        b = s.best
        se = odm.StudyEventData(StudyEventOID=best_event)
        fd = odm.FormData(FormOID=forms["best"])
        if s.unsigned_visits:
            fd.Annotation.append(odm.Annotation(SeqNum=1, Comment=odm.Comment(
                SponsorOrSite="Sponsor", _content="UNSIGNED: rests on unsigned reads of "
                                                  + ", ".join(s.unsigned_visits))))
        ig = odm.ItemGroupData(ItemGroupOID=groups["best"])
        for key, value in (("bestrsp", b.bor.value),
                           ("bestrsp_date", b.bor_date and b.bor_date.isoformat()),
                           ("cbestrsp", b.confirmed_bor.value),
                           ("pd_date", b.pd_date and b.pd_date.isoformat())):
            if value:
                ig.ItemData.append(odm.ItemData(ItemOID=m.odm_item(key), Value=str(value)))
        fd.ItemGroupData.append(ig)
        se.FormData.append(fd)
        sd.StudyEventData.append(se)
    return sd


def validate_odm_file(path: str | Path) -> None:
    """Validate a file against the ODM 1.3.2 schema shipped with odmlib.

    Raises
    ------
    InputError
        Not well-formed or not valid (the first schema error, one line).
    """
    import xmlschema
    from odmlib.odm_parser import ODMSchemaValidator

    validator = ODMSchemaValidator(standard="odm", version="1.3.2")
    try:
        validator.xsd.validate(str(path))
    except (xmlschema.XMLSchemaException, SyntaxError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"ODM 1.3.2 schema check failed for {Path(path).name}: {first}") from exc


def export_odm(data: TrialExport, out_dir: Path, *, options: Mapping[str, Any]) -> list[Path]:
    """Write ``<trial>_odm.xml`` (CDISC ODM 1.3.2) under ``out_dir``.

    Options: ``mapping`` (path of a mapping TOML; default: the shipped mapping), ``file_name``.
    The file is validated against the ODM 1.3.2 schema before it is renamed into place.
    """
    from recist_tool.io.outputs import atomic_outputs

    mapping = load_mapping(options.get("mapping"))
    root = build_odm(data, mapping)
    name = str(options.get("file_name") or f"{oid_safe(data.trial)}_odm.xml")
    with atomic_outputs(Path(out_dir)) as out:
        tmp = out.path(name)
        try:
            root.write_xml(str(tmp))
        except OSError as exc:
            raise InputError(f"cannot write {name}: {exc.strerror or exc}") from exc
        validate_odm_file(tmp)
    return out.finals
