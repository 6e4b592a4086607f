"""Per-trial report: waterfall, spider and swimmer plots, the CSV of plotted values, HTML and PDF.

Conventions
-----------
- Best % change (waterfall) = the minimum over the follow-ups of the engine's % change of the sum of
  diameters from baseline (the largest shrinkage, or the smallest growth when the sum never fell);
  follow-ups whose sum is incomplete (a target not assessed: a lower bound) are skipped, here and
  on the spider plot. The bar's colour is the subject's best overall
  response (RECIST 1.1 BOR, iRECIST iBOR).
- Spider: % change from baseline per follow-up (day 0 = baseline scan at 0 %), line coloured by
  the best response, points by that visit's overall response.
- Swimmer: time on study = days from the baseline scan to the last assessed visit (any visit with a
  read, NE included); one marker per follow-up with its overall response.
- Kaplan–Meier: imaging PFS and duration of response with numbers at risk, and the ORR / DCR
  table, from :func:`recist_tool.recist.endpoints.trial_endpoints` (``docs/endpoints.md``).
"""

from __future__ import annotations

import html
import textwrap
from collections.abc import Sequence
from dataclasses import astuple, dataclass, fields
from decimal import Decimal
from pathlib import Path

from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

from recist_tool.io.outputs import atomic_outputs, write_csv
from recist_tool.recist.endpoints import TrialEndpoints, kaplan_meier
from recist_tool.report.plots import (
    TrialPoint,
    colour,
    figure_png,
    km_figure,
    spider_figure,
    swimmer_figure,
    waterfall_figure,
)
from recist_tool.report.subject import REPORT_CSS, png_img_tag
from recist_tool.report.view import SubjectView, fmt_pct

#: Files :func:`write_trial_report` writes.
TRIAL_FILES = ("waterfall.png", "spider.png", "swimmer.png", "km.png", "plotted_values.csv",
               "trial_report.html", "trial_report.pdf")
#: The trial plots, in report order.
_PLOTS = ("waterfall", "spider", "swimmer", "km")


@dataclass(frozen=True)
class PlottedValue:
    """One row of ``plotted_values.csv``: one mark on one of the trial plots.

    ``plot`` is ``waterfall`` (one row per subject: the follow-up with the best % change),
    ``spider`` (baseline at 0 % and each follow-up with a % change) or ``swimmer`` (each
    follow-up with a read; ``time_on_study_days`` is the bar length).
    """

    plot: str
    subject: str
    visit: str
    date: str
    study_day: int
    sod_mm: Decimal | None
    baseline_sod_mm: Decimal | None
    nadir_sod_mm: Decimal | None
    pct_change_from_baseline: Decimal | None
    pct_change_from_nadir: Decimal | None
    overall_response: str | None
    best_response: str | None
    time_on_study_days: int | None


def time_on_study(view: SubjectView) -> int | None:
    """Days from the baseline scan to the last visit with a read (None without any read)."""
    read = [v.day for v in view.visits if v.read is not None]
    return max(read) if read else None


def plotted_values(views: Sequence[SubjectView]) -> list[PlottedValue]:
    """Every value the trial plots show, in plot, subject, date order."""
    rows: list[PlottedValue] = []
    for plot in ("waterfall", "spider", "swimmer"):
        for s in sorted(views, key=lambda v: v.code):
            tos = time_on_study(s)
            if plot == "waterfall":
                best = s.best_pct_change()
                if best is not None:
                    v = best[1]
                    r = v.response
                    rows.append(PlottedValue("waterfall", s.code, v.visit, v.date.isoformat(), v.day,
                                             r.sod_mm, r.baseline_mm, r.nadir_mm, best[0],
                                             v.pct_from_nadir, v.overall, s.best_label, None))
                continue
            if plot == "spider":
                pts = [v for v in s.follow_ups if v.pct_from_baseline is not None and v.sum_complete]
                if not pts:
                    continue
                b = s.visits[0]
                rows.append(PlottedValue("spider", s.code, b.visit, b.date.isoformat(), 0,
                                         s.baseline_sod_mm, s.baseline_sod_mm, None, Decimal(0),
                                         None, None, s.best_label, None))
            else:
                pts = [v for v in s.follow_ups if v.read is not None]
            for v in pts:
                r = v.response
                rows.append(PlottedValue(plot, s.code, v.visit, v.date.isoformat(), v.day,
                                         r.sod_mm if r else None, r.baseline_mm if r else None,
                                         r.nadir_mm if r else None, v.pct_from_baseline,
                                         v.pct_from_nadir, v.overall, s.best_label,
                                         tos if plot == "swimmer" else None))
    return rows


