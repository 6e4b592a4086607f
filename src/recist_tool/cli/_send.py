"""``--send SERVER`` of the commands that write DICOM (``export``, ``deidentify``): store the
files on the PACS and print what a search of the server finds."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from recist_tool.cli._app import console


def send_and_report(server_name: str, files: Sequence[Path]) -> None:
    """Store ``files`` on ``server_name`` (STOW-RS or C-STORE) and print what it holds of them.

    Raises
    ------
    PacsError
        Unknown server, refused login or objects, server down, or a sent object the search does
        not find (one line).
    """
    from recist_tool.io import pacs

    srv, held = pacs.send(server_name, files)
    how = "STOW-RS" if srv.protocol == "dicomweb" else "C-STORE"
    console.print(f"sent {sum(s.sent for s in held)} object(s) to PACS {srv.name} "
                  f"({srv.address}) by {how}; a search finds:", highlight=False, soft_wrap=True)
    for s in held:
        console.print(f"  study {s.study_uid} series {s.series_uid} ({s.modality}): "
                      f"{s.held_of_sent} of {s.sent} sent, {s.held} instance(s) in the series",
                      highlight=False, soft_wrap=True)
