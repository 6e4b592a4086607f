"""The vocabulary of subject, visit, lesion and reader codes: one character set and length rule.

These codes become folder and file names (``<subject>/<subject>_<visit>_SR.dcm``,
``<subject>.html``, mask folders), DICOM attributes, SAS XPT values and CSV cells. They are checked
where they enter (batch manifest, DICOM SR import, SDTM CSV, the trial database's create calls,
hence the CLI and the reading workstation), so a code can neither name a path outside the chosen
output folder nor break a file name or a spreadsheet.

The rule (:data:`CODE_RULE`, in words for messages and the docs):

* 1 to :data:`MAX_CODE_LENGTH` characters: 64 for subject, visit and reader codes, 16 for lesion
  codes. These are the widths of their columns in the trial database (``recist_tool.store.models``;
  PostgreSQL enforces them), 64 is also the longest DICOM LO value (Clinical Trial Subject ID,
  Time Point ID) and both are within the 200 characters of a SAS transport v5 value. So a
  ``<subject>_<visit>_SR.dcm`` name stays far below the 255 bytes a file system allows;
* only ASCII letters ``A-Z a-z``, digits ``0-9``, space, ``-``, ``_`` and ``.``;
* the first character a letter or a digit (so no leading dot, space or ``-``: never ``.``,
  ``..``, a hidden file, an option or a spreadsheet formula);
* the last character not a space or a dot (Windows drops those from file names);
* not a Windows device name (:data:`WINDOWS_DEVICE_NAMES`: ``CON``, ``NUL``, ``COM1``, ... in
  any case, alone or before a dot): a file so named is the device on Windows, and what is
  written to it is lost.

So ``01-701-1015``, ``SYN-001``, ``WEEK 6``, ``UNSCHEDULED 9.2``, ``T01`` and ``rad1`` are codes;
``../x``, ``a/b``, ``.hidden``, ``-rf``, ``=HYPERLINK(...)``, ``S1 `` and ``Müller`` are not
(a slash, backslash, NUL or any control character never is). SDTM ``VISIT`` labels are not codes
(``VISITNUM`` keys the visit there) and are not checked.
"""

from __future__ import annotations

import re

from recist_tool.errors import InputError

__all__ = ["CODE_KINDS", "CODE_RULE", "MAX_CODE_LENGTH", "WINDOWS_DEVICE_NAMES", "code_problem",
           "is_device_name", "validate_code"]

#: Longest code of each kind (characters): its column's width in the trial database.
MAX_CODE_LENGTH = {"subject": 64, "visit": 64, "lesion": 16, "reader": 64}
#: What a code names.
CODE_KINDS = tuple(MAX_CODE_LENGTH)
#: The rule in words (error messages and documentation).
CODE_RULE = ("ASCII letters, digits, space, '-', '_', '.'; starting with a letter or digit, not "
             "ending in a space or '.'")

#: Names Windows keeps for devices, whatever follows them after a dot (Microsoft, "Naming Files,
#: Paths, and Namespaces").
WINDOWS_DEVICE_NAMES = frozenset({"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10)),
                                  *(f"LPT{i}" for i in range(10))})
_ALLOWED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 -_.")
_FIRST = re.compile(r"[A-Za-z0-9]")
_SHOWN = 40  # characters of a bad code quoted in a message


def _shown(value: str) -> str:
    """``repr`` of the value, cut to :data:`_SHOWN` characters (control characters escaped)."""
    if len(value) <= _SHOWN:
        return repr(value)
    return f"{value[:_SHOWN]!r}... ({len(value)} characters)"


def is_device_name(name: str) -> bool:
    """Whether a file name is a Windows device (:data:`WINDOWS_DEVICE_NAMES`).

    Examples
    --------
    >>> is_device_name("con"), is_device_name("NUL.txt"), is_device_name("COM10")
    (True, True, False)
    """
    return name.split(".", 1)[0].rstrip(" ").upper() in WINDOWS_DEVICE_NAMES


def code_problem(value: object, kind: str) -> str | None:
    """Why ``value`` is not a valid ``kind`` code, in one line; ``None`` when it is valid.

    Parameters
    ----------
    value : object
        The candidate code (only ``str`` can be valid).
    kind : {"subject", "visit", "lesion", "reader"}

    Returns
    -------
    str or None
        E.g. ``"subject code '../x' contains '/' (allowed: ...)"``.
    """
    if kind not in CODE_KINDS:
        raise ValueError(f"unknown code kind {kind!r}")
    if not isinstance(value, str):
        return f"{kind} code {value!r} is not text"
    if not value:
        return f"{kind} code is empty"
    head = f"{kind} code {_shown(value)}"
    if len(value) > MAX_CODE_LENGTH[kind]:
        return f"{head} is longer than {MAX_CODE_LENGTH[kind]} characters"
    bad = next((c for c in value if c not in _ALLOWED), None)
    if bad is not None:
        return f"{head} contains {bad!r} (allowed: {CODE_RULE})"
    if not _FIRST.fullmatch(value[0]):
        return f"{head} starts with {value[0]!r} (allowed: {CODE_RULE})"
    if value[-1] in " .":
        return f"{head} ends with {value[-1]!r} (allowed: {CODE_RULE})"
    if is_device_name(value):
        return f"{head} is a Windows device name, which no file can be named"
    return None


def validate_code(value: object, kind: str, *, where: str = "") -> str:
    """Return ``value`` when it is a valid ``kind`` code (see the module docstring).

    Parameters
    ----------
    value : object
        The candidate code.
    kind : {"subject", "visit", "lesion", "reader"}
    where : str, optional
        Prefix of the message naming the source (``file:line``, an option, a DICOM attribute).

    Returns
    -------
    str
        ``value`` unchanged.

    Raises
    ------
    InputError
        One line naming the kind, the bad value (cut when long) and the rule.
    """
    why = code_problem(value, kind)
    if why is not None:
        raise InputError(f"{where}: {why}" if where else why)
    assert isinstance(value, str)
    return value
