"""Subject reports: the sample trial's (slow: scored by ``recist batch``) and awkward input."""

from __future__ import annotations

import base64
import io
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.image import imread

from recist_tool.errors import InputError
from recist_tool.report import build_reports, collect_views
from recist_tool.report.key_images import LONG_COLOUR, VolumeCache, subject_key_images
from recist_tool.report.subject import pdf_page_count
from recist_tool.report.view import cell_text
from recist_tool.store import TrialStore
from tests.report.conftest import parse_html, pdf_pages


def _png(data: bytes) -> np.ndarray:
    return (imread(io.BytesIO(data), format="png")[..., :3] * 255).round().astype(int)


def _table(html_text: str) -> dict[str, list[str]]:
    """The timepoint table: row label -> cells per visit (first table of the page)."""
    rows = parse_html(html_text).rows
    first = next(i for i, r in enumerate(rows) if r and r[0] == "lesion / visit")
    out = {}
    for r in rows[first + 1:]:
        if not r or r[0] == "visit":
            break
        out[r[0]] = r[1:]
        if r[0] == "signed":
            break
    return out


# --- awkward input (fast, no images) -----------------------------------------------------------

def test_bad_input_renders_and_says_so(bad_store: TrialStore, tmp_path: Path) -> None:
    out = tmp_path / "rep"
    summary = build_reports(bad_store, out, include_unsigned=True, trial_report=False)
    assert sorted(p.name for p in summary.files) == ["S-EMPTY.html", "S-EMPTY.pdf", "S-ODD.html",
                                                      "S-ODD.pdf"]
    empty = (out / "S-EMPTY.html").read_text()
    assert "No measurements are recorded for S-EMPTY" in empty
    assert "no sum of diameters" not in empty  # the plot is an image; its text is not in the HTML
    for visit in ("BL", "W06", "W12"):
        assert f"{visit} (" in empty and "no read recorded" in empty
    odd = (out / "S-ODD.html").read_text()
    notes = summary.notes["S-ODD"]
    assert "T02 was measured only at baseline: not assessed at W06, W12." in notes
    assert any(n.startswith("W12: overall response NE (not evaluable)") for n in notes)
    assert any(n.startswith("W06: overall response NE (not evaluable)") for n in notes)
    assert "T01: not evaluable at W12." in notes
    assert "Not signed: W06, W12 (the report includes unsigned reads)." in notes
    for n in notes:
        assert n.replace("'", "&#x27;") in odd
    table = _table(odd)
    assert table["T01 target, liver"] == ["30.0", "18.5", "NE"]
    assert table["T02 target, lung"] == ["22.4", "—", "—"]
    assert table["NT01 non-target, bone"] == ["present", "present", "present"]
    assert table["overall"] == ["", "NE", "NE"]
    # W12: T01 not evaluable, T02 not assessed: the engine's sum holds nothing (0), marked
    assert table["SOD (mm)"] == ["52.4", "18.5 (incomplete)", "0 (incomplete)"]
    assert table["% from baseline"][1] == "-64.7 % (incomplete)"
    assert any(n.startswith("Incomplete sum of diameters (a target not assessed) at W06, W12")
               for n in notes)
    assert table["signed"] == ["yes", "no", "no"]
    # key images: series missing → placeholders that say so (one per lesion per visit)
    assert odd.count("data:image/png;base64,") == 1 + 3 * 3
    # audit summary: the signature with the printed name and meaning
    audit = parse_html(odd).rows
    sig = next(r for r in audit if r and r[0] == "BL" and "signed" in r[1])
    assert sig[2] == "Alice Reader" and sig[3] == "read complete"
    trial, _, views = collect_views(bad_store, include_unsigned=True)
    assert trial == "BAD"
    for v in views:
        assert pdf_pages(out / f"{v.code}.pdf") == pdf_page_count(v) == 4


def test_bad_input_key_images_are_placeholders(bad_store: TrialStore) -> None:
    _, _, views = collect_views(bad_store, subjects=["S-ODD"], include_unsigned=True)
    images = subject_key_images(views[0], cache=VolumeCache())
    assert images[("T01", "BL")].placeholder and "CT series not found" in images[("T01", "BL")].message
    assert images[("T02", "W06")].message == "not assessed at this visit"
    assert images[("T01", "W12")].message == "not evaluable (NE): no image"


def test_unsigned_reads_need_the_option(bad_store: TrialStore, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="S-ODD: alice's reads of W06, W12 are not signed"):
        build_reports(bad_store, tmp_path / "rep")
    assert not (tmp_path / "rep").exists() or not any((tmp_path / "rep").iterdir())


# --- the sample trial (slow) -------------------------------------------------------------------

