"""napari plugin of recist-tool: the RECIST reading workstation (npe2 manifest ``napari.yaml``).

Contributions: a reader for CT series (DICOM folder / zip / DICOMDIR, NIfTI, NRRD, MHA) that opens
each series as an image layer in patient millimetres; the synthetic RECIST trial as sample data;
and the dock widget "RECIST reading" (:class:`napari_recist._widget.ReadingWidget`). All business
logic lives in :mod:`recist_tool.reading`.
"""

__all__: list[str] = []
