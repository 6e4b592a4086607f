"""Named policies for the rule choices RECIST 1.1 leaves open, with documented defaults.

Every field of :class:`Policies` is one choice; ``docs/recist_engine.md`` explains each default.
Policies are read from the ``[recist]`` section of a trial settings TOML text with
:func:`policies_from_toml` (the caller reads the file; this module knows no files).
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, overload

from recist_tool.errors import InputError

__all__ = ["Policies", "policies_from_mapping", "policies_from_toml"]

PrMode = Literal["strict", "sticky"]
Reappearance = Literal["arithmetic", "after_confirmed_cr", "after_any_cr"]
NodesOnlyGrowth = Literal["cr", "pd"]
SameDay = Literal["worst", "last", "error"]
PartialDate = Literal["first", "last", "error"]


@dataclass(frozen=True)
class Policies:
    """Open RECIST 1.1 / iRECIST rule choices.

    Attributes
    ----------
    pr_mode : {"strict", "sticky"}
        ``strict`` (default): target PR at a timepoint only when its sum is ≤ 70 % of baseline.
        ``sticky``: once PR, the target stays PR until PD (or CR).
    nadir_complete_only : bool
        Default True: a sum with a target not assessed never becomes the nadir.
    nodes_only_growth : {"cr", "pd"}
        All non-nodal targets 0 and every target node < 10 mm, yet the sum grew ≥ 20 % and ≥ 5 mm:
        ``cr`` (default, the nodes are normal) or ``pd`` (arithmetic wins).
    reappearance_after_cr : {"arithmetic", "after_confirmed_cr", "after_any_cr"}
        A lesion reappearing after CR: ``after_confirmed_cr`` (default) makes it PD when the CR was
        definite (a second CR ≥ ``confirm_interval_days`` later, only CR/NE between);
        ``after_any_cr`` after any CR timepoint; ``arithmetic`` only by the sum rule.
    sd_min_days : int
        SD (and NON-CR/NON-PD) counts for best response only at ≥ this many days (inclusive) after
        the reference date (default 42).
    reference : str
        Which reference date the SD window starts from: the name of the DM variable (default
        ``RFSTDTC``, randomisation/reference start; ``RFXSTDTC`` for first treatment).
    confirmation : bool
        Whether the headline best response requires confirmation (both are always computed).
    confirm_interval_days : int
        Minimum days between a CR/PR and its confirming assessment (default 28, inclusive).
    confirm_max_ne : int
        Maximum NE assessments between a response and its confirmation (default 1).
    confirm_accept_sd : bool
        Whether one SD between a PR and its confirmation is accepted (default False).
    truncate_at_pd : bool
        Best response uses assessments up to and including the first PD only (default True).
    same_day : {"worst", "last", "error"}
        Several overall responses on one date: keep the worst (default), the last given, or fail.
    backdate_equivocal_pd : bool
        An equivocal new lesion confirmed later dates PD back to its first appearance (default).
    partial_date : {"first", "last", "error"}
        Imputation of a partial assessment date (``2014-02``): ``last`` day of month (default, as
        the pharmaverse ADRS), ``first``, or refuse.
    missing_as_ne : bool
        A subject without any assessment gets best response NE instead of MISSING (default False).
    irecist_confirm_min_days : int
        iRECIST: an assessment earlier than this after iUPD confirms iCPD only by a further new
        lesion (default 28).
    irecist_confirm_max_days : int
        iRECIST: the recommended latest confirmation (default 56); later confirmations are noted in
        the reasons, not refused.
    """

    pr_mode: PrMode = "strict"
    nadir_complete_only: bool = True
    nodes_only_growth: NodesOnlyGrowth = "cr"
    reappearance_after_cr: Reappearance = "after_confirmed_cr"
    sd_min_days: int = 42
    reference: str = "RFSTDTC"
    confirmation: bool = False
    confirm_interval_days: int = 28
    confirm_max_ne: int = 1
    confirm_accept_sd: bool = False
    truncate_at_pd: bool = True
    same_day: SameDay = "worst"
    backdate_equivocal_pd: bool = True
    partial_date: PartialDate = "last"
    missing_as_ne: bool = False
    irecist_confirm_min_days: int = 28
    irecist_confirm_max_days: int = 56

    def __post_init__(self) -> None:
        choices = {
            "pr_mode": ("strict", "sticky"),
            "nodes_only_growth": ("cr", "pd"),
            "reappearance_after_cr": ("arithmetic", "after_confirmed_cr", "after_any_cr"),
            "same_day": ("worst", "last", "error"),
            "partial_date": ("first", "last", "error"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise InputError(
                    f"policy {name}={getattr(self, name)!r} is not one of {', '.join(allowed)}"
                )
        for name in ("sd_min_days", "confirm_interval_days", "confirm_max_ne",
                     "irecist_confirm_min_days", "irecist_confirm_max_days"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise InputError(f"policy {name} must be a non-negative integer, got {value!r}")
        for name in ("nadir_complete_only", "confirmation", "confirm_accept_sd", "truncate_at_pd",
                     "backdate_equivocal_pd", "missing_as_ne"):
            if not isinstance(getattr(self, name), bool):
                raise InputError(
                    f"policy {name} must be true or false, got {getattr(self, name)!r}")

    def replace(self, **changes: Any) -> Policies:
        """A copy with some policies changed (validated)."""
        return dataclasses.replace(self, **changes)


_P = TypeVar("_P")


@overload
def policies_from_mapping(values: dict[str, Any], base: None = None) -> Policies: ...
@overload
def policies_from_mapping(values: dict[str, Any], base: _P) -> _P: ...
def policies_from_mapping(values: dict[str, Any], base: Any = None) -> Any:
    """Build :class:`Policies` from a mapping (e.g. a TOML table); unknown keys are an error.

    ``base`` gives the values not in the mapping, and its class the kind of policies (another
    frozen dataclass of policies, e.g. the endpoints' censoring rules); default ``Policies()``.
    """
    base = Policies() if base is None else base
    known = {f.name for f in dataclasses.fields(base)}
    unknown = sorted(set(values) - known)
    if unknown:
        kind = "RECIST policy" if isinstance(base, Policies) else "policy"
        raise InputError(f"unknown {kind} name(s): {', '.join(unknown)}; "
                         f"known: {', '.join(sorted(known))}")
    return dataclasses.replace(base, **values)


@overload
def policies_from_toml(text: str, section: str = "recist", source: str = "settings",
                       base: None = None) -> Policies: ...
@overload
def policies_from_toml(text: str, section: str = "recist", source: str = "settings", *,
                       base: _P) -> _P: ...
def policies_from_toml(text: str, section: str = "recist", source: str = "settings",
                       base: Any = None) -> Any:
    """Read the ``[section]`` table of a trial settings TOML text (defaults where absent).

    Parameters
    ----------
    text : str
        TOML document.
    section : str
        Table holding the policies (default ``recist``); dotted names reach nested tables.
    source : str
        Name used in error messages (e.g. the file name).
    base : policies dataclass, optional
        Defaults and kind of the policies (see :func:`policies_from_mapping`).
    """
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{source}: not valid TOML: {exc}") from exc
    table: Any = doc
    for part in section.split("."):
        table = table.get(part, {}) if isinstance(table, dict) else {}
    if not isinstance(table, dict):
        raise InputError(f"{source}: [{section}] is not a table")
    try:
        return policies_from_mapping(table, base)
    except InputError as exc:
        raise InputError(f"{source} [{section}]: {exc}") from exc
