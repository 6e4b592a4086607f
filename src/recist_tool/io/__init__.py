"""Input and output of images: the only layer that opens files.

Public API
----------
scan(path) -> ScanResult
    Every CT stack found under a path (folder, zip, DICOMDIR, file) and every object skipped,
    with its reason.
load_volume(path, series=None, workers=None, resample=False) -> Volume
    One CT volume from DICOM (any of the above) or a NIfTI/NRRD/MHA file.
save_volume(volume, path)
    NIfTI (exact, sheared allowed), NRRD or MHA.
"""

from recist_tool.io.dicom import ScanResult, load_dicom_file, load_volume, scan
from recist_tool.io.volume_files import load_volume_file, volume_format
from recist_tool.io.volume_files import save_volume_file as save_volume

__all__ = ["ScanResult", "load_dicom_file", "load_volume", "load_volume_file", "save_volume",
           "scan", "volume_format"]
