"""Trial settings TOML → criteria, RECIST policies, visit schedule and evaluator identifiers.

```toml
[trial]
criteria = "iRECIST"                 # or "RECIST 1.1" (default)
visits = [{ name = "BL", day = 0 }, { name = "W06", day = 42, window_days = 7 }]

[recist]                             # policies, see docs/recist_engine.md
sd_min_days = 42

[endpoints]                          # censoring rules, see docs/endpoints.md
assessment_interval_days = 42

[evaluators]                         # reader account → --EVALID of SDTM exports (docs/export_edc.md)
rad1 = "RADIOLOGIST 1"
batch = "ALGORITHM 1"
```
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from recist_tool.errors import InputError
from recist_tool.recist import policies_from_toml
from recist_tool.recist.endpoints import EndpointPolicies

__all__ = ["EVALID_MAX_LENGTH", "read_endpoint_policies", "read_evaluator_ids", "read_trial_settings"]

#: Longest --EVALID accepted: what a SAS transport (XPT v5) text value holds.
EVALID_MAX_LENGTH = 200


def _read_text(path: Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from exc


def _table(doc: dict[str, Any], name: str, path: Path) -> dict[str, Any]:
    table = doc.get(name, {})
    if not isinstance(table, dict):
        raise InputError(f"{path}: [{name}] is not a table")
    return table


def read_trial_settings(path: Path | None) -> tuple[str, dict[str, Any], list[dict[str, Any]]]:
    """(criteria, policies as a mapping, visit schedule) from a settings file (defaults if None)."""
    if path is None:
        return "RECIST 1.1", {}, []
    text = _read_text(path)
    policies = policies_from_toml(text, source=str(path))
    trial = _table(tomllib.loads(text), "trial", path)
    criteria = str(trial.get("criteria", "RECIST 1.1"))
    visits = trial.get("visits", [])
    if not isinstance(visits, list) or not all(isinstance(v, dict) and "name" in v for v in visits):
        raise InputError(f"{path}: [trial] visits must be a list of tables with a name")
    values = {f: getattr(policies, f) for f in policies.__dataclass_fields__}
    return criteria, values, [dict(v) for v in visits]


def read_endpoint_policies(path: Path | None) -> EndpointPolicies:
    """The censoring rules of the ``[endpoints]`` table (defaults where absent or without a file).

    Raises
    ------
    InputError
        Not TOML, ``[endpoints]`` not a table, an unknown name or a value out of its choices.
    """
    if path is None:
        return EndpointPolicies()
    return policies_from_toml(_read_text(path), section="endpoints", source=str(path),
                              base=EndpointPolicies())


def read_evaluator_ids(path: Path | None) -> dict[str, str]:
    """Reader account → ``--EVALID`` from the ``[evaluators]`` table (empty without one).

    Parameters
    ----------
    path : Path or None
        The trial settings TOML; None gives ``{}`` (the exports then number the readers, see
        :func:`recist_tool.store.snapshot.default_evaluator_ids`).

    Raises
    ------
    InputError
        Not TOML, ``[evaluators]`` not a table, a value that is not text, empty, longer than
        :data:`EVALID_MAX_LENGTH`, not printable ASCII (what SAS transport files hold), or one
        identifier given to two accounts (their records would merge).
    """
    if path is None:
        return {}
    try:
        doc = tomllib.loads(_read_text(path))
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: not valid TOML: {exc}") from exc
    out: dict[str, str] = {}
    owner: dict[str, str] = {}
    for login, value in _table(doc, "evaluators", path).items():
        where = f"{path} [evaluators] {login}"
        if not isinstance(value, str):
            raise InputError(f"{where}: must be text, e.g. \"RADIOLOGIST 1\" (got {value!r})")
        value = " ".join(value.split())
        if not value:
            raise InputError(f"{where}: empty evaluator identifier")
        if len(value) > EVALID_MAX_LENGTH:
            raise InputError(f"{where}: longer than {EVALID_MAX_LENGTH} characters")
        if not (value.isascii() and value.isprintable()):
            raise InputError(f"{where}: {value!r} is not printable ASCII (SAS transport files "
                             "hold ASCII only)")
        if value in owner:
            raise InputError(f"{where}: the same --EVALID {value!r} as {owner[value]}")
        owner[value] = login
        out[login] = value
    return out
