"""Read and write CDISC SDTM data sets as CSV (the file side of :mod:`recist_tool.recist.sdtm`).

Rows come back as ``(source, row)`` pairs where ``source`` is ``file:line`` (the physical line of
the CSV record, header = line 1) so that the engine's errors name the row.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from recist_tool.codes import validate_code
from recist_tool.errors import InputError
from recist_tool.io.outputs import write_csv as write_rows

__all__ = ["read_sdtm_csv", "write_csv"]


#: Columns holding codes (:mod:`recist_tool.codes`), checked as they are read; empty cells are
#: left to the engine (which says which ones it needs). VISIT is a label (VISITNUM keys the visit).
CODE_COLUMNS = {"USUBJID": "subject", "TULNKID": "lesion", "TULINKID": "lesion",
                "TRLNKID": "lesion", "TRLINKID": "lesion"}


def _check_codes(row: Mapping[str, str], where: str) -> None:
    for column, kind in CODE_COLUMNS.items():
        value = row.get(column, "").strip()
        if value:
            validate_code(value, kind, where=f"{where}: {column}")


def read_sdtm_csv(
    path: str | os.PathLike[str], required: Sequence[str] = ()
) -> list[tuple[str, dict[str, str]]]:
    """Read an SDTM CSV file into ``(file:line, row)`` pairs; column names are upper-cased.

    Raises
    ------
    InputError
        If the file cannot be read, is empty, lacks one of the ``required`` columns, or holds a
        subject or lesion code (:data:`CODE_COLUMNS`) outside :mod:`recist_tool.codes`' rule.
    """
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames is None:
                raise InputError(f"{path}: empty file (no header)")
            header = [h.strip().upper() for h in reader.fieldnames]
            missing = [c for c in required if c not in header]
            if missing:
                raise InputError(f"{path}:1: missing column(s) {', '.join(missing)}")
            rows: list[tuple[str, dict[str, str]]] = []
            line = reader.line_num
            for raw in reader:
                start = line + 1
                line = reader.line_num
                if None in raw:
                    raise InputError(f"{path.name}:{start}: more fields than header columns")
                row = {k.strip().upper(): (v if v is not None else "") for k, v in raw.items()}
                _check_codes(row, f"{path.name}:{start}")
                rows.append((f"{path.name}:{start}", row))
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{path}: not a readable CSV file: {exc}") from exc
    return rows


def write_csv(path: str | Path, columns: Sequence[str], rows: Iterable[Mapping[str, str]]) -> int:
    """Write ``rows`` with the given ``columns`` (text quoted like SDTM exports); returns count.

    Cells go through :func:`recist_tool.io.outputs.write_csv` (formula cells neutralised).
    """
    return write_rows(path, columns, rows, quoting=csv.QUOTE_NONNUMERIC)
