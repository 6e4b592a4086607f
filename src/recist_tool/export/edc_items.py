"""The EDC items every EDC export writes (CDISC ODM in :mod:`recist_tool.export.odm`, REDCap in
:mod:`recist_tool.export.redcap`): one list of items with their labels, data types, code lists and
forms, so both exports say the same thing under the same names.
"""

from __future__ import annotations

from recist_tool.recist.model import Category, Criteria, LesionState, NewLesionStatus, Response

__all__ = ["CODELISTS", "ITEMS", "lesion_form"]

#: Logical item → (label, ODM DataType, code list key or None, form key).
ITEMS: dict[str, tuple[str, str, str | None, str]] = {
    "tl_id": ("Target lesion ID", "text", None, "target"),
    "tl_loc": ("Target lesion location", "text", None, "target"),
    "tl_nodal": ("Lymph node", "text", "NY", "target"),
    "tl_state": ("Assessment", "text", "STATE", "target"),
    "tl_diam": ("RECIST diameter (mm; short axis for nodes)", "float", None, "target"),
    "tl_ldiam": ("Long axis (mm)", "float", None, "target"),
    "tl_sdiam": ("Short axis (mm)", "float", None, "target"),
    "tl_method": ("Measurement method", "text", "METHOD", "target"),
    "ntl_id": ("Non-target lesion ID", "text", None, "non_target"),
    "ntl_loc": ("Non-target lesion location", "text", None, "non_target"),
    "ntl_nodal": ("Lymph node", "text", "NY", "non_target"),
    "ntl_state": ("Assessment", "text", "STATE", "non_target"),
    "nl_id": ("New lesion ID", "text", None, "new"),
    "nl_loc": ("New lesion location", "text", None, "new"),
    "nl_nodal": ("Lymph node", "text", "NY", "new"),
    "nl_category": ("New lesion category", "text", "NEWCAT", "new"),
    "nl_state": ("Assessment", "text", "STATE", "new"),
    "nl_diam": ("Diameter (mm)", "float", None, "new"),
    "sumdiam": ("Sum of diameters (mm)", "float", None, "response"),
    "trgresp": ("Target response", "text", "RESP", "response"),
    "ntrgresp": ("Non-target response", "text", "RESP", "response"),
    "newlprog": ("New lesion progression", "text", "NEWL", "response"),
    "ovrlresp": ("Overall response (confirmed by the reader)", "text", "RESP", "response"),
    "ovrlresp_computed": ("Overall response (computed)", "text", "RESP", "response"),
    "criteria": ("Response criteria", "text", "CRIT", "response"),
    "read_status": ("Read status", "text", "SIGN", "response"),
    "bestrsp": ("Best overall response", "text", "RESP", "best"),
    "bestrsp_date": ("Date of best overall response", "date", None, "best"),
    "cbestrsp": ("Confirmed best overall response", "text", "RESP", "best"),
    "pd_date": ("Date of progression", "date", None, "best"),
}
#: Code lists: key → (name, values).
CODELISTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "NY": ("No Yes Response", ("Y", "N")),
    "STATE": ("Lesion assessment", tuple(s.value for s in LesionState)),
    "METHOD": ("Measurement method", ("automatic", "manual")),
    "NEWCAT": ("New lesion category", tuple(c.value for c in Category if c.is_new)),
    "RESP": ("Response", tuple(r.value for r in Response)),
    "NEWL": ("New lesion progression", (NewLesionStatus.UNEQUIVOCAL.value,
                                        NewLesionStatus.EQUIVOCAL.value)),
    "CRIT": ("Response criteria", tuple(c.value for c in Criteria)),
    "SIGN": ("Read status", ("SIGNED", "UNSIGNED")),
}


def lesion_form(category: Category) -> str:
    """The form (``target``, ``non_target``, ``new``) a lesion of ``category`` is written on."""
    if category == Category.TARGET:
        return "target"
    return "non_target" if category == Category.NON_TARGET else "new"