@pytest.fixture(scope="module")
def trial_reports(scored_trial: tuple[Path, Path, dict[str, Any]],
                  tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any, Path, dict[str, Any]]:
    db, _sample, truth = scored_trial
    out = tmp_path_factory.mktemp("reports")
    with TrialStore(db, read_only=True) as store:
        summary = build_reports(store, out, include_unsigned=True)
    return out, summary, db, truth


@pytest.mark.slow
def test_sample_trial_subject_html_holds_the_stored_values(trial_reports: Any) -> None:
    out, summary, db, truth = trial_reports
    assert summary.subjects == ["SYN-001", "SYN-002", "SYN-003"]
    with TrialStore(db, read_only=True) as store:
        for code, gt in truth["subjects"].items():
            html_text = (out / f"{code}.html").read_text()
            table = _table(html_text)
            visits = list(gt["timepoints"])
            rows = {label.split()[0]: cells for label, cells in table.items()}
            for i, visit in enumerate(visits):
                read = store.get_read(code, visit, reader="batch")
                for m in read.measurements:
                    cell = rows[m.lesion_id][i]
                    assert cell == cell_text(m)
                    if m.state == "MEASURED":
                        assert cell.startswith(str(m.diameter_mm))
                    # the ground truth's present lesions are measured, its absent ones absent
                    t = gt["timepoints"][visit]["lesions"].get(m.lesion_id)
                    if t is not None and m.category == "TARGET":
                        assert (m.state == "MEASURED") == bool(t.get("present", True))
                if i:
                    assert table["overall"][i] == gt["timepoints"][visit]["overall_response"]
                    assert table["SOD (mm)"][i] == str(read.response.sod_mm)


@pytest.mark.slow
def test_sample_trial_key_images_show_the_lesions(trial_reports: Any) -> None:
    out, _summary, db, truth = trial_reports
    with TrialStore(db, read_only=True) as store:
        _, _, views = collect_views(store, include_unsigned=True)
    cache = VolumeCache()
    n_images = 0
    for v in views:
        html_text = (out / f"{v.code}.html").read_text()
        uris = parse_html(html_text).images
        assert len(uris) == 1 + len(subject_key_images(v, cache=VolumeCache(loader=lambda p, u: None)))
        images = subject_key_images(v, cache=cache)
        for (lesion, visit), ki in images.items():
            m = v.cells.get((lesion, visit))
            if m is None or m.state != "MEASURED":
                assert ki.placeholder
                continue
            n_images += 1
            assert not ki.placeholder and ki.message is None, (lesion, visit, ki.message)
            img = _png(ki.png)
            assert img.std() > 15
            (x0, y0), (x1, y1) = ki.long_px
            fov = min(max(3 * float(m.long_axis_mm), 50), 200)
            assert np.hypot(x1 - x0, y1 - y0) == pytest.approx(float(m.long_axis_mm) * 256 / fov,
                                                               rel=0.05, abs=2)
            want = np.array([int(LONG_COLOUR[i:i + 2], 16) for i in (1, 3, 5)])
            for t in (0.3, 0.5, 0.7):
                x, y = round(x0 + t * (x1 - x0)), round(y0 + t * (y1 - y0))
                patch = img[y - 2:y + 3, x - 2:x + 3].reshape(-1, 3)
                assert np.any(np.abs(patch - want).max(axis=1) < 40), (lesion, visit)
            # the embedded image is this one
            assert "data:image/png;base64," + base64.b64encode(ki.png).decode() in uris
    assert n_images >= 35
    assert cache.loads == 9  # each series loaded once


@pytest.mark.slow
def test_sample_trial_subject_pdf_pages(trial_reports: Any, tmp_path: Path) -> None:
    out, _summary, db, _truth = trial_reports
    with TrialStore(db, read_only=True) as store:
        _, _, views = collect_views(store, include_unsigned=True)
    for v in views:
        assert pdf_pages(out / f"{v.code}.pdf") == pdf_page_count(v) == 2 + 2 + 1
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (poppler-utils) not installed")
    subprocess.run(["pdftoppm", "-png", "-r", "40", "-f", "3", "-l", "3", str(out / "SYN-001.pdf"),
                    str(tmp_path / "p")], check=True)
    page = _png(next(tmp_path.glob("p*.png")).read_bytes())
    assert page.shape[1] > page.shape[0] and page.std() > 30  # landscape, with key images


def test_decimal_cells() -> None:
    from types import SimpleNamespace as N

    assert cell_text(N(state="MEASURED", diameter_mm=Decimal("12.0"), nodal=True, fragments_mm=())) \
        == "12.0 (SA)"
    assert cell_text(N(state="TOO SMALL TO MEASURE", diameter_mm=None, nodal=False,
                       fragments_mm=())) == "too small"
    assert cell_text(N(state="SPLIT", diameter_mm=None, nodal=False,
                       fragments_mm=(Decimal("4"), Decimal("6.5")))) == "4 + 6.5 (split)"
    assert cell_text(None) == "—"
