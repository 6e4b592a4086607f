"""EDC mapping (ODM OIDs, REDCap names) shared by the ODM and REDCap exporters.

The default mapping ships as package data (``default_mapping.toml``); a trial passes its own file
(``options["mapping"]``, CLI ``--mapping``) to target its existing EDC forms. The set of keys the
default file defines is the set every mapping must define: a missing key is refused with a
message naming it, before anything is written.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from recist_tool.errors import InputError

__all__ = ["EdcMapping", "load_mapping", "oid_safe", "DEFAULT_MAPPING"]

#: Package resource name of the default mapping.
DEFAULT_MAPPING = "default_mapping.toml"
_OID_BAD = re.compile(r"[^A-Za-z0-9._-]+")
_REDCAP_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def oid_safe(text: str) -> str:
    """``text`` with every run of characters an OID should not hold replaced by ``_``."""
    out = _OID_BAD.sub("_", text.strip()).strip("_")
    return out or "X"


def _default_text() -> str:
    return resources.files("recist_tool.export").joinpath(DEFAULT_MAPPING).read_text("utf-8")


def _keys(tree: Mapping[str, Any], prefix: str = "") -> set[str]:
    """Dotted paths of the leaves of ``tree`` (tables listed as free-form are not required)."""
    out: set[str] = set()
    for k, v in tree.items():
        path = f"{prefix}{k}"
        if isinstance(v, dict):
            if path in ("odm.visits", "redcap.events"):
                continue
            out |= _keys(v, path + ".")
        else:
            out.add(path)
    return out


def _get(tree: Mapping[str, Any], path: str) -> Any:
    node: Any = tree
    for part in path.split("."):
        node = node[part]
    return node


@dataclass(frozen=True)
class EdcMapping:
    """A validated mapping: ``get("odm.items.tl_id")`` and the format helpers below."""

    tree: dict[str, Any]
    source: str

    def get(self, path: str) -> Any:
        """The value at a dotted path (validated to exist at load time)."""
        return _get(self.tree, path)

    def text(self, path: str, **fmt: str) -> str:
        """A string value with its ``{placeholders}`` filled in."""
        value = str(self.get(path))
        try:
            return value.format(**fmt)
        except (KeyError, IndexError, ValueError) as exc:
            raise InputError(f"{self.source}: {path} = {value!r}: unknown or bad placeholder "
                             f"({exc}); allowed: {', '.join('{' + k + '}' for k in fmt)}") from exc

    # --- ODM ---------------------------------------------------------------------------------

    def odm_item(self, key: str) -> str:
        """ItemOID of a logical item (``tl_id``, ``ovrlresp``, ...)."""
        return str(self.get(f"odm.items.{key}"))

    def odm_visit(self, visit: str, trial: str) -> str:
        """StudyEventOID of a visit (explicit entry, else the pattern)."""
        explicit = self.tree["odm"].get("visits", {})
        if visit in explicit:
            return str(explicit[visit])
        return self.text("odm.visit_oid_pattern", visit=oid_safe(visit), trial=oid_safe(trial))

    # --- REDCap ------------------------------------------------------------------------------

    def redcap_field(self, key: str) -> str:
        """REDCap variable name of a logical item."""
        return str(self.get(f"redcap.fields.{key}"))

    def redcap_event(self, visit: str) -> str:
        """Unique REDCap event name of a visit."""
        explicit = self.tree["redcap"].get("events", {})
        arm = str(self.get("redcap.arm"))
        if visit in explicit:
            name = str(explicit[visit])
        else:
            name = self.text("redcap.event_pattern", visit=_redcap_slug(visit), arm=arm)
        return self._check_redcap(name, f"redcap event of visit {visit}")

    def redcap_best_event(self) -> str:
        """Unique REDCap event name of the best-response event."""
        return self._check_redcap(self.text("redcap.best_event", arm=str(self.get("redcap.arm"))),
                                  "redcap.best_event")

    def _check_redcap(self, name: str, what: str) -> str:
        if not _REDCAP_NAME.match(name):
            raise InputError(f"{self.source}: {what} = {name!r} is not a REDCap name "
                             "(lower-case letters, digits and _, starting with a letter)")
        return name


def _redcap_slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    return slug if slug and slug[0].isalpha() else f"v_{slug}"


def load_mapping(path: str | Path | None = None) -> EdcMapping:
    """Load and validate a mapping file (``None``: the default shipped with recist-tool).

    Raises
    ------
    InputError
        The file cannot be read or parsed, lacks a key the default defines (named), holds a
        non-string OID, duplicate item OIDs, or REDCap names REDCap would refuse.
    """
    default = tomllib.loads(_default_text())
    if path is None:
        tree, source = default, f"recist_tool/export/{DEFAULT_MAPPING}"
    else:
        source = str(path)
        try:
            tree = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise InputError(f"cannot read mapping {path}: {exc.strerror or exc}") from exc
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"{path}: not a valid TOML mapping: {exc}") from exc
    present = _keys(tree)
    missing = sorted(_keys(default) - present)
    if missing:
        more = f" (and {len(missing) - 5} more)" if len(missing) > 5 else ""
        raise InputError(f"{source}: mapping misses {', '.join(missing[:5])}{more}")
    for section in ("odm.items", "redcap.fields"):
        values = _get(tree, section)
        seen: dict[str, str] = {}
        for key, value in values.items():
            if not isinstance(value, str) or not value.strip():
                raise InputError(f"{source}: {section}.{key} must be a non-empty string")
            if value in seen:
                raise InputError(f"{source}: {section}.{key} and {section}.{seen[value]} both map "
                                 f"to {value!r}")
            seen[value] = key
    m = EdcMapping(tree, source)
    for key, value in tree["redcap"]["fields"].items():
        m._check_redcap(value, f"redcap.fields.{key}")
    for key, value in tree["redcap"]["instruments"].items():
        m._check_redcap(value, f"redcap.instruments.{key}")
    m._check_redcap(str(tree["redcap"]["record_id"]), "redcap.record_id")
    return m
