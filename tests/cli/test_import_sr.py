"""``recist import-sr``: export → import round trip, manifest for ``recist batch``, store rows."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from recist_tool.cli import main
from tests.conftest import ScoredTrial


def test_usage_and_input_errors(tmp_path: Path) -> None:
    assert main(["import-sr", str(tmp_path / "none.dcm"), "--ct", str(tmp_path)]) == 3
    assert main(["import-sr", str(tmp_path / "none.dcm"), "--ct", str(tmp_path),
                 "--db", str(tmp_path / "x.db")]) == 2  # --db needs --reader
    assert main(["import-sr", str(tmp_path / "none.dcm"), "--ct", str(tmp_path),
                 "--date", "03/03/2025"]) == 2


@pytest.mark.slow
def test_round_trip_gives_the_stored_lesions_axes_and_seeds(
        scored_trial: ScoredTrial, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from recist_tool.batch.manifest import read_manifest
    from recist_tool.export import run_export
    from recist_tool.io import load_volume
    from recist_tool.io.masks import load_mask_crop
    from recist_tool.store import TrialStore

    with TrialStore(scored_trial.db_path, read_only=True) as store:
        sr = run_export(store, "dicom-sr", tmp_path / "sr", include_unsigned=True)[0]  # BL
        bl = store.get_read("SYN-001", "BL", reader="batch")
        tp = store.timepoint_info("SYN-001", "BL")
    ct = scored_trial.sample_dir / "SYN-001"  # all three visits: the SR's series is picked
    out = tmp_path / "imp" / "manifest.csv"
    assert main(["import-sr", str(sr), "--ct", str(ct), "-o", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    stored = {m.lesion_id: m for m in bl.measurements}
    assert sorted(r["lesion_id"] for r in rows) == sorted(stored)
    vol = load_volume(tp.series_path, tp.series_uid)
    for r in rows:
        m = stored[r["lesion_id"]]
        assert (r["subject"], r["visit"], r["date"]) == ("SYN-001", "BL", tp.date.isoformat())
        assert r["category"] == m.category.lower() and r["organ"] == m.organ
        assert r["nodal"] == ("true" if m.nodal else "false")
        assert r["series_uid"] == tp.series_uid
        seed = np.array([float(r["seed_x"]), float(r["seed_y"]), float(r["seed_z"])])
        long = np.array(m.endpoints_lps["long"])
        short = np.array(m.endpoints_lps["short"])
        # the seed is the crossing of the stored axes (to the manifest's 0.01 mm rounding) ...
        for seg in (long, short):
            d = seg[1] - seg[0]
            t = float((seed - seg[0]) @ d / (d @ d))
            assert 0.0 <= t <= 1.0 and np.linalg.norm(seg[0] + t * d - seed) < 0.5
        # ... and lies inside the lesion the batch segmented
        arr, off = load_mask_crop(m.mask_path, vol)
        z, y, x = np.rint(vol.lps_to_index(seed)).astype(int) - np.array(off)
        assert arr[z, y, x], r["lesion_id"]
        # the SR's long axis is the caliper line the batch segments the lesion from
        line = np.array([[float(r[f"line_{a}{k}"]) for a in "xyz"] for k in (1, 2)])
        np.testing.assert_allclose(np.sort(line, axis=0), np.sort(long, axis=0), atol=0.006)
    # recist batch takes the manifest as it is
    cases = read_manifest(out)
    assert [c.visit for c in cases] == ["BL"] and len(cases[0].lesions) == len(rows)
    assert all(les.line_lps is not None for les in cases[0].lesions)
    assert Path(cases[0].series_path).resolve() == ct.resolve()

    # recorded in a new database as a reader's manual baseline read
    db = tmp_path / "pacs.db"
    with TrialStore(db) as store:
        store.add_reader("pacs", "pacs-password", full_name="PACS Reader")
    assert main(["import-sr", str(sr), "--ct", str(ct), "-o", str(tmp_path / "m2.csv"),
                 "--db", str(db), "--reader", "pacs"]) == 3  # subject unknown, no --trial
    assert main(["import-sr", str(sr), "--ct", str(ct), "-o", str(tmp_path / "m2.csv"),
                 "--db", str(db), "--reader", "pacs", "--trial", "ES-SCLC"]) == 3  # no such trial
    assert capsys.readouterr().err.strip().endswith(
        "trial 'ES-SCLC' not found in the database; create it first: recist trial add ES-SCLC "
        "[--settings trial.toml]")
    with TrialStore(db) as store:
        store.add_trial("ES-SCLC")
    assert main(["import-sr", str(sr), "--ct", str(ct), "-o", str(tmp_path / "m2.csv"),
                 "--db", str(db), "--reader", "pacs", "--trial", "ES-SCLC"]) == 0
    with TrialStore(db, read_only=True) as store:
        read = store.get_read("SYN-001", "BL", reader="pacs")
        info = store.timepoint_info("SYN-001", "BL")
        assert store.subject_for_patient("SYN-001") == "SYN-001"
    assert info.series_uid == tp.series_uid and Path(info.series_path) == ct.resolve()
    got = {m.lesion_id: m for m in read.measurements}
    assert sorted(got) == sorted(stored)
    for lid, m in stored.items():
        g = got[lid]
        assert (g.long_axis_mm, g.short_axis_mm, g.method) == (m.long_axis_mm, m.short_axis_mm,
                                                                "manual")
        np.testing.assert_allclose(g.endpoints_lps["long"], m.endpoints_lps["long"], atol=0.01)
        assert g.endpoints_lps["slice_index"] == m.endpoints_lps["slice_index"]
