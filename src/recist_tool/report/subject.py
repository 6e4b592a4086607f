"""Per-subject report: self-contained HTML and a multi-page PDF.

Both show the same content: the timepoint table (lesions × visits: diameters, SOD, % change from
baseline and from nadir, target / non-target / new-lesion / overall responses and the engine's
reasons), the SOD plot with the PR / PD thresholds, a key image per lesion per visit, the notes
(missing data, NE visits, unsigned reads) and the audit summary (reader, signatures).

The HTML has inline CSS and base64 PNG images only (no external file, no script). The PDF is drawn
with matplotlib (``PdfPages``): page 1 the table, page 2 the SOD plot with the reasons and notes,
then the key images (three lesions per page), then the audit summary.
"""

from __future__ import annotations

import base64
import html
import io
import math
import textwrap
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

from recist_tool.io.outputs import atomic_file, safe_output_path
from recist_tool.report.key_images import KeyImage, VolumeCache, subject_key_images
from recist_tool.report.plots import SodPoint, colour, figure_png, sod_figure
from recist_tool.report.view import SubjectView, cell_text, fmt_pct

#: Lesions per PDF key-image page.
LESIONS_PER_PAGE = 3
_A4_LANDSCAPE = (11.69, 8.27)


def pdf_page_count(view: SubjectView) -> int:
    """Number of pages :func:`write_subject_pdf` writes for ``view``."""
    return 2 + max(1, math.ceil(len(view.lesions) / LESIONS_PER_PAGE)) + 1


def sod_points(view: SubjectView) -> list[SodPoint]:
    """Points of the SOD plot: baseline sum at day 0, then each follow-up's stored response."""
    pts: list[SodPoint] = []
    for v in view.visits:
        if v.baseline:
            pts.append(SodPoint(v.visit, v.day, view.baseline_sod_mm, None, None))
        elif v.response is not None or v.read is not None:
            r = v.response
            pts.append(SodPoint(v.visit, v.day, r.sod_mm if r else None, r.nadir_mm if r else None,
                                v.overall, v.sum_complete))
    return pts


def sod_plot(view: SubjectView, **kwargs: Any) -> Figure:
    """The subject's SOD plot (see :func:`recist_tool.report.plots.sod_figure`)."""
    return sod_figure(sod_points(view), view.baseline_sod_mm,
                      title=f"{view.code}: sum of target lesion diameters", **kwargs)


# --- the table -----------------------------------------------------------------------------------

def _dec(x: Any) -> str:
    return "—" if x is None else f"{x}"


def table_rows(view: SubjectView) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """The timepoint table as text: (column headers, [(row label, cells per visit)]).

    Rows: one per lesion, then SOD, baseline, nadir, % change from baseline / nadir, target,
    non-target, new lesions, overall response, signed.
    """
    header = [f"{v.visit}\n{v.date.isoformat()}\nday {v.day}" for v in view.visits]
    rows: list[tuple[str, list[str]]] = []
    for les in view.lesions:
        cat = str(getattr(les.category, "value", les.category)).lower()
        node = les.nodal and "node" not in (les.organ or "").lower()
        label = f"{les.lesion_id} {cat}" + (f", {les.organ}" if les.organ else "") + \
            (" (node)" if node else "")
        cells = []
        for v in view.visits:
            m = view.cells.get((les.lesion_id, v.visit))
            cells.append(cell_text(m) if (m is not None or v.read is not None) else "not read")
        rows.append((label, cells))

    def per_visit(fn: Any) -> list[str]:
        return [fn(v) for v in view.visits]

    def inc(v: Any, text: str) -> str:
        return text + " (incomplete)" if (not v.sum_complete and text not in ("—", "")) else text

    rows.append(("SOD (mm)", per_visit(
        lambda v: _dec(view.baseline_sod_mm) if v.baseline else inc(v, _dec(v.sod_mm)))))
    rows.append(("nadir (mm)", per_visit(
        lambda v: "" if v.baseline else _dec(v.response.nadir_mm if v.response else None))))
    rows.append(("% from baseline", per_visit(
        lambda v: "" if v.baseline else inc(v, fmt_pct(v.pct_from_baseline)))))
    rows.append(("% from nadir", per_visit(
        lambda v: "" if v.baseline else inc(v, fmt_pct(v.pct_from_nadir)))))
    for name, attr in (("target", "target"), ("non-target", "non_target"),
                       ("new lesions", "new_lesions")):
        rows.append((name, per_visit(
            lambda v, a=attr: "" if v.baseline else (getattr(v.response, a) or "—")
            if v.response else "—")))
    rows.append(("overall", per_visit(lambda v: "" if v.baseline else (v.overall or "—"))))
    rows.append(("signed", per_visit(lambda v: "yes" if v.signed else
                                     ("no" if v.read is not None else "—"))))
    return header, rows


