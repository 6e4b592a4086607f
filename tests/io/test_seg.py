"""DICOM SEG reader: a SEG written with highdicom is read back onto the referenced geometry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recist_tool.errors import DicomLoadError, GeometryError, InputError
from recist_tool.volume import Volume, VolumeMeta

hd = pytest.importorskip("highdicom")
pydicom = pytest.importorskip("pydicom")

from pydicom.dataset import Dataset, FileMetaDataset  # noqa: E402
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid  # noqa: E402

from recist_tool.io.seg import is_dicom_seg, list_segments, read_seg  # noqa: E402


def _ct_series(positions: np.ndarray, ny: int = 32, nx: int = 40, spacing=(0.7, 0.8)):
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    out = []
    for k, pos in enumerate(positions):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.PatientID, ds.PatientName, ds.PatientBirthDate, ds.PatientSex = "P1", "T^P", "", "O"
        ds.StudyDate, ds.StudyTime, ds.AccessionNumber = "20240101", "120000", "A1"
        ds.ReferringPhysicianName, ds.StudyID = "", "1"
        ds.Modality, ds.SeriesNumber, ds.InstanceNumber, ds.Manufacturer = "CT", 1, k + 1, "x"
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [float(c) for c in pos]
        ds.PixelSpacing = list(spacing)
        ds.SliceThickness = 1.0
        ds.Rows, ds.Columns, ds.SamplesPerPixel = ny, nx, 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope = 0, 1
        ds.PixelData = np.zeros((ny, nx), np.int16).tobytes()
        out.append(ds)
    return out


def _write_seg(tmp: Path, sources, masks: list[np.ndarray]) -> Path:
    code = hd.sr.CodedConcept
    abnormal = code("49755003", "SCT", "Morphologically abnormal structure")
    descs = [
        hd.seg.SegmentDescription(
            segment_number=i + 1, segment_label=f"T0{i + 1}",
            segmented_property_category=abnormal,
            segmented_property_type=code("108369006", "SCT", "Neoplasm"),
            algorithm_type="MANUAL",
        )
        for i in range(len(masks))
    ]
    pixels = np.stack(masks, axis=-1).astype(np.uint8)
    seg = hd.seg.Segmentation(
        source_images=sources, pixel_array=pixels, segmentation_type="BINARY",
        segment_descriptions=descs, series_instance_uid=generate_uid(), series_number=2,
        sop_instance_uid=generate_uid(), instance_number=1, manufacturer="test",
        manufacturer_model_name="test", software_versions="0", device_serial_number="1",
    )
    path = tmp / "lesion.seg.dcm"
    seg.save_as(path)
    return path


def _reference(sources, with_uids: bool) -> Volume:
    pos = np.array([[float(c) for c in ds.ImagePositionPatient] for ds in sources])
    uids = tuple(ds.SOPInstanceUID for ds in sources) if with_uids else ()
    return Volume.from_slices(np.zeros((len(sources), 32, 40), np.int16), pos, (1, 0, 0),
                              (0, 1, 0), (0.7, 0.8), meta=VolumeMeta(sop_instance_uids=uids))


def _masks():
    a = np.zeros((6, 32, 40), bool)
    a[2:4, 10:20, 12:25] = True
    b = np.zeros((6, 32, 40), bool)
    b[4, 3:6, 30:35] = True
    return a, b


def test_seg_on_its_own_grid(tmp_path: Path) -> None:
    src = _ct_series(np.array([[0.0, 0.0, 2.0 * k] for k in range(6)]))
    a, b = _masks()
    path = _write_seg(tmp_path, src, [a, b])
    assert is_dicom_seg(path)
    assert [s.label for s in list_segments(path)] == ["T01", "T02"]
    v = read_seg(path, segment_number=1)
    assert v.spacing[1:] == (0.7, 0.8)
    k = np.flatnonzero(v.array.reshape(v.shape[0], -1).any(axis=1))
    np.testing.assert_allclose(v.slice_positions[k][:, 2], [4.0, 6.0])
    assert int(v.array.sum()) == int(a.sum())
    both = read_seg(path)
    assert set(np.unique(both.array)) == {0, 1, 2}


@pytest.mark.parametrize("with_uids", [True, False])
def test_seg_on_reference_geometry(tmp_path: Path, with_uids: bool) -> None:
    src = _ct_series(np.array([[0.0, 0.0, 2.0 * k] for k in range(6)]))
    a, b = _masks()
    path = _write_seg(tmp_path, src, [a, b])
    ref = _reference(src, with_uids)
    v = read_seg(path, segment_number=1, reference=ref)
    assert v.shape == ref.shape
    np.testing.assert_array_equal(v.array > 0, a)
    np.testing.assert_array_equal(v.slice_positions, ref.slice_positions)
    labels = read_seg(path, reference=ref).array
    np.testing.assert_array_equal(labels == 2, b)


def test_seg_on_tilted_uneven_reference(tmp_path: Path) -> None:
    z = np.array([0.0, 1.0, 3.5, 4.0, 7.0, 9.0])
    src = _ct_series(np.stack([np.zeros(6), z * 0.3, z], axis=1))
    a, _ = _masks()
    path = _write_seg(tmp_path, src, [a])
    ref = _reference(src, with_uids=True)
    assert ref.is_sheared and not ref.is_uniform
    v = read_seg(path, reference=ref)
    np.testing.assert_array_equal(v.array > 0, a)

    from recist_tool.measure import measure_mask

    r = measure_mask(v)
    counts = a.reshape(6, -1).sum(axis=1)
    assert r.volume_ml == pytest.approx(float(counts @ ref.voxel_volume_ml()))


def test_seg_errors(tmp_path: Path) -> None:
    src = _ct_series(np.array([[0.0, 0.0, 2.0 * k] for k in range(6)]))
    a, _ = _masks()
    path = _write_seg(tmp_path, src, [a])
    with pytest.raises(InputError, match="no segment 3"):
        read_seg(path, segment_number=3)
    other = _ct_series(np.array([[0.0, 0.0, 2.0 * k + 1.0] for k in range(6)]))
    with pytest.raises(GeometryError, match="no slice"):
        read_seg(path, reference=_reference(other, with_uids=False))
    not_seg = tmp_path / "ct.dcm"
    src[0].save_as(not_seg, enforce_file_format=True)
    assert not is_dicom_seg(not_seg)
    with pytest.raises(DicomLoadError):
        read_seg(not_seg)
    with pytest.raises(InputError, match="no such file"):
        read_seg(tmp_path / "missing.dcm")


def test_cli_measures_a_seg(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from recist_tool.cli import main

    src = _ct_series(np.array([[0.0, 0.0, 2.0 * k] for k in range(6)]))
    a, b = _masks()
    path = _write_seg(tmp_path, src, [a, b])
    assert main(["measure", str(path), "--json"]) == 2  # two segments, none chosen
    capsys.readouterr()
    assert main(["measure", str(path), "--label", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["volume_ml"] == pytest.approx(a.sum() * 0.7 * 0.8 * 2.0 / 1000)
    assert out["long_axis_mm"] == pytest.approx(np.hypot(10 * 0.7, 13 * 0.8), abs=1.0)
    assert out["slice_index"] in (0, 1)  # on the SEG's own grid (frames 2 and 3 only)


def test_cli_seg_on_a_tilted_dicom_series(tmp_path: Path, capsys) -> None:
    """End to end: DICOM series (tilted) + SEG -> recist measure --image: exact geometry."""
    import json

    from recist_tool.cli import main
    from recist_tool.io import load_volume
    from tests.io.dicom_factory import write_series

    files, _ = write_series(tmp_path / "ct", n=6, shape=(32, 40), gap=2.5, tilt_shift_mm=0.9)
    sources = [pydicom.dcmread(f) for f in files]
    sources.sort(key=lambda ds: float(ds.ImagePositionPatient[2]))
    defaults = dict(PatientName="T^P", PatientID="P1", PatientBirthDate="", PatientSex="O",
                    StudyDate="20240101", StudyTime="120000", AccessionNumber="A1",
                    ReferringPhysicianName="", StudyID="1", Manufacturer="x")
    for ds in sources:  # attributes highdicom copies into the SEG
        for key, value in defaults.items():
            if key not in ds:
                setattr(ds, key, value)
    image = load_volume(tmp_path / "ct")
    assert image.is_sheared
    mask = np.zeros(image.shape, bool)
    mask[1:4, 8:20, 10:30] = True
    path = _write_seg(tmp_path, sources, [mask])
    assert main(["measure", str(path), "--image", str(tmp_path / "ct"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    from recist_tool.measure import measure_mask

    ref = measure_mask(image, mask)
    assert out["long_axis_mm"] == pytest.approx(ref.long_axis_mm)
    assert out["slice_index"] == ref.slice_index
    np.testing.assert_allclose(out["long_axis_endpoints_lps"], ref.long_axis_endpoints_lps)
    assert out["volume_ml"] == pytest.approx(
        float(mask.reshape(6, -1).sum(axis=1) @ image.voxel_volume_ml()))
