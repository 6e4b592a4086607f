"""Trial settings TOML → criteria, RECIST policies and visit schedule for :meth:`TrialStore.add_trial`.

```toml
[trial]
criteria = "iRECIST"                 # or "RECIST 1.1" (default)
visits = [{ name = "BL", day = 0 }, { name = "W06", day = 42, window_days = 7 }]

[recist]                             # policies, see docs/recist_engine.md
sd_min_days = 42
```
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from recist_tool.errors import InputError
from recist_tool.recist import policies_from_toml

__all__ = ["read_trial_settings"]


def read_trial_settings(path: Path | None) -> tuple[str, dict[str, Any], list[dict[str, Any]]]:
    """(criteria, policies as a mapping, visit schedule) from a settings file (defaults if None)."""
    if path is None:
        return "RECIST 1.1", {}, []
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from exc
    policies = policies_from_toml(text, source=str(path))
    doc = tomllib.loads(text)
    trial = doc.get("trial", {})
    if not isinstance(trial, dict):
        raise InputError(f"{path}: [trial] is not a table")
    criteria = str(trial.get("criteria", "RECIST 1.1"))
    visits = trial.get("visits", [])
    if not isinstance(visits, list) or not all(isinstance(v, dict) and "name" in v for v in visits):
        raise InputError(f"{path}: [trial] visits must be a list of tables with a name")
    values = {f: getattr(policies, f) for f in policies.__dataclass_fields__}
    return criteria, values, [dict(v) for v in visits]