# --- HTML ------------------------------------------------------------------------------------------

#: Style sheet shared by the subject and trial HTML reports.
REPORT_CSS = """
body{font-family:"DejaVu Sans",Helvetica,Arial,sans-serif;margin:24px;color:#212121;font-size:13px}
h1{font-size:20px;margin:0 0 4px}h2{font-size:15px;margin:22px 0 8px;border-bottom:1px solid #ccc}
.meta{color:#424242;margin:2px 0}
table{border-collapse:collapse}
td,th{border:1px solid #bdbdbd;padding:3px 7px;text-align:right;vertical-align:top}
th{background:#eceff1}td.lab{text-align:left;white-space:nowrap}
tr.sum td{background:#fafafa;font-weight:bold}
td.resp{font-weight:bold;text-align:center}
.notes{background:#fff8e1;border:1px solid #ffcc80;padding:6px 12px;margin:10px 0}
.notes li{margin:2px 0}
.reasons{font-size:12px;color:#424242}
table.keys td{padding:2px;text-align:center;border:none}
table.keys th{border:none;background:none}
img.key{width:256px;height:256px;display:block}
.small{font-size:11px;color:#616161}
"""


def png_img_tag(png: bytes, alt: str, cls: str = "") -> str:
    """An HTML ``<img>`` element with the PNG embedded as a data URI (reports are one file)."""
    data = base64.b64encode(png).decode("ascii")
    c = f' class="{cls}"' if cls else ""
    return f'<img{c} alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _light(label: str | None) -> str:
    c = colour(label)
    return f"background:{c}40" if label else ""


def subject_html(view: SubjectView, key_images: dict[tuple[str, str], KeyImage],
                 sod_png: bytes, *, generator: str = "recist-tool") -> str:
    """The subject's report as one self-contained HTML document."""
    e = html.escape
    out: list[str] = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
                      f"<title>RECIST report {e(view.code)}</title><style>{REPORT_CSS}</style></head><body>"]
    out.append(f"<h1>Subject {e(view.code)}</h1>")
    best = ""
    if view.best_label:
        d = getattr(view.best, "bor_date", None)
        best = f" · best overall response <b>{e(view.best_label)}</b>" + (f" ({d})" if d else "")
    reader = view.reader + (f" ({view.reader_full_name})" if view.reader_full_name else "")
    out.append(f'<p class="meta">trial {e(view.trial)} · criteria {e(view.criteria)} · reader '
               f"{e(reader)}{best}</p>")
    if view.notes:
        out.append('<div class="notes"><b>Notes</b><ul>')
        out += [f"<li>{e(n)}</li>" for n in view.notes]
        out.append("</ul></div>")

    out.append("<h2>Timepoint table</h2>")
    header, rows = table_rows(view)
    out.append("<table class=\"tp\"><tr><th>lesion / visit</th>"
               + "".join("<th>" + "<br>".join(e(x) for x in h.split("\n")) + "</th>" for h in header)
               + "</tr>")
    n_les = len(view.lesions)
    for i, (label, cells) in enumerate(rows):
        cls = ' class="sum"' if i == n_les else ""
        tds = []
        for v, c in zip(view.visits, cells, strict=True):
            if label == "overall":
                tds.append(f'<td class="resp" style="{_light(v.overall)}">{e(c)}</td>')
            else:
                tds.append(f"<td>{e(c)}</td>")
        out.append(f'<tr{cls}><td class="lab">{e(label)}</td>{"".join(tds)}</tr>')
    out.append("</table>")
    reasons = [(v.visit, v.response.reasons) for v in view.follow_ups
               if v.response is not None and v.response.reasons]
    if reasons:
        out.append('<div class="reasons"><b>Reasons (response engine)</b><ul>')
        for visit, rs in reasons:
            out.append(f"<li><b>{e(visit)}</b>: {'; '.join(e(r) for r in rs)}</li>")
        out.append("</ul></div>")
    out.append('<p class="small">Diameters in mm: long axis, short axis (SA) for lymph nodes; '
               "% changes as computed by the response engine (exact thresholds: PR at −30 % of "
               "baseline, PD at +20 % of nadir and at least +5 mm).</p>")

    out.append("<h2>Sum of diameters</h2>")
    out.append(png_img_tag(sod_png, f"SOD of {view.code} over time"))

    out.append("<h2>Key images</h2>")
    if not key_images:
        out.append("<p>No lesion assessment to show.</p>")
    else:
        out.append('<table class="keys"><tr><th></th>'
                   + "".join(f"<th>{e(v.visit)} ({e(v.date.isoformat())})</th>" for v in view.visits)
                   + "</tr>")
        for les in view.lesions:
            tds = []
            for v in view.visits:
                ki = key_images.get((les.lesion_id, v.visit))
                tds.append("<td></td>" if ki is None else
                           f"<td>{png_img_tag(ki.png, f'{les.lesion_id} at {v.visit}', 'key')}</td>")
            out.append(f'<tr><th>{e(les.lesion_id)}</th>{"".join(tds)}</tr>')
        out.append("</table>")
        out.append('<p class="small">Axial slice of the long axis; yellow: long axis, cyan: short '
                   "axis, red: segmentation outline; values as stored.</p>")

    out.append("<h2>Audit summary</h2>")
    out.append(_audit_html(view))
    out.append(f'<p class="small">Generated by {e(generator)}. Pseudonymous subject code only.</p>')
    out.append("</body></html>")
    return "\n".join(out)


