"""``recist import-sr`` on the SRs other tools write, through the real command line: dcmjs/OHIF
Length and Bidirectional, highdicom TID 1410 / 1411 / 1501 groups; one-line errors with exit 3
and nothing written when it fails."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from pydicom.sr.codedict import codes

from recist_tool.cli import main
from tests.export.pacs_fixtures import tiny_series
from tests.io import sr_builders as srb
from tests.io.dicom_factory import write_series
from tests.io.test_sr_templates import RHOMBUS, lps, same_line

RULER = ((6.0, 30.0), (21.0, 34.0))
LONG, SHORT = ((10.0, 20.0), (26.0, 20.0)), ((18.0, 15.0), (18.0, 26.0))


@pytest.fixture
def ct(tmp_path: Path):
    return tiny_series(tmp_path / "ct")


@pytest.fixture
def seg_and_mask(ct):
    return srb.blob_seg(ct)


def rows(path: Path) -> dict[str, dict[str, str]]:
    return {r["lesion_id"]: r for r in csv.DictReader(path.open())}


def line_of(row: dict[str, str]) -> np.ndarray:
    return np.array([[float(row[f"line_{a}{k}"]) for a in "xyz"] for k in (1, 2)])


def seed_of(row: dict[str, str]) -> np.ndarray:
    return np.array([float(row[f"seed_{a}"]) for a in "xyz"])


def test_dcmjs_length_becomes_a_long_axis_only_target_with_its_line(ct, tmp_path, capsys):
    vol, h = ct.volume, ct.headers
    sr = srb.dcmjs_sr(tmp_path / "ohif.dcm", h, [
        srb.Ruler("Length", h[4], (RULER,), (12.43,)),
        srb.Ruler("Bidirectional", h[3], (LONG, SHORT), (12.8, 7.7)),
    ], subject="SYN-9")
    out = tmp_path / "m.csv"
    assert main(["import-sr", str(sr), "--ct", str(tmp_path / "ct"), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "skipped" not in printed
    got = rows(out)
    assert sorted(got) == ["T01", "T02"]
    t01, t02 = got["T01"], got["T02"]
    assert (t01["subject"], t01["visit"], t01["category"]) == ("SYN-9", "BL", "target")
    ruler = lps(vol, 4, RULER)
    np.testing.assert_allclose(line_of(t01), ruler, atol=0.006)  # the segmentation prompt
    np.testing.assert_allclose(seed_of(t01), ruler.mean(axis=0), atol=0.006)
    assert same_line(line_of(t02), lps(vol, 3, LONG), atol=0.006)
    assert t01["series_uid"] == vol.meta.series_uid
    # recist batch takes it: the lesion given by its line
    from recist_tool.batch.manifest import read_manifest

    (case,) = read_manifest(out)
    lines = {les.lesion_id: les.line_lps for les in case.lesions}
    np.testing.assert_allclose(np.asarray(lines["T01"]), ruler, atol=0.006)


@pytest.mark.parametrize("unit", [srb.PX, ("1", "UCUM", "1")])
def test_pixel_units_exit_3_one_line_naming_the_group_nothing_written(ct, tmp_path, capsys, unit):
    h = ct.headers
    sr = srb.dcmjs_sr(tmp_path / "px.dcm", h, [
        srb.Ruler("Bidirectional", h[3], (LONG, SHORT), (12.8, 7.7)),
        srb.Ruler("Length", h[4], (RULER,), (28.0,), unit=unit),
    ], subject="SYN-9")
    out = tmp_path / "new" / "m.csv"
    assert main(["import-sr", str(sr), "--ct", str(tmp_path / "ct"), "-o", str(out)]) == 3
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "measurement group 2 (Cornerstone3DTools@^0.1.0:Length): Length 28 is in unit '1'" in err
    assert not out.exists() and not out.parent.exists()


def test_highdicom_planar_volumetric_and_line_groups_into_the_database(ct, seg_and_mask, tmp_path,
                                                                         capsys):
    import highdicom as hd

    from recist_tool.measure.mask import measure_mask
    from recist_tool.store import TrialStore

    vol, h = ct.volume, ct.headers
    seg, mask = seg_and_mask
    read = tmp_path / "read"
    read.mkdir()
    seg.save_as(read / "seg.dcm")
    groups = [
        srb.region_group("T03", h[6], "POLYLINE", RHOMBUS,
                     [hd.sr.Measurement(name=codes.SCT.Diameter, value=1.6,
                                        unit=codes.UCUM.Centimeter)]),
        srb.segment_group("T01", seg, 1, vol.meta.series_uid),
        srb.line_group("T02", [srb.line_measurement(codes.SCT.Length, 17.8, codes.UCUM.Millimeter, h[4],
                                            RULER)]),
    ]
    sr = srb.highdicom_sr(read / "sr.dcm", h, groups, evidence=[seg])
    db = tmp_path / "trial.db"
    with TrialStore(db) as store:
        store.add_reader("pacs", "pacs-password", full_name="PACS Reader")
        store.add_trial("TR")
    args = ["import-sr", str(sr), "--ct", str(tmp_path / "ct"), "--subject", "SYN-9",
            "--db", str(db), "--reader", "pacs"]
    out = tmp_path / "m.csv"
    assert main([*args, "-o", str(out)]) == 3  # unknown subject, no --trial: nothing written
    assert "SYN-9 is not in the database; give --trial" in capsys.readouterr().err
    assert not out.exists()
    with TrialStore(db, read_only=True) as store:
        assert store.subject_info("SYN-9") is None
    assert main([*args, "--trial", "TR", "-o", str(out)]) == 0
    got = rows(out)
    assert sorted(got) == ["T01", "T02", "T03"]
    assert same_line(line_of(got["T03"]), lps(vol, 6, RHOMBUS)[[0, 2]], atol=0.006)
    want = measure_mask(vol, mask)
    assert same_line(line_of(got["T01"]), np.asarray(want.long_axis_endpoints_lps), atol=0.006)
    with TrialStore(db, read_only=True) as store:
        ms = {m.lesion_id: m for m in store.get_read("SYN-9", "BL", reader="pacs").measurements}
    assert float(ms["T03"].long_axis_mm) == pytest.approx(16.0, abs=0.05)
    assert float(ms["T03"].short_axis_mm) == pytest.approx(15.4, abs=0.05)
    assert float(ms["T02"].long_axis_mm) == pytest.approx(17.8, abs=0.05)
    assert ms["T02"].short_axis_mm is None
    assert float(ms["T01"].long_axis_mm) == pytest.approx(want.long_axis_mm, abs=0.05)
    assert float(ms["T01"].volume_ml) == pytest.approx(want.volume_ml, abs=1e-3)
    # again: the reader has these lesions already; refused before any row or file is written
    out2 = tmp_path / "m2.csv"
    assert main([*args, "-o", str(out2)]) == 3
    assert "pacs already has lesion(s) T01, T02, T03 of SYN-9" in capsys.readouterr().err
    assert not out2.exists()


def test_a_seg_only_sr_picks_its_source_series(ct, seg_and_mask, tmp_path):
    seg, _ = seg_and_mask
    write_series(tmp_path / "ct" / "zz-other", n=10, shape=(12, 10), seed=5)  # a second series
    seg.save_as(tmp_path / "seg.dcm")
    sr = srb.highdicom_sr(tmp_path / "sr.dcm", ct.headers,
                      [srb.segment_group("Measurements group 1", seg, 1, ct.volume.meta.series_uid)],
                      evidence=[seg])
    out = tmp_path / "m.csv"
    assert main(["import-sr", str(sr), "--ct", str(tmp_path / "ct"), "--subject", "SYN-9",
                 "-o", str(out)]) == 0
    (row,) = rows(out).values()
    assert row["series_uid"] == ct.volume.meta.series_uid and row["organ"] == "liver"
