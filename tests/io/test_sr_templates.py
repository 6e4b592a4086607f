"""Reading the SRs other tools write: PS3.16 TID 1500 with TID 1410 planar ROIs (highdicom),
TID 1411 volumetric ROIs with a SEG reference (dcmqi's form), TID 1501 groups (Length,
Bidirectional; dcmjs/OHIF's structure), units converted or refused. Values to 0.1 mm."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
from pydicom.sr.codedict import codes

from recist_tool.errors import DicomLoadError, InputError
from recist_tool.io.sr import locate_lesions, perpendicular_chord, read_measurement_report
from tests.export.pacs_fixtures import tiny_series
from tests.io.sr_builders import (
    PX,
    Ruler,
    blob_seg,
    dcmjs_sr,
    highdicom_sr,
    line_group,
    line_measurement,
    region_group,
    segment_group,
)
from tests.io.sr_builders import tracking as tracking_id

#: A rhombus (column, row) on a 0.8 mm (columns) x 0.7 mm (rows) grid: 22 rows tall (15.4 mm) and
#: 20 columns wide (16.0 mm): in pixels the vertical diagonal is the longer one, in mm the
#: horizontal one, so the long axis must be measured on the image geometry.
RHOMBUS = [(8.0, 20.0), (18.0, 9.0), (28.0, 20.0), (18.0, 31.0), (8.0, 20.0)]


@pytest.fixture
def ct(tmp_path: Path):
    return tiny_series(tmp_path / "ct")


def lps(vol, k: int, cr) -> np.ndarray:
    """LPS of SCOORD (column, row) points on slice ``k``."""
    return vol.index_to_lps(np.array([(float(k), r - 0.5, c - 0.5) for c, r in cr]))


def same_line(a: np.ndarray, b: np.ndarray, atol: float = 0.05) -> bool:
    """The same segment, either way round."""
    return bool(np.allclose(a, b, atol=atol) or np.allclose(a, b[::-1], atol=atol))


def test_tid1410_outlines_give_longest_chord_in_mm_and_the_stated_diameter(ct, tmp_path):
    import highdicom as hd

    vol, h = ct.volume, ct.headers
    assert vol.spacing[1:] == pytest.approx((0.7, 0.8))
    circle = [(18.0, 20.0), (24.0, 20.0)]  # radius 6 columns = 4.8 mm
    ellipse = [(8.0, 20.0), (28.0, 20.0), (18.0, 14.0), (18.0, 26.0)]  # 16.0 x 8.4 mm
    groups = [
        region_group("T03", h[3], "POLYLINE", RHOMBUS,
                     [hd.sr.Measurement(name=codes.SCT.Diameter, value=1.6,
                                        unit=codes.UCUM.Centimeter)]),
        region_group("T04", h[5], "CIRCLE", circle),
        region_group("T05", h[2], "ELLIPSE", ellipse),
        region_group("T06", h[6], "POLYLINE", RHOMBUS),
    ]
    path = highdicom_sr(tmp_path / "planar.dcm", h, groups)
    rep = read_measurement_report(path)
    assert [g.template for g in rep.groups] == ["1410"] * 4 and rep.skipped == ()
    got = {les.lesion_id: les for les in locate_lesions(rep, vol)}
    assert sorted(got) == ["T03", "T04", "T05", "T06"]

    # outline: the longest chord in mm (brute force over vertex pairs) is the horizontal diagonal
    pts = lps(vol, 6, RHOMBUS[:-1])
    i, j = max(combinations(range(4), 2), key=lambda ij: np.linalg.norm(pts[ij[0]] - pts[ij[1]]))
    assert (i, j) == (0, 2)
    t06 = got["T06"]
    assert t06.slice_index == 6 and t06.template == "1410"
    assert t06.long_axis_mm == pytest.approx(16.0, abs=0.05)
    assert same_line(t06.long_lps, pts[[0, 2]])
    assert t06.short_axis_mm == pytest.approx(15.4, abs=0.05)  # the other diagonal
    assert same_line(t06.short_lps, pts[[1, 3]])
    np.testing.assert_allclose(t06.seed_lps, pts.mean(axis=0), atol=0.05)
    # the stated Diameter (1.6 cm) is the value; the line is the outline's longest chord
    t03 = got["T03"]
    assert t03.long_axis_mm == pytest.approx(16.0, abs=0.05) and t03.slice_index == 3
    assert same_line(t03.long_lps, lps(vol, 3, RHOMBUS)[[0, 2]])
    # circle: a diameter through the given point, and the one across it
    t04 = got["T04"]
    assert (t04.long_axis_mm, t04.short_axis_mm) == (pytest.approx(9.6, abs=0.05),
                                                    pytest.approx(9.6, abs=0.05))
    c = lps(vol, 5, circle)
    assert same_line(t04.long_lps, np.stack([2 * c[0] - c[1], c[1]]))
    assert abs(float((t04.long_lps[1] - t04.long_lps[0]) @ (t04.short_lps[1] - t04.short_lps[0]))) \
        < 1e-6
    # ellipse: major and minor axis
    t05 = got["T05"]
    assert (t05.long_axis_mm, t05.short_axis_mm) == (pytest.approx(16.0, abs=0.05),
                                                    pytest.approx(8.4, abs=0.05))
    assert same_line(t05.long_lps, lps(vol, 2, ellipse[:2]))


def test_perpendicular_chord_takes_the_longest_inside_piece_not_the_hull_width():
    # a "U" lying on its back: across the two arms a vertical line is inside for 6 mm; in the
    # middle only the 2 mm bar (the hull is 6 mm wide everywhere)
    u = np.array([(0, 0), (20, 0), (20, 6), (18, 6), (18, 2), (2, 2), (2, 6), (0, 6)], float)
    p, q = perpendicular_chord(u, np.array([0.0, -1.0]), np.array([20.0, -1.0]))
    assert np.linalg.norm(q - p) == pytest.approx(6.0, abs=1e-5)
    assert p[0] <= 2.0 + 1e-5 or p[0] >= 18.0 - 1e-5
    # a "C" open to the right: a line across the opening is inside twice for 2 mm each
    c = np.array([(0, 0), (10, 0), (10, 2), (2, 2), (2, 8), (10, 8), (10, 10), (0, 10)], float)
    p, q = perpendicular_chord(c, np.array([5.0, 0.0]), np.array([5.0, 10.0]))
    assert np.linalg.norm(q - p) == pytest.approx(10.0, abs=1e-5)  # along the back, x = 0..10


@pytest.fixture
def seg_and_mask(ct):
    return blob_seg(ct)


def test_tid1411_segment_is_measured_on_the_ct_like_a_mask(ct, seg_and_mask, tmp_path):
    import highdicom as hd

    from recist_tool.measure.mask import measure_mask

    seg, mask = seg_and_mask
    folder = tmp_path / "read"
    folder.mkdir()
    seg.save_as(folder / "liver_seg.dcm")
    vol_item = hd.sr.Measurement(name=codes.SCT.Volume, value=1234.0,
                                 unit=codes.UCUM.CubicMillimeter)
    group = segment_group("Measurements group 1", seg, 1, ct.volume.meta.series_uid, [vol_item])
    path = highdicom_sr(folder / "sr.dcm", ct.headers, [group], evidence=[seg])
    rep = read_measurement_report(path)
    (g,) = rep.groups
    assert g.template == "1411" and g.segment.segment_number == 1
    assert g.source_series_uid == ct.volume.meta.series_uid and g.volume_ml == pytest.approx(1.234)
    (les,) = locate_lesions(rep, ct.volume)
    want = measure_mask(ct.volume, mask)
    assert les.slice_index == want.slice_index == 3
    assert les.long_axis_mm == pytest.approx(want.long_axis_mm, abs=0.05)
    assert les.short_axis_mm == pytest.approx(want.short_axis_mm, abs=0.05)
    assert les.long_axis_mm == pytest.approx(2 * 11 * 0.8 + 0.8, abs=1.0)  # ~ the blob's width
    assert same_line(les.long_lps, np.asarray(want.long_axis_endpoints_lps), atol=1e-3)
    assert les.volume_ml == pytest.approx(1.234) and les.organ == "liver"
    assert les.lesion_id == "T01" and les.template == "1411"
    # the SEG is looked for next to the SR and under the CT; elsewhere it is an error naming it
    (folder / "liver_seg.dcm").unlink()
    with pytest.raises(InputError, match=r"measurement group 1 \(Measurements group 1\): the SEG "
                                         r"it references \(2\.25\.78\) is not in"):
        locate_lesions(rep, ct.volume)


def test_tid1501_length_only_and_bidirectional_with_cm_and_um(ct, tmp_path):
    vol, h = ct.volume, ct.headers
    ruler = [(5.0, 5.0), (25.0, 15.0)]
    long, short = [(10.0, 20.0), (26.0, 20.0)], [(18.0, 15.0), (18.0, 26.0)]
    groups = [
        line_group("T02", [line_measurement(codes.SCT.Length, 1.78, codes.UCUM.Centimeter,
                                            h[4], ruler)]),
        line_group("T01", [line_measurement(codes.SCT.LongAxis, 12.8, codes.UCUM.Millimeter,
                                            h[3], long),
                           line_measurement(codes.SCT.ShortAxis, 7700.0, codes.UCUM.Micrometer,
                                            h[3], short)]),
    ]
    rep = read_measurement_report(highdicom_sr(tmp_path / "lines.dcm", h, groups))
    got = {les.lesion_id: les for les in locate_lesions(rep, vol)}
    t02 = got["T02"]  # the ruler: a long-axis-only target, its line the segmentation prompt
    assert (t02.category, t02.long_axis_mm, t02.short_axis_mm, t02.short_lps) == \
        ("TARGET", pytest.approx(17.8), None, None)
    np.testing.assert_allclose(t02.long_lps, lps(vol, 4, ruler), atol=1e-3)
    np.testing.assert_allclose(t02.seed_lps, lps(vol, 4, ruler).mean(axis=0), atol=1e-3)
    t01 = got["T01"]
    assert (t01.long_axis_mm, t01.short_axis_mm) == (pytest.approx(12.8), pytest.approx(7.7))
    np.testing.assert_allclose(t01.short_lps, lps(vol, 3, short), atol=1e-3)


@pytest.mark.parametrize("unit, shown", [(PX, r"'1' \(px\)"), (("[arb'U]", "UCUM", "arb"),
                                                               r"'\[arb'U\]' \(arb\)")])
def test_a_length_in_pixels_is_refused_naming_the_group(ct, tmp_path, unit, shown):
    from highdicom.sr import CodedConcept

    h = ct.headers
    groups = [
        line_group("T01", [line_measurement(codes.SCT.Length, 20.0, codes.UCUM.Millimeter, h[3],
                                            [(5.0, 5.0), (25.0, 15.0)])]),
        line_group("T02", [line_measurement(codes.SCT.Length, 31.0, CodedConcept(*unit), h[3],
                                            [(5.0, 5.0), (25.0, 15.0)])]),
    ]
    path = highdicom_sr(tmp_path / "px.dcm", h, groups)
    with pytest.raises(DicomLoadError, match=r"measurement group 2 \(T02\): Length 31 is in unit "
                                             + shown) as err:
        read_measurement_report(path)
    assert "\n" not in str(err.value)


def test_dcmjs_length_bidirectional_and_3d_length(ct, tmp_path):
    vol, h = ct.volume, ct.headers
    ruler = ((6.0, 30.0), (21.0, 34.0))
    long, short = ((10.0, 20.0), (26.0, 20.0)), ((18.0, 15.0), (18.0, 26.0))
    line3d = lps(vol, 5, [(4.0, 4.0), (14.0, 10.0)])
    rulers = [
        Ruler("Length", h[4], (ruler,), (12.43,)),
        Ruler("Bidirectional", h[3], (long, short), (12.8, 7.7), label="T07"),
        Ruler("Length", h[5], (), (1.0,), unit=("cm", "UCUM", "cm"), lps=(line3d,)),
    ]
    rep = read_measurement_report(dcmjs_sr(tmp_path / "ohif.dcm", h, rulers))
    assert rep.skipped == () and [g.template for g in rep.groups] == ["1501"] * 3
    got = locate_lesions(rep, vol)
    assert [les.lesion_id for les in got] == ["T01", "T07", "T02"]
    t01, t07, t02 = got
    assert (t01.long_axis_mm, t01.short_axis_mm, t01.slice_index) == (pytest.approx(12.43), None, 4)
    np.testing.assert_allclose(t01.long_lps, lps(vol, 4, ruler), atol=1e-3)
    assert (t07.long_axis_mm, t07.short_axis_mm) == (pytest.approx(12.8), pytest.approx(7.7))
    assert (t02.long_axis_mm, t02.short_axis_mm, t02.slice_index) == (pytest.approx(10.0), None, 5)
    np.testing.assert_allclose(t02.long_lps, line3d, atol=1e-6)
    # dcmjs's uncalibrated-image unit: refused, naming the group
    rulers[1] = Ruler("Bidirectional", h[3], (long, short), (16.0, 9.6), unit=PX, label="T07")
    with pytest.raises(DicomLoadError, match=r"measurement group 2 \(Cornerstone3DTools@\^0\.1\.0:"
                                             r"Bidirectional:T07\): Long Axis 16 is in unit '1' "
                                             r"\(px\)"):
        read_measurement_report(dcmjs_sr(tmp_path / "px.dcm", h, rulers))


def test_groups_without_a_length_are_skipped_a_length_without_a_place_is_refused(ct, tmp_path):
    import highdicom as hd

    h = ct.headers
    hu = hd.sr.Measurement(name=codes.DCM.AttenuationCoefficient, value=37.3,
                           unit=codes.UCUM.HounsfieldUnit)
    length = hd.sr.Measurement(name=codes.SCT.Length, value=20.0, unit=codes.UCUM.Millimeter)
    ok = line_group("T01", [line_measurement(codes.SCT.Length, 20.0, codes.UCUM.Millimeter, h[3],
                                             [(5.0, 5.0), (25.0, 15.0)])])
    rep = read_measurement_report(highdicom_sr(tmp_path / "a.dcm", h, [ok, line_group("HU", [hu])]))
    assert len(rep.groups) == 1
    assert rep.skipped == ("measurement group 2 (HU): no Long Axis, Length or Diameter "
                           "measurement",)
    with pytest.raises(DicomLoadError, match=r"measurement group 2 \(T02\): the Length has no "
                                             "image coordinates"):
        read_measurement_report(highdicom_sr(tmp_path / "b.dcm", h,
                                             [ok, line_group("T02", [length])]))
    point = region_group("T03", h[3], "POINT", [(5.0, 5.0)], [length])
    with pytest.raises(DicomLoadError, match=r"measurement group 1 \(T03\): the region is a POINT"):
        read_measurement_report(highdicom_sr(tmp_path / "c.dcm", h, [point]))


def test_a_3d_polygon_region_and_a_volumetric_group_of_per_slice_outlines(ct, tmp_path):
    import highdicom as hd

    vol, h = ct.volume, ct.headers
    small = [(12.0, 20.0), (18.0, 14.0), (24.0, 20.0), (18.0, 26.0), (12.0, 20.0)]  # 9.6 mm wide
    poly3d = lps(vol, 5, RHOMBUS)
    planar3d = hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=tracking_id("T01"),
        referenced_region=hd.sr.ImageRegion3D(graphic_type="POLYGON", graphic_data=poly3d,
                                              frame_of_reference_uid=h[0].FrameOfReferenceUID))
    regions = [hd.sr.ImageRegion(graphic_type="POLYLINE", graphic_data=np.asarray(pts),
                                 source_image=hd.sr.SourceImageForRegion(
                                     referenced_sop_class_uid=h[k].SOPClassUID,
                                     referenced_sop_instance_uid=h[k].SOPInstanceUID))
               for k, pts in ((2, small), (3, RHOMBUS), (4, small))]
    volumetric = hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=tracking_id("T02"), referenced_regions=regions)
    rep = read_measurement_report(highdicom_sr(tmp_path / "r.dcm", h, [planar3d, volumetric]))
    assert [g.template for g in rep.groups] == ["1410", "1411"]
    t01, t02 = locate_lesions(rep, vol)
    assert (t01.slice_index, t01.long_axis_mm, t01.short_axis_mm) == \
        (5, pytest.approx(16.0, abs=0.05), pytest.approx(15.4, abs=0.05))
    assert same_line(t01.long_lps, poly3d[[0, 2]])
    # the slice whose outline has the longest chord
    assert (t02.slice_index, t02.long_axis_mm) == (3, pytest.approx(16.0, abs=0.05))
    assert same_line(t02.long_lps, lps(vol, 3, RHOMBUS)[[0, 2]])


def test_a_path_length_along_a_polyline_is_skipped_not_a_caliper(ct, tmp_path):
    h = ct.headers
    ok = line_group("T01", [line_measurement(codes.SCT.Length, 20.0, codes.UCUM.Millimeter, h[3],
                                             [(5.0, 5.0), (25.0, 15.0)])])
    path = line_group("P1", [line_measurement(codes.SCT.Length, 31.0, codes.UCUM.Millimeter, h[3],
                                              [(5.0, 5.0), (15.0, 5.0), (15.0, 25.0)])])
    rep = read_measurement_report(highdicom_sr(tmp_path / "p.dcm", h, [ok, path]))
    assert [g.lesion_id for g in rep.groups] == ["T01"]
    assert rep.skipped == ("measurement group 2 (P1): a Length along a 3-point path, not a "
                           "caliper line",)