def _signature_lines(view: SubjectView) -> list[tuple[str, str, str, str, str]]:
    rows = []
    for v in view.visits:
        if v.read is None:
            rows.append((v.visit, "not read", "", "", ""))
            continue
        status = f"{v.read.status}, version {v.read.version}"
        if v.read.amend_reason:
            status += f" (amended: {v.read.amend_reason})"
        sigs = v.read.signatures or ()
        if not sigs:
            rows.append((v.visit, status, "not signed", "", ""))
        for g in sigs:
            rows.append((v.visit, status, f"{g.get('printed_name', '')}", f"{g.get('meaning', '')}",
                         f"{g.get('signed_at', '')} · sha256 {str(g.get('record_sha256', ''))[:12]}…"))
    return rows


def _audit_counts(view: SubjectView) -> str:
    if not view.audit:
        return "no audit events for this subject"
    c = Counter(f"{a.action} {a.entity}" for a in view.audit)
    first, last = view.audit[0], view.audit[-1]
    actors = sorted({a.actor for a in view.audit})
    return (f"{len(view.audit)} audit events from {first.ts} to {last.ts} by {', '.join(actors)}; "
            + ", ".join(f"{k}: {n}" for k, n in sorted(c.items())))


def _audit_html(view: SubjectView) -> str:
    e = html.escape
    parts = [f"<p>Reader: <b>{e(view.reader)}</b>"
             + (f" ({e(view.reader_full_name)})" if view.reader_full_name else "") + "</p>",
             "<table><tr><th>visit</th><th>read</th><th>signed by</th><th>meaning</th>"
             "<th>time (UTC) · record hash</th></tr>"]
    for row in _signature_lines(view):
        parts.append("<tr>" + "".join(f'<td class="lab">{e(x)}</td>' for x in row) + "</tr>")
    parts.append("</table>")
    parts.append(f'<p class="small">{e(_audit_counts(view))}</p>')
    return "\n".join(parts)


# --- PDF -------------------------------------------------------------------------------------------

def _page(title: str, view: SubjectView, page: int, pages: int) -> Figure:
    fig = Figure(figsize=_A4_LANDSCAPE, dpi=100)
    fig.text(0.04, 0.965, title, fontsize=14, weight="bold", va="top")
    fig.text(0.04, 0.935, f"trial {view.trial} · criteria {view.criteria} · reader {view.reader}"
             + (f" ({view.reader_full_name})" if view.reader_full_name else "")
             + (f" · best overall response {view.best_label}" if view.best_label else ""),
             fontsize=9, va="top", color="#424242")
    fig.text(0.96, 0.02, f"{view.code} · page {page}/{pages}", fontsize=8, ha="right",
             color="#616161")
    return fig


