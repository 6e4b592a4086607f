"""Fixtures of the report tests.

``scored_trial`` (``tests/conftest.py``): the sample trial scored once per session by
``recist batch``, ``(db_path, sample_dir, ground_truth)``.

``bad_store``: a fresh database without images holding the awkward cases a report must survive:
a subject with no measurements, a lesion measured only at baseline, a not-evaluable visit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

PASSWORD = "alice-pass-1"


@pytest.fixture
def bad_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Trial BAD: S-EMPTY (visits, nothing read), S-ODD (T02 only at baseline, W12 not evaluable,
    BL signed by alice), in a fresh SQLite file."""
    monkeypatch.setenv("RECIST_SCRYPT_N", "1024")
    from recist_tool.store import TrialStore

    s = TrialStore(tmp_path / "bad.db")
    s.add_reader("alice", PASSWORD, full_name="Alice Reader")
    s.add_trial("BAD")
    d0 = dt.date(2026, 1, 5)
    for code in ("S-EMPTY", "S-ODD"):
        s.add_subject("BAD", code, reference_date=d0)
        for visit, days in (("BL", 0), ("W06", 42), ("W12", 84)):
            s.add_timepoint(code, visit, d0 + dt.timedelta(days=days),
                            series_path=str(tmp_path / "no-such-series" / code / visit))
    r = "alice"
    s.add_lesion("S-ODD", "BL", "T01", "TARGET", reader=r, organ="liver")
    s.add_lesion("S-ODD", "BL", "T02", "TARGET", reader=r, organ="lung")
    s.add_lesion("S-ODD", "BL", "NT01", "NON-TARGET", reader=r, organ="bone")
    s.record_measurement("S-ODD", "BL", "T01", reader=r, long_axis_mm="30.0",
                         endpoints_lps={"long": [[0, 0, 0], [30, 0, 0]]})
    s.record_measurement("S-ODD", "BL", "T02", reader=r, long_axis_mm="22.4")
    s.assess_non_target("S-ODD", "BL", "NT01", "PRESENT", reader=r)
    s.record_measurement("S-ODD", "W06", "T01", reader=r, long_axis_mm="18.5")
    s.assess_non_target("S-ODD", "W06", "NT01", "PRESENT", reader=r)
    s.record_measurement("S-ODD", "W12", "T01", reader=r, state="NOT EVALUATED")
    s.assess_non_target("S-ODD", "W12", "NT01", "PRESENT", reader=r)
    s.compute_responses("S-ODD", reader=r)
    s.sign("S-ODD", "BL", reader=r, password=PASSWORD)
    yield s
    s.close()


class _Tables(HTMLParser):
    """Rows of every HTML table as lists of cell texts; also the data: image URIs."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.images: list[str] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images.append(dict(attrs).get("src") or "")
        elif tag == "br" and self._cell is not None:
            self._cell.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def parse_html(text: str) -> _Tables:
    """Parse a report's HTML (tables and images)."""
    p = _Tables()
    p.feed(text)
    return p


def pdf_pages(path: Path) -> int:
    """Page count of a PDF (pypdf)."""
    pypdf = pytest.importorskip("pypdf", reason="pypdf (test extra)")
    return len(pypdf.PdfReader(str(path)).pages)
