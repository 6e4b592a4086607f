"""De-identified copies of CT series for a core lab, matching the de-identified SR and SEG.

:func:`deidentify_ct` reads every file of the CT series given (folders, zip archives or PACS
references; :func:`recist_tool.io.ct_files.iter_ct_datasets`), de-identifies each with
:func:`recist_tool.export.deidentify.deidentify_dataset` (PS3.15 Annex E Basic Profile; the
trial's ``[deidentify]`` settings and UID secret) and writes them under the output folder. With
the secret ``recist export --format dicom-sr|dicom-seg --deidentify`` uses, the de-identified
Study, Series, SOP Instance and Frame of Reference UIDs of the CT are the ones the SR and SEG
reference, so a core lab receives CT, SR and SEG that still point at one another.

Layout: ``OUT/<subject>/<series UID>/<SOP instance UID>.dcm`` (de-identified UIDs: digits and
dots), placed through :class:`recist_tool.io.outputs.OutputSet`; all files or none appear.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from recist_tool.codes import validate_code
from recist_tool.errors import UsageError
from recist_tool.export.deidentify import DeidSettings, deidentify_dataset

__all__ = ["DeidentifiedCT", "deidentify_ct"]


@dataclass
class DeidentifiedCT:
    """What :func:`deidentify_ct` wrote.

    Attributes
    ----------
    files : list of Path
        The de-identified files, in the order written.
    series : dict
        De-identified SeriesInstanceUID → number of files.
    skipped : int
        Objects of the sources that are not part of a CT series (not copied).
    """

    files: list[Path] = field(default_factory=list)
    series: dict[str, int] = field(default_factory=dict)
    skipped: int = 0


def deidentify_ct(sources: Sequence[str | os.PathLike[str]], out_dir: str | os.PathLike[str],
                  cfg: DeidSettings, *, subject: str, trial: str = "", visit: str = ""
                  ) -> DeidentifiedCT:
    """Write de-identified copies of the CT series of ``sources`` under ``out_dir``.

    Parameters
    ----------
    sources : sequence of path-like
        Folders, zip archives, files or ``pacs://`` references (each may hold several series).
    out_dir : path-like
        Output folder (created); files go to ``<subject>/<series UID>/<SOP UID>.dcm``.
    cfg : DeidSettings
        The trial's ``[deidentify]`` settings and secret (:func:`read_deid_settings`).
    subject : str
        The trial subject code: Patient ID and Name, Clinical Trial Subject ID.
    trial : str
        The trial's name (Clinical Trial Protocol ID when the settings name no ``protocol_id``).
    visit : str
        Clinical Trial Time Point ID (optional).

    Returns
    -------
    DeidentifiedCT

    Raises
    ------
    InputError
        An invalid subject or visit code; a source without CT (``DicomLoadError``); a PACS that
        cannot be used.
    UsageError
        No Clinical Trial Protocol ID (neither ``protocol_id`` in the settings nor ``trial``).
    """
    from recist_tool.io.ct_files import iter_ct_datasets
    from recist_tool.io.dicom_headers import Skipped
    from recist_tool.io.outputs import atomic_outputs

    validate_code(subject, "subject")
    if visit:
        validate_code(visit, "visit")
    if not (cfg.protocol_id or trial):
        raise UsageError("the Clinical Trial Protocol ID is needed: protocol_id in [deidentify] "
                         "or --trial")
    result = DeidentifiedCT()
    skipped: list[Skipped] = []
    with atomic_outputs(out_dir) as out:
        for source in sources:
            for _stack, ds in iter_ct_datasets(source, skipped=skipped):
                deidentify_dataset(ds, cfg, subject=subject, trial=trial, visit=visit)
                name = Path(subject) / str(ds.SeriesInstanceUID) / f"{ds.SOPInstanceUID}.dcm"
                ds.save_as(out.path(name), enforce_file_format=True)
                result.series[str(ds.SeriesInstanceUID)] = \
                    result.series.get(str(ds.SeriesInstanceUID), 0) + 1
    result.files, result.skipped = out.finals, len(skipped)
    return result