def _points(rows: Sequence[PlottedValue], plot: str) -> dict[str, list[TrialPoint]]:
    out: dict[str, list[TrialPoint]] = {}
    for r in rows:
        if r.plot == plot and not (plot == "spider" and r.study_day == 0 and r.overall_response is None):
            out.setdefault(r.subject, []).append(
                TrialPoint(r.subject, r.visit, r.study_day, r.pct_change_from_baseline,
                           r.overall_response))
    return out


def trial_figures(views: Sequence[SubjectView], *, trial: str = "",
                  endpoints: TrialEndpoints | None = None) -> dict[str, Figure]:
    """The trial figures (``waterfall``, ``spider``, ``swimmer`` from the plotted values, and
    ``km``, the Kaplan–Meier curves of ``endpoints``; no subjects when it is None)."""
    rows = plotted_values(views)
    best = {s.code: s.best_label for s in views}
    bars = [(r.subject, r.pct_change_from_baseline, r.best_response) for r in rows
            if r.plot == "waterfall" and r.pct_change_from_baseline is not None]
    plotted = {b[0] for b in bars}
    missing = sorted(s.code for s in views if s.code not in plotted)
    prefix = f"{trial}: " if trial else ""
    spider = _points(rows, "spider")
    lanes: dict[str, tuple[int, list[TrialPoint]]] = {}
    swim = _points(rows, "swimmer")
    for s in views:
        tos = time_on_study(s)
        if tos is not None:
            lanes[s.code] = (tos, swim.get(s.code, []))
    return {
        "waterfall": waterfall_figure(bars, not_plotted=missing,
                                      title=prefix + "best % change of the SOD from baseline"),
        "spider": spider_figure(spider, {k: best[k] for k in spider},
                                title=prefix + "% change of the SOD from baseline over time"),
        "swimmer": swimmer_figure(lanes, {k: best[k] for k in lanes},
                                  title=prefix + "time on study and overall responses"),
        "km": km_figure([("Imaging PFS", endpoints.pfs_km if endpoints else kaplan_meier([])),
                         ("Duration of response", endpoints.dor_km if endpoints else kaplan_meier([]))],
                        title=prefix + "Kaplan–Meier estimates with numbers at risk"),
    }


def _summary_rows(views: Sequence[SubjectView]) -> list[list[str]]:
    rows = []
    for s in sorted(views, key=lambda v: v.code):
        best = s.best_pct_change()
        tos = time_on_study(s)
        rows.append([s.code, s.best_label or "—", fmt_pct(best[0]) if best else "—",
                     "—" if tos is None else str(tos), str(len(s.visits)),
                     ", ".join(s.unsigned_visits) or "—", str(len(s.notes))])
    return rows


_SUMMARY_HEAD = ["subject", "best response", "best % change", "days on study", "visits",
                 "unsigned", "notes"]