def _wrap(lines: Sequence[str], width: int) -> list[str]:
    out: list[str] = []
    for line in lines:
        out += textwrap.wrap(line, width, subsequent_indent="   ") or [""]
    return out


def _table_page(view: SubjectView, pages: int) -> Figure:
    fig = _page(f"RECIST report — subject {view.code}: timepoint table", view, 1, pages)
    header, rows = table_rows(view)
    if not view.visits:
        fig.text(0.5, 0.5, "no timepoints recorded", ha="center", fontsize=12)
        return fig
    n_notes = len(_wrap(view.notes, 150))
    bottom = 0.06 + min(0.3, 0.022 * (n_notes + 1)) if view.notes else 0.06
    ax = fig.add_axes((0.04, bottom, 0.92, 0.88 - bottom))
    ax.set_axis_off()
    labels = [lab for lab, _ in rows]
    cell = [[lab, *(c.replace("\n", " ") for c in cells)] for lab, cells in rows]
    nrows = len(rows) + 1
    font = 9 if nrows <= 20 else max(5, 9 * 20 / nrows)
    nv = len(header)
    lab_w = 0.3 if nv <= 6 else 0.2
    widths = [lab_w] + [(1 - lab_w) / nv] * nv
    tab = ax.table(cellText=cell, colLabels=["lesion / visit", *header], loc="upper center",
                   cellLoc="center", colWidths=widths)
    tab.auto_set_font_size(False)
    tab.set_fontsize(font)
    row_h = min(0.06, 0.95 / (nrows + 2))
    for (r, c), cl in tab.get_celld().items():
        cl.set_height(row_h * (2.6 if r == 0 else 1))
        cl.set_edgecolor("#bdbdbd")
        if r == 0:
            cl.set_facecolor("#eceff1")
        elif r - 1 >= len(view.lesions):
            cl.set_facecolor("#fafafa")
        if c == 0 and r >= 1:
            cl.get_text().set_horizontalalignment("left")
            cl.PAD = 0.02
        if r >= 1 and labels[r - 1] == "overall" and c >= 1:
            v = view.visits[c - 1]
            if v.overall:
                cl.set_facecolor(colour(v.overall) + "55")
                cl.get_text().set_fontweight("bold")
    if view.notes:
        fig.text(0.04, bottom - 0.02, "Notes:\n" + "\n".join(_wrap(view.notes, 150)), fontsize=8,
                 va="top", color="#bf360c")
    return fig


def _sod_page(view: SubjectView, pages: int) -> Figure:
    fig = _page(f"Subject {view.code}: sum of diameters", view, 2, pages)
    ax_fig = sod_plot(view)
    png = figure_png(ax_fig, dpi=150)
    ax = fig.add_axes((0.06, 0.40, 0.88, 0.50))
    ax.set_axis_off()
    ax.imshow(decode_png(png), interpolation="lanczos")
    lines = []
    for v in view.follow_ups:
        if v.response is not None:
            lines.append(f"{v.visit}: target {v.response.target or '—'}, non-target "
                         f"{v.response.non_target or '—'}, new lesions {v.response.new_lesions}, "
                         f"overall {v.overall}. " + "; ".join(v.response.reasons))
    text = ["Responses and reasons:"] + _wrap(lines or ["no follow-up response"], 160)
    if view.notes:
        text += ["", "Notes:"] + _wrap(view.notes, 160)
    fig.text(0.06, 0.37, "\n".join(text[:30]), fontsize=8, va="top", family="DejaVu Sans")
    return fig


def decode_png(png: bytes) -> Any:
    """A PNG's pixels as a numpy array (matplotlib's reader), for drawing into PDF pages."""
    from matplotlib.image import imread

    return imread(io.BytesIO(png), format="png")


