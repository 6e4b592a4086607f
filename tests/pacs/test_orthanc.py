"""Against a real Orthanc: the sample trial's CT uploaded, read back by DICOMweb and DIMSE,
segmented and scored from the server, SR and SEG sent and searched; bad input as one line."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import numpy as np
import pytest

from recist_tool.cli import main
from tests.pacs.conftest import WRONG_PASSWORD, PacsSettings

SUBJECT, VISIT = "SYN-001", "BL"


def _timepoint(trial, subject: str = SUBJECT, visit: str = VISIT) -> dict:
    return trial.ground_truth["subjects"][subject]["timepoints"][visit]


def _ref(server: str, tp: dict) -> str:
    return f"pacs://{server}/{tp['study_uid']}/{tp['series_uid']}"


@pytest.mark.parametrize(("server", "from_bytes", "workers"), [
    ("web", True, None), ("web", True, 1), ("web", False, None), ("dimse", True, None),
    ("dimse", False, None)])
def test_series_from_server_equals_disk(on_server, pacs_settings: PacsSettings, server: str,
                                        from_bytes: bool, workers: int | None,
                                        monkeypatch) -> None:
    """The series from the server, its headers read from the bytes received (in a header
    process, or with one worker by the receiving thread) or from the files written (by the
    loader), is the disk's."""
    from recist_tool.io import load_volume, pacs
    from recist_tool.io.pacs.cache import SeriesCache

    tp = _timepoint(on_server)
    disk = load_volume(on_server.sample_dir / tp["series_path"], tp["series_uid"])
    get = pacs._ReceivedHeaders.get
    from_memory = []

    def spy(self, path: Path):  # type: ignore[no-untyped-def]
        got = get(self, path)
        if got is not None:
            from_memory.append(path)
        return got

    monkeypatch.setattr(pacs._ReceivedHeaders, "get", spy)
    monkeypatch.setattr(pacs, "HEADERS_FROM_BYTES", from_bytes)
    pacs.cache().root.mkdir(parents=True, exist_ok=True)
    SeriesCache(pacs.cache().root, 0).evict()  # an empty cache: the series is retrieved
    vol = load_volume(_ref(server, tp), workers=workers)
    assert len(from_memory) == (len(disk.meta.sop_instance_uids) if from_bytes else 0)
    assert vol.shape == disk.shape
    np.testing.assert_array_equal(vol.array, disk.array)
    np.testing.assert_array_equal(vol.affine, disk.affine)
    assert vol.spacing == disk.spacing
    assert vol.meta.sop_instance_uids == disk.meta.sop_instance_uids
    assert vol.meta.series_uid == tp["series_uid"] and vol.meta.study_uid == tp["study_uid"]
    assert vol.meta.warnings == disk.meta.warnings
    # read again: from the cache (one entry per server and series), same voxels
    again = load_volume(_ref(server, tp))
    np.testing.assert_array_equal(again.array, disk.array)