def endpoint_rows(endpoints: TrialEndpoints | None) -> list[list[str]]:
    """The endpoints table of the report: one row per rate and per Kaplan–Meier median."""
    if endpoints is None:
        return []

    def pct(x: float | None) -> str:
        return "—" if x is None else f"{100 * x:.1f} %"

    def days(x: int | None) -> str:
        return "NR" if x is None else str(x)

    rows = []
    for p in (endpoints.orr, endpoints.orr_confirmed, endpoints.dcr, endpoints.dcr_confirmed):
        rows.append([f"{p.name} ({'confirmed' if p.confirmed else 'unconfirmed'})",
                     f"{p.count}/{p.n}", pct(p.rate), f"{pct(p.ci_low)} – {pct(p.ci_high)}"])
    for name, km in (("median PFS (days)", endpoints.pfs_km), ("median DoR (days)", endpoints.dor_km)):
        rows.append([name, f"{km.events}/{km.n} events", days(km.median_days),
                     f"{days(km.median_ci[0])} – {days(km.median_ci[1])}"])
    return rows


_ENDPOINT_HEAD = ["endpoint", "count", "estimate", "95 % CI"]


def trial_html(views: Sequence[SubjectView], pngs: dict[str, bytes], *, trial: str,
               criteria: str, endpoints: TrialEndpoints | None = None) -> str:
    """The trial report as one self-contained HTML document."""
    e = html.escape
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>RECIST trial report {e(trial)}</title><style>{REPORT_CSS}</style></head><body>",
           f"<h1>Trial {e(trial)}</h1>",
           f'<p class="meta">criteria {e(criteria)} · {len(views)} subjects</p>',
           "<h2>Subjects</h2><table><tr>" + "".join(f"<th>{e(h)}</th>" for h in _SUMMARY_HEAD)
           + "</tr>"]
    for row in _summary_rows(views):
        out.append("<tr>" + "".join(
            f'<td class="lab" style="background:{colour(c)}40">{e(c)}</td>' if i == 1 and c != "—"
            else f'<td class="lab">{e(c)}</td>' for i, c in enumerate(row)) + "</tr>")
    out.append("</table>")
    out.append('<p class="small">Best % change: the minimum over the follow-ups of the response '
               "engine's % change of the sum of diameters from baseline; colours: best overall "
               "response. Days on study: baseline scan to the last assessed visit.</p>")
    for name, title in (("waterfall", "Waterfall plot"), ("spider", "Spider plot"),
                        ("swimmer", "Swimmer plot"), ("km", "Kaplan–Meier plot")):
        out.append(f"<h2>{title}</h2>" + png_img_tag(pngs[name], f"{title} of {trial}"))
    ep_rows = endpoint_rows(endpoints)
    if endpoints is not None:
        out.append("<h2>Endpoints</h2><table><tr>"
                   + "".join(f"<th>{e(h)}</th>" for h in _ENDPOINT_HEAD) + "</tr>"
                   + "".join("<tr>" + "".join(f'<td class="lab">{e(c)}</td>' for c in r) + "</tr>"
                             for r in ep_rows) + "</table>")
        ne = "; ".join(f"{c}: {why}" for c, why in endpoints.not_evaluable) or "none"
        out.append(f'<p class="small">{e(_CAPTIONS["km"])} Not evaluable for response: {e(ne)}.'
                   "</p>")
    out.append('<p class="small">The plotted values are in plotted_values.csv.</p></body></html>')
    return "\n".join(out)


def _summary_page(views: Sequence[SubjectView], trial: str, criteria: str) -> Figure:
    fig = Figure(figsize=(11.69, 8.27), dpi=100)
    fig.text(0.04, 0.965, f"RECIST trial report — {trial}", fontsize=14, weight="bold", va="top")
    fig.text(0.04, 0.935, f"criteria {criteria} · {len(views)} subjects", fontsize=9, va="top")
    ax = fig.add_axes((0.04, 0.1, 0.92, 0.8))
    ax.set_axis_off()
    rows = _summary_rows(views)
    if rows:
        tab = ax.table(cellText=rows, colLabels=_SUMMARY_HEAD, loc="upper center", cellLoc="center")
        tab.auto_set_font_size(False)
        tab.set_fontsize(10 if len(rows) < 30 else 6)
        tab.scale(1, 1.8 if len(rows) < 30 else 1)
        for (r, c), cl in tab.get_celld().items():
            cl.set_edgecolor("#bdbdbd")
            if r == 0:
                cl.set_facecolor("#eceff1")
            elif c == 1 and rows[r - 1][1] != "—":
                cl.set_facecolor(colour(rows[r - 1][1]) + "55")
    return fig