def _key_pages(view: SubjectView, images: dict[tuple[str, str], KeyImage], first: int,
               pages: int) -> list[Figure]:
    figs = []
    lesions = list(view.lesions)
    n_pages = max(1, math.ceil(len(lesions) / LESIONS_PER_PAGE))
    nv = max(1, len(view.visits))
    for p in range(n_pages):
        fig = _page(f"Subject {view.code}: key images", view, first + p, pages)
        chunk = lesions[p * LESIONS_PER_PAGE:(p + 1) * LESIONS_PER_PAGE]
        if not chunk:
            fig.text(0.5, 0.5, "no lesion assessment to show", ha="center", fontsize=12)
        size = min(0.25 * _A4_LANDSCAPE[1], 0.8 * _A4_LANDSCAPE[0] / nv)  # inches
        w, h = size / _A4_LANDSCAPE[0], size / _A4_LANDSCAPE[1]
        for j, v in enumerate(view.visits):
            fig.text(0.12 + j * (w + 0.01) + w / 2, 0.9, f"{v.visit} ({v.date.isoformat()})",
                     ha="center", fontsize=9, weight="bold")
        for i, les in enumerate(chunk):
            y = 0.88 - (i + 1) * (h + 0.015)
            node = les.nodal and "node" not in (les.organ or "").lower()
            fig.text(0.105, y + h / 2, f"{les.lesion_id}\n{les.organ}" + ("\n(node)" if node else ""),
                     ha="right", va="center", fontsize=9)
            for j, v in enumerate(view.visits):
                ki = images.get((les.lesion_id, v.visit))
                if ki is None:
                    continue
                ax = fig.add_axes((0.12 + j * (w + 0.01), y, w, h))
                ax.set_axis_off()
                ax.imshow(decode_png(ki.png), interpolation="none")
        fig.text(0.12, 0.05, "Axial slice of the long axis; yellow: long axis, cyan: short axis, "
                 "red: segmentation outline; values as stored.", fontsize=8, color="#616161")
        figs.append(fig)
    return figs


def _audit_page(view: SubjectView, page: int) -> Figure:
    fig = _page(f"Subject {view.code}: audit summary", view, page, page)
    rows = _signature_lines(view)
    ax = fig.add_axes((0.04, 0.35, 0.92, 0.55))
    ax.set_axis_off()
    if rows:
        tab = ax.table(cellText=[list(r) for r in rows],
                       colLabels=["visit", "read", "signed by", "meaning", "time (UTC) · record hash"],
                       loc="upper center", cellLoc="left", colWidths=[0.08, 0.25, 0.17, 0.13, 0.37])
        tab.auto_set_font_size(False)
        tab.set_fontsize(8)
        for (r, _c), cl in tab.get_celld().items():
            cl.set_edgecolor("#bdbdbd")
            if r == 0:
                cl.set_facecolor("#eceff1")
    fig.text(0.04, 0.3, "\n".join(_wrap([_audit_counts(view)], 170)), fontsize=8, va="top")
    return fig


def write_subject_pdf(view: SubjectView, images: dict[tuple[str, str], KeyImage], path: Path) -> int:
    """Write the PDF report; returns the number of pages (= :func:`pdf_page_count`)."""
    pages = pdf_page_count(view)
    figs = [_table_page(view, pages), _sod_page(view, pages)]
    figs += _key_pages(view, images, 3, pages)
    figs.append(_audit_page(view, pages))
    with atomic_file(path) as tmp, PdfPages(tmp, metadata={"Title": f"RECIST report {view.code}",
                                                            "Creator": "recist-tool"}) as pdf:
        for f in figs:
            pdf.savefig(f)
    return len(figs)


def write_subject_report(view: SubjectView, out_dir: str | Path, *,
                         formats: Sequence[str] = ("html", "pdf"), cache: VolumeCache | None = None,
                         key_size_px: int = 256) -> list[Path]:
    """Write ``<code>.html`` and / or ``<code>.pdf`` for one subject into ``out_dir``.

    Parameters
    ----------
    view : SubjectView
        From :func:`recist_tool.report.view.build_subject_view`.
    out_dir : path
        Output folder (created).
    formats : sequence of ``"html"``, ``"pdf"``
    cache : VolumeCache, optional
        Shared between subjects to reuse the last loaded series.

    Returns
    -------
    list of Path
        The files written.

    Raises
    ------
    InputError
        When the subject code would place a file outside ``out_dir``
        (:func:`recist_tool.io.outputs.safe_output_path`); nothing is written then.
    """
    out = Path(out_dir)
    paths = {f: safe_output_path(out, f"{view.code}.{f}") for f in ("html", "pdf") if f in formats}
    out.mkdir(parents=True, exist_ok=True)
    images = subject_key_images(view, cache=cache, size_px=key_size_px)
    if "html" in paths:
        png = figure_png(sod_plot(view))
        with atomic_file(paths["html"]) as tmp:
            tmp.write_text(subject_html(view, images, png), encoding="utf-8")
    if "pdf" in paths:
        write_subject_pdf(view, images, paths["pdf"])
    return list(paths.values())
