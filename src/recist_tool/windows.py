"""CT display windows: the one table of window presets the reading workstation and the reports use.

A window is ``(level, width)`` in Hounsfield units; it shows ``level ± width / 2``.
"""

from __future__ import annotations

__all__ = ["WINDOWS", "ORGAN_WINDOWS", "DEFAULT_WINDOW", "window_for", "window_limits"]

#: Window presets: name → (level, width) in HU.
WINDOWS: dict[str, tuple[float, float]] = {
    "lung": (-600.0, 1500.0),
    "soft tissue": (40.0, 400.0),
    "bone": (400.0, 1800.0),
    "liver": (60.0, 200.0),
}
#: The window of an organ: (keyword, window name); the first keyword found in the organ wins.
ORGAN_WINDOWS: tuple[tuple[str, str], ...] = (("lung", "lung"), ("bone", "bone"), ("liver", "liver"))
#: The window of any other organ, and of a series when it is first shown.
DEFAULT_WINDOW = "soft tissue"


def window_for(organ: str) -> tuple[str, float, float]:
    """The display window of a lesion in ``organ``.

    Parameters
    ----------
    organ : str
        Free text (``"liver"``, ``"right lung"`` ...).

    Returns
    -------
    (name, level, width)
        The window's name and its level and width in HU.
    """
    o = (organ or "").lower()
    name = next((n for key, n in ORGAN_WINDOWS if key in o), DEFAULT_WINDOW)
    return (name, *WINDOWS[name])


def window_limits(level: float, width: float) -> tuple[float, float]:
    """The lowest and highest HU a window ``(level, width)`` shows."""
    return (level - width / 2.0, level + width / 2.0)
