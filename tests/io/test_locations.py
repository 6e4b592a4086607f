"""Series locations as manifests and the store keep them: a path or a PACS reference."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from recist_tool.io.locations import series_found, series_location
from recist_tool.io.pacs.config import PacsError


def test_a_path_goes_through_the_callable_and_a_pacs_reference_is_normalised(tmp_path: Path,
                                                                              monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.chdir(tmp_path)
    assert series_location("ct/W06") == os.path.join(str(tmp_path), "ct", "W06")
    assert series_location(tmp_path / "a" / "b", lambda p: os.path.relpath(p, tmp_path)) == \
        os.path.join("a", "b")
    assert series_location("pacs://orthanc/1.2.3/1.2.3.4  ", lambda p: "not used") == \
        "pacs://orthanc/1.2.3/1.2.3.4"
    with pytest.raises(PacsError, match="not a PACS series reference"):
        series_location("pacs://orthanc/not-a-uid")


def test_series_found_asks_the_disk_for_paths_only(tmp_path: Path) -> None:
    assert series_found(tmp_path)
    assert not series_found(tmp_path / "missing")
    assert series_found("pacs://orthanc/1.2.3")  # the server is asked when it is opened