def test_study_reference_info_convert(on_server, pacs_settings: PacsSettings, tmp_path: Path,
                                     capsys) -> None:
    tp = _timepoint(on_server)
    assert main(["info", "--json", f"pacs://web/{tp['study_uid']}",
                 "--settings", str(pacs_settings.toml)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [s["series_uid"] for s in out["series"]] == [tp["series_uid"]]
    assert out["series"][0]["shape_zyx"] == tp["acquisition"]["shape_zyx"]
    assert main(["info", _ref("dimse", tp)]) == 0
    out = capsys.readouterr().out
    assert "CT series under" in out and "pacs://dimse/" in out  # the title names the reference
    assert f"#1 series UID {tp['series_uid']}" in out
    assert main(["convert", _ref("web", tp), "-o", str(tmp_path / "ct.nrrd"),
                 "--settings", str(pacs_settings.toml)]) == 0
    assert (tmp_path / "ct.nrrd").stat().st_size > 0


def test_segment_from_server(on_server, pacs_settings: PacsSettings, capsys) -> None:
    tp = _timepoint(on_server)
    seed = ",".join(str(v) for v in tp["lesions"]["T01"]["center_lps"])
    args = ["--seed-lps", seed, "--segmenter", "classic", "--json"]
    assert main(["segment", _ref("web", tp), *args]) == 0
    remote = json.loads(capsys.readouterr().out)
    assert main(["segment", str(on_server.sample_dir / tp["series_path"]), *args]) == 0
    local = json.loads(capsys.readouterr().out)
    for key in ("long_axis_mm", "short_axis_mm", "volume_ml", "n_voxels", "seed_zyx"):
        assert remote[key] == local[key], key


def test_batch_manifest_from_server(on_server, pacs_settings: PacsSettings, tmp_path: Path,
                                    capsys, monkeypatch) -> None:
    """The subject's baseline scored from pacs:// references measures what the disk run did;
    its SR, made from the CT on the server, goes back to the server."""
    from recist_tool.batch import run_batch

    tp = _timepoint(on_server)
    rows = [r for r in csv.DictReader((on_server.sample_dir / "manifest.csv").open())
            if r["subject"] == SUBJECT and r["visit"] == VISIT]
    for r in rows:
        r["series_path"] = f"pacs://dimse/{tp['study_uid']}"  # study: its CT series by series_uid
    manifest = tmp_path / "manifest.csv"
    with manifest.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    # one worker process: it finds the servers through the settings run_batch was given
    monkeypatch.delenv("RECIST_PACS_CONFIG")
    summary = run_batch(manifest, db=tmp_path / "r.db", outdir=tmp_path / "out", workers=1,
                        segmenter="classic", settings=pacs_settings.toml)
    assert all(r.ok for r in summary.results), [r.error for r in summary.results]
    got = {m.lesion_id: m for m in summary.measurements if m.visit == VISIT}
    disk = {m["lesion_id"]: m for m in csv.DictReader(
        (on_server.db_path.parent / "batch-out" / "measurements.csv").open())
        if m["subject"] == SUBJECT and m["visit"] == VISIT}
    assert set(got) == set(disk)
    for lid, m in got.items():
        assert float(m.long_axis_mm) == pytest.approx(float(disk[lid]["long_axis_mm"]), abs=0.05), lid
    # the store keeps the reference: the SR export reopens the CT from the server, and sends it
    rc = main(["export", "--db", str(tmp_path / "r.db"), "--format", "dicom-sr", "-o",
               str(tmp_path / "sr"), "--include-unsigned", "--send", "web"])
    assert rc == 0 and "1 of 1 sent" in capsys.readouterr().out


@pytest.mark.parametrize(("fmt", "server", "how"), [("dicom-sr", "web", "STOW-RS"),
                                                    ("dicom-seg", "dimse", "C-STORE")])
def test_export_send_and_search(on_server, pacs_settings: PacsSettings, tmp_path: Path, capsys,
                                fmt: str, server: str, how: str) -> None:
    import pydicom

    from recist_tool.io import pacs

    out = tmp_path / fmt
    rc = main(["export", "--db", str(on_server.db_path), "--format", fmt, "-o", str(out),
               "--include-unsigned", "--subject", SUBJECT, "--send", server,
               "--settings", str(pacs_settings.toml)])
    text = capsys.readouterr().out
    assert rc == 0, text
    files = sorted(out.rglob("*.dcm"))
    assert files and f"sent {len(files)} object(s) to PACS {server}" in text and how in text
    for f in files:
        ds = pydicom.dcmread(f, stop_before_pixels=True)
        line = next(ln for ln in text.splitlines() if str(ds.SeriesInstanceUID) in ln)
        assert "1 of 1 sent" in line
        # searched again by the other protocol: the server holds it
        other = pacs.server("dimse" if server == "web" else "web")
        mod = pacs._proto(other)
        assert str(ds.SOPInstanceUID) in mod.find_instances(other, str(ds.StudyInstanceUID),
                                                            str(ds.SeriesInstanceUID))
    if fmt == "dicom-sr":
        # the SR's TID 1411 groups reference the read's SEG, which is not on the server: the
        # lesions' lines place them, so import-sr from the server needs no SEG
        import highdicom as hd

        sr = hd.sr.srread(files[0])
        seg_uids = {g.referenced_segment.referenced_sop_instance_uid
                    for g in sr.content.get_volumetric_roi_measurement_groups()}
        assert seg_uids and not [u for u in seg_uids if pacs.find_object_series(
            server, str(sr.StudyInstanceUID), u, "SEG")]
        got = tmp_path / "imported.csv"
        assert main(["import-sr", f"pacs://{server}/{sr.StudyInstanceUID}/{sr.SeriesInstanceUID}",
                     "--settings", str(pacs_settings.toml), "-o", str(got)]) == 0
        assert got.read_text().count("\n") > 1


def _fails(argv: list[str], capsys) -> str:
    t0 = time.perf_counter()
    rc = main(argv)
    assert time.perf_counter() - t0 < 20, "a refusal or a server down is said at once"
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert rc != 0, captured.out
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert WRONG_PASSWORD not in err + captured.out
    return err


@pytest.mark.parametrize(("server", "message"), [
    ("nope", "PACS server 'nope' is not in"),
    ("down-web", "cannot be reached"),
    ("down-dimse", "cannot be reached"),
    ("wrong-login", "refused the login (HTTP 401)"),
    ("no-login", "refused the login (HTTP 401)"),
    ("shared-login", "readable by others"),
    ("intruder", "rejected the association"),
])
def test_bad_server_one_line(on_server, pacs_settings: PacsSettings, capsys, server: str,
                             message: str) -> None:
    tp = _timepoint(on_server)
    for argv in (["info", _ref(server, tp)],
                 ["segment", _ref(server, tp), "--seed", "1,1,1", "--segmenter", "classic"]):
        err = _fails(argv, capsys)
        assert err.startswith("error:") and message in err, err


def test_missing_series_and_study(on_server, pacs_settings: PacsSettings, capsys) -> None:
    tp = _timepoint(on_server)
    for server in ("web", "dimse"):
        err = _fails(["info", f"pacs://{server}/{tp['study_uid']}/1.2.3.4"], capsys)
        assert "holds no series 1.2.3.4" in err
        err = _fails(["info", f"pacs://{server}/1.2.3.4"], capsys)
        assert "holds no study 1.2.3.4" in err


def test_send_refusals(on_server, pacs_settings: PacsSettings, tmp_path: Path, capsys) -> None:
    base = ["export", "--db", str(on_server.db_path), "--include-unsigned", "--subject", SUBJECT]
    err = _fails([*base, "--format", "dicom-sr", "-o", str(tmp_path / "a"), "--send", "nope"], capsys)
    assert "PACS server 'nope'" in err and not (tmp_path / "a").exists()
    err = _fails([*base, "--format", "odm", "-o", str(tmp_path / "b"), "--send", "web"], capsys)
    assert "--send needs --format dicom-sr or dicom-seg" in err
    err = _fails([*base, "--format", "dicom-sr", "-o", str(tmp_path / "c"), "--send", "wrong-login"],
                 capsys)
    assert "refused the login" in err


def test_retrieve_write_failure_one_line(on_server, pacs_settings: PacsSettings, tmp_path: Path) -> None:
    """A cache file that cannot be written (its folder is gone) ends a WADO-RS retrieve with one
    line, raised in the caller's thread, and the writer thread is gone afterwards."""
    import threading

    from recist_tool.io.pacs import PacsError, server
    from recist_tool.io.pacs.dicomweb import retrieve_series

    tp = _timepoint(on_server)
    seen: list[int] = []
    with pytest.raises(PacsError) as err:
        retrieve_series(server("web"), tp["study_uid"], tp["series_uid"], tmp_path / "gone",
                        progress=seen.append)
    assert "\n" not in str(err.value) and "FileNotFoundError" in str(err.value)
    assert seen == []  # nothing was written, so no instance was reported
    assert not [t for t in threading.enumerate() if t.name == "recist-pacs-write"]
    # into a folder that exists, every instance is written and reported in order
    folder = tmp_path / "here"
    folder.mkdir()
    n = retrieve_series(server("web"), tp["study_uid"], tp["series_uid"], folder,
                        progress=seen.append)
    assert n > 1 and seen == list(range(1, n + 1))
    assert sorted(p.name for p in folder.iterdir()) == [f"{i:06d}.dcm" for i in range(1, n + 1)]