_CAPTIONS = {
    "waterfall": "Waterfall: best % change = the minimum over the follow-ups of the response engine's "
                 "% change of the sum of diameters from baseline (complete sums only); colour: best "
                 "overall response.",
    "spider": "Spider: % change of the sum of diameters from baseline at each follow-up (complete "
              "sums only); line colour: best overall response, point colour: that visit's response.",
    "swimmer": "Swimmer: days from the baseline scan to the last assessed visit; bar colour: best "
               "overall response; markers: each follow-up's overall response.",
    "km": "Kaplan–Meier (SciPy ecdf): imaging PFS from the reference start and duration of "
          "response from the first response, in days (day 1 = start); band: pointwise 95 % "
          "interval; ticks: censored; numbers at risk under the axis. ORR / DCR: over the "
          "response-evaluable subjects, Clopper–Pearson 95 % intervals (docs/endpoints.md).",
}


def _plot_page(png: bytes, trial: str, caption: str) -> Figure:
    from recist_tool.report.subject import decode_png

    img = decode_png(png)
    fig = Figure(figsize=(11.69, 8.27), dpi=100)
    fig.text(0.04, 0.965, f"RECIST trial report — {trial}", fontsize=14, weight="bold", va="top")
    h, w = img.shape[:2]
    width = 0.86
    height = min(0.78, width * 11.69 / 8.27 * h / w)
    width = height * w / h * 8.27 / 11.69
    ax = fig.add_axes(((1 - width) / 2, 0.9 - height, width, height))
    ax.set_axis_off()
    ax.imshow(img, interpolation="lanczos")
    fig.text(0.07, 0.86 - height, "\n".join(textwrap.wrap(caption, 150)), fontsize=9, va="top")
    return fig


def write_trial_report(views: Sequence[SubjectView], out_dir: str | Path, *, trial: str,
                       criteria: str, endpoints: TrialEndpoints | None = None) -> list[Path]:
    """Write the trial plots (PNG), ``plotted_values.csv``, ``trial_report.html`` and ``.pdf``.

    All files appear together or not at all. ``endpoints`` (ORR, DCR, Kaplan–Meier) fill the
    Kaplan–Meier plot and the endpoints table; without them the plot says there are no subjects.

    Returns
    -------
    list of Path
        The files written (:data:`TRIAL_FILES` in ``out_dir``).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figs = trial_figures(views, trial=trial, endpoints=endpoints)
    pngs = {k: figure_png(f, dpi=110) for k, f in figs.items()}
    with atomic_outputs(out) as o:
        for k in _PLOTS:
            o.path(f"{k}.png").write_bytes(pngs[k])
        write_csv(o.path("plotted_values.csv"), [f.name for f in fields(PlottedValue)],
                  (astuple(r) for r in plotted_values(views)), lineterminator="\n")
        o.path("trial_report.html").write_text(trial_html(views, pngs, trial=trial, criteria=criteria,
                                                          endpoints=endpoints), encoding="utf-8")
        with PdfPages(o.path("trial_report.pdf"),
                      metadata={"Title": f"RECIST trial report {trial}", "Creator": "recist-tool"}
                      ) as pdf:
            pdf.savefig(_summary_page(views, trial, criteria))
            for k in _PLOTS:
                caption = _CAPTIONS[k]
                if k == "km":
                    caption += " " + "; ".join(f"{r[0]}: {r[2]} ({r[3]}, {r[1]})"
                                               for r in endpoint_rows(endpoints))
                pdf.savefig(_plot_page(figure_png(figs[k], dpi=150), trial, caption))
        return o.finals
