"""Report figures: SOD over time, waterfall, spider and swimmer plots.

Every function returns a :class:`matplotlib.figure.Figure` built without :mod:`matplotlib.pyplot`
(no global figure registry, no backend switch): save it with :func:`figure_png` /
``fig.savefig``. Values are the store's; ``float`` is used only to place marks on the page.

Colours follow the response (``RESPONSE_COLOURS``); i-prefixed iRECIST responses take the colour of
their RECIST 1.1 counterpart, with iUPD orange and iCPD dark red.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from recist_tool.recist.model import to_stored_mm
from recist_tool.recist.timepoint import (
    PD_ABS_MM,
    PD_FRACTION,
    PR_FRACTION,
    pd_threshold_mm,
    pr_threshold_mm,
)

if TYPE_CHECKING:
    from recist_tool.recist.endpoints import KaplanMeier

#: Colour per response label.
RESPONSE_COLOURS: dict[str, str] = {
    "CR": "#1b5e20", "iCR": "#1b5e20",
    "PR": "#43a047", "iPR": "#43a047",
    "SD": "#f9a825", "iSD": "#f9a825",
    "NON-CR/NON-PD": "#c0ca33", "NON-iCR/NON-iUPD": "#c0ca33",
    "PD": "#d32f2f", "iUPD": "#fb8c00", "iCPD": "#8e0000",
    "NE": "#9e9e9e", "ND": "#bdbdbd", "MISSING": "#bdbdbd",
}
#: Swimmer-plot marker per response label.
RESPONSE_MARKERS: dict[str, str] = {
    "CR": "*", "iCR": "*", "PR": "v", "iPR": "v", "SD": "o", "iSD": "o",
    "NON-CR/NON-PD": "s", "NON-iCR/NON-iUPD": "s", "PD": "X", "iUPD": "D", "iCPD": "X",
    "NE": "o", "ND": "o", "MISSING": "o",
}
_OTHER = "#bdbdbd"
#: Legend order.
_ORDER = ["CR", "iCR", "PR", "iPR", "SD", "iSD", "NON-CR/NON-PD", "NON-iCR/NON-iUPD", "iUPD", "PD",
          "iCPD", "NE", "ND", "MISSING"]

#: The engine's thresholds as percent changes (display only; the engine decides exactly).
PR_PCT = (PR_FRACTION - 1) * 100
PD_PCT = (PD_FRACTION - 1) * 100
_PR_LABEL = f" −{-PR_PCT:.0f} % (PR)"
_PD_LABEL = f" +{PD_PCT:.0f} % (PD)"


def colour(label: str | None) -> str:
    """Colour of a response label (grey for none / unknown)."""
    return RESPONSE_COLOURS.get(label or "", _OTHER)


def figure_png(fig: Figure, *, dpi: float | None = None) -> bytes:
    """The figure as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi or fig.dpi)
    return buf.getvalue()


def _legend(ax: object, labels: Sequence[str], *, kind: str = "patch", title: str = "response"
            ) -> None:
    handles: list[object] = []
    for lab in sorted(set(labels), key=lambda x: _ORDER.index(x) if x in _ORDER else 99):
        if kind == "patch":
            handles.append(Patch(facecolor=colour(lab), label=lab))
        else:
            handles.append(Line2D([], [], linestyle="none", marker=RESPONSE_MARKERS.get(lab, "o"),
                                  markerfacecolor=colour(lab), markeredgecolor="black",
                                  markersize=8, label=lab))
    if handles:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01 if kind == "marker" else 1.12, 1.0),  # type: ignore[attr-defined]
                  fontsize=8, title=title, title_fontsize=8, framealpha=0.9, borderaxespad=0)


@dataclass(frozen=True)
class SodPoint:
    """One assessment on the SOD plot.

    Attributes
    ----------
    visit : str
    day : int
        Days since baseline.
    sod_mm : Decimal or None
        ``None``: no complete sum at that visit (drawn as a mark on the axis).
    nadir_mm : Decimal or None
        The nadir the engine compared this visit with (PD threshold).
    response : str or None
        Overall response label.
    complete : bool
        The sum covers every target (an incomplete sum is drawn hollow, off the line).
    """

    visit: str
    day: int
    sod_mm: Decimal | None
    nadir_mm: Decimal | None
    response: str | None
    complete: bool = True


def sod_figure(points: Sequence[SodPoint], baseline_mm: Decimal | None, *, title: str = "",
               width_in: float = 8.5, height_in: float = 3.8, dpi: float = 100) -> Figure:
    """Line plot of the sum of diameters over time with the PR and PD thresholds.

    The PR line is at 70 % of the baseline sum (−30 %); the PD line, per follow-up, at
    ``max(nadir × 1.2, nadir + 5 mm)`` of the nadir that visit was compared with: a step line
    whose value on the interval ending at a visit is that visit's threshold.
    Each point carries its overall response.
    """
    fig = Figure(figsize=(width_in, height_in), dpi=dpi)
    ax = fig.add_subplot(1, 1, 1)
    ax.set_title(title or "Sum of target lesion diameters", fontsize=10, loc="left")
    ax.set_xlabel("days since baseline")
    ax.set_ylabel("SOD (mm)")
    ax.grid(True, color="#e0e0e0", linewidth=0.6)
    xs = [p.day for p in points if p.sod_mm is not None and p.complete]
    ys = [float(p.sod_mm) for p in points if p.sod_mm is not None and p.complete]
    ys_all = [float(p.sod_mm) for p in points if p.sod_mm is not None]
    if not ys_all:
        ax.text(0.5, 0.5, "no sum of diameters recorded", ha="center", va="center",
                transform=ax.transAxes, fontsize=11, color="#616161")
        ax.set_xticks([])
        ax.set_yticks([])
        fig.tight_layout()
        return fig
    ax.plot(xs, ys, color="#263238", linewidth=1.6, zorder=3)
    for p in points:
        if p.sod_mm is None:
            ax.annotate(f"{p.visit}: {p.response or 'no sum'}", (p.day, 0), xytext=(0, 6),
                        textcoords="offset points", ha="center", fontsize=7, color="#616161")
            ax.plot([p.day], [0], marker="|", color="#616161", markersize=10, zorder=3)
            continue
        ax.plot([p.day], [float(p.sod_mm)], marker="o", markersize=7, zorder=4,
                markerfacecolor=colour(p.response) if p.complete else "white",
                markeredgecolor="black")
        ax.annotate(f"{p.visit}\n{p.sod_mm} mm" + ("" if p.complete else " (incomplete)")
                    + (f"\n{p.response}" if p.response else ""),
                    (p.day, float(p.sod_mm)), xytext=(0, 8), textcoords="offset points",
                    ha="center", va="bottom", fontsize=7)
    xmax = max(p.day for p in points)
    span = max(xmax, 1)
    top = max(ys_all)
    right = xmax + 0.08 * span
    if baseline_mm is not None:
        pr = pr_threshold_mm(baseline_mm)
        ax.axhline(float(pr), color=colour("PR"), linestyle="--", linewidth=1.2, zorder=2,
                   label=f"PR threshold: −{-PR_PCT:.0f} % of baseline ({to_stored_mm(pr)} mm)")
    steps = [(p.day, pd_threshold_mm(p.nadir_mm)) for p in points if p.nadir_mm is not None]
    if steps:
        # each visit's threshold is drawn on the interval ending at that visit
        first_day = min(p.day for p in points)
        sx = [first_day] + [d for d, _ in steps] + [right]
        sy = [float(steps[0][1])] + [float(t) for _, t in steps] + [float(steps[-1][1])]
        last = to_stored_mm(steps[-1][1])
        ax.step(sx, sy, where="pre", color=colour("PD"), linestyle="--", linewidth=1.2, zorder=2,
                label=f"PD threshold: nadir +20 % and ≥ +5 mm (now {last} mm)")
        top = max(top, *sy)
    ax.set_xlim(-0.08 * span, right)
    ax.set_ylim(0, top * 1.25 + 1)
    if baseline_mm is not None or steps:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, fontsize=7.5,
                  frameon=False)
    fig.tight_layout()
    return fig


def waterfall_figure(bars: Sequence[tuple[str, Decimal, str | None]], *, title: str = "",
                     not_plotted: Sequence[str] = (), width_in: float = 8.0, height_in: float = 4.5,
                     dpi: float = 100) -> Figure:
    """Waterfall plot: one bar per subject, best % change of the SOD from baseline, sorted.

    Parameters
    ----------
    bars : sequence of (subject, best % change, best-response label)
    not_plotted : sequence of str
        Subjects without a best % change, listed under the plot.
    """
    fig = Figure(figsize=(width_in, height_in), dpi=dpi)
    ax = fig.add_subplot(1, 1, 1)
    ax.set_title(title or "Best % change of the sum of diameters from baseline", fontsize=10,
                 loc="left")
    order = sorted(bars, key=lambda b: (-b[1], b[0]))
    xs = range(len(order))
    vals = [float(b[1]) for b in order]
    ax.bar(list(xs), vals, color=[colour(b[2]) for b in order], edgecolor="black", linewidth=0.5,
           zorder=3)
    for x, b in zip(xs, order, strict=True):
        v = float(b[1])
        ax.annotate(f"{b[1].quantize(Decimal('0.1'))} %", (x, v), xytext=(0, 3 if v >= 0 else -3),
                    textcoords="offset points", ha="center", va="bottom" if v >= 0 else "top",
                    fontsize=7)
    ax.set_xticks(list(xs), [b[0] for b in order], rotation=45 if len(order) > 8 else 0,
                  ha="right" if len(order) > 8 else "center", fontsize=8)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.axhline(float(PR_PCT), color=colour("PR"), linestyle="--", linewidth=1.1)
    ax.axhline(float(PD_PCT), color=colour("PD"), linestyle="--", linewidth=1.1)
    ax.text(1.0, float(PR_PCT), _PR_LABEL, transform=ax.get_yaxis_transform(), fontsize=7,
            va="center", color=colour("PR"))
    ax.text(1.0, float(PD_PCT), _PD_LABEL, transform=ax.get_yaxis_transform(), fontsize=7,
            va="center", color=colour("PD"))
    lo = min([*vals, -35.0])
    hi = max([*vals, 25.0])
    ax.set_ylim(lo - 0.12 * (hi - lo), hi + 0.12 * (hi - lo))
    if not order:
        ax.text(0.5, 0.5, "no subject has a follow-up % change", ha="center", va="center",
                transform=ax.transAxes, color="#616161")
    ax.set_ylabel("best % change from baseline")
    ax.grid(True, axis="y", color="#e0e0e0", linewidth=0.6, zorder=0)
    _legend(ax, [b[2] or "NE" for b in order], title="best response")
    if not_plotted:
        fig.text(0.01, 0.01, "not plotted (no follow-up % change): " + ", ".join(not_plotted),
                 fontsize=7, color="#616161")
    fig.tight_layout(rect=(0, 0.03 if not_plotted else 0, 1, 1))
    return fig


@dataclass(frozen=True)
class TrialPoint:
    """One follow-up of one subject on the spider / swimmer plots."""

    subject: str
    visit: str
    day: int
    pct_from_baseline: Decimal | None
    response: str | None


def spider_figure(series: Mapping[str, Sequence[TrialPoint]], best: Mapping[str, str | None], *,
                  title: str = "", width_in: float = 8.0, height_in: float = 4.5,
                  dpi: float = 100) -> Figure:
    """Spider plot: % change of the SOD from baseline over time, one line per subject.

    Each line starts at 0 % on day 0 (baseline) and is coloured by the subject's best response;
    each point is coloured by the overall response of that visit. Visits without a % change are
    left out of the line.
    """
    fig = Figure(figsize=(width_in, height_in), dpi=dpi)
    ax = fig.add_subplot(1, 1, 1)
    ax.set_title(title or "% change of the sum of diameters from baseline over time", fontsize=10,
                 loc="left")
    xmax = 1
    for subject in sorted(series):
        pts = [p for p in series[subject] if p.pct_from_baseline is not None]
        xs = [0] + [p.day for p in pts]
        ys = [0.0] + [float(p.pct_from_baseline) for p in pts]  # type: ignore[arg-type]
        xmax = max(xmax, *xs)
        ax.plot(xs, ys, color=colour(best.get(subject)), linewidth=1.5, zorder=3)
        ax.plot([0], [0], marker="o", color="black", markersize=3, zorder=4)
        for p in pts:
            ax.plot([p.day], [float(p.pct_from_baseline)], marker="o", markersize=6,  # type: ignore[arg-type]
                    markerfacecolor=colour(p.response), markeredgecolor="black", zorder=4)
        if pts:
            ax.annotate(subject, (pts[-1].day, float(pts[-1].pct_from_baseline)),  # type: ignore[arg-type]
                        xytext=(5, 0), textcoords="offset points", fontsize=7, va="center")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.axhline(float(PR_PCT), color=colour("PR"), linestyle="--", linewidth=1.1)
    ax.axhline(float(PD_PCT), color=colour("PD"), linestyle="--", linewidth=1.1)
    ax.text(1.0, float(PR_PCT), _PR_LABEL, transform=ax.get_yaxis_transform(), fontsize=7,
            va="center", color=colour("PR"))
    ax.text(1.0, float(PD_PCT), f"{_PD_LABEL}\n (and ≥ {PD_ABS_MM} mm)", transform=ax.get_yaxis_transform(),
            fontsize=7, va="center", color=colour("PD"))
    ax.set_xlim(-0.03 * xmax, xmax * 1.12)
    ax.set_xlabel("days since baseline")
    ax.set_ylabel("% change from baseline")
    ax.grid(True, color="#e0e0e0", linewidth=0.6, zorder=0)
    labels = [p.response for pts in series.values() for p in pts if p.response]
    labels += [b for b in best.values() if b]
    _legend(ax, labels, title="line: best response\npoint: visit response")
    if not series:
        ax.text(0.5, 0.5, "no follow-up assessments", ha="center", va="center",
                transform=ax.transAxes, color="#616161")
    fig.tight_layout()
    return fig


def swimmer_figure(lanes: Mapping[str, tuple[int, Sequence[TrialPoint]]],
                   best: Mapping[str, str | None], *, title: str = "", width_in: float = 8.0,
                   height_in: float | None = None, dpi: float = 100) -> Figure:
    """Swimmer plot: time on study (days from baseline to the last assessment) per subject.

    Parameters
    ----------
    lanes : mapping subject -> (last assessment day, follow-up points)
        One bar per subject, coloured by its best response, with a marker at each follow-up
        showing that visit's overall response.
    best : mapping subject -> best-response label
    """
    n = len(lanes)
    fig = Figure(figsize=(width_in, height_in or max(2.6, 1.3 + 0.45 * n)), dpi=dpi)
    ax = fig.add_subplot(1, 1, 1)
    ax.set_title(title or "Time on study and responses", fontsize=10, loc="left")
    subjects = sorted(lanes, key=lambda s: (lanes[s][0], s))
    xmax = 1
    labels: list[str] = []
    for y, subject in enumerate(subjects):
        last, pts = lanes[subject]
        xmax = max(xmax, last)
        ax.barh(y, last, height=0.5, color=colour(best.get(subject)), alpha=0.45,
                edgecolor="black", linewidth=0.5, zorder=2)
        ax.annotate(f"{last} d", (last, y), xytext=(9, 0), textcoords="offset points",
                    va="center", fontsize=7)
        for p in pts:
            lab = p.response or "NE"
            labels.append(lab)
            ax.plot([p.day], [y], linestyle="none", marker=RESPONSE_MARKERS.get(lab, "o"),
                    markersize=9, markerfacecolor=colour(lab), markeredgecolor="black", zorder=4)
    ax.set_yticks(range(len(subjects)), subjects, fontsize=8)
    ax.set_ylim(-0.7, max(len(subjects), 1) - 0.3)
    ax.set_xlim(0, xmax * 1.15)
    ax.set_xlabel("days since baseline (bar: baseline to last assessment; colour: best response)")
    ax.grid(True, axis="x", color="#e0e0e0", linewidth=0.6, zorder=0)
    _legend(ax, labels, kind="marker", title="visit response\n(bar: best response)")
    if not lanes:
        ax.text(0.5, 0.5, "no subjects", ha="center", va="center", transform=ax.transAxes,
                color="#616161")
    fig.tight_layout()
    return fig


def km_figure(curves: Sequence[tuple[str, KaplanMeier]], *, title: str = "", width_in: float = 10.0,
              height_in: float = 4.8, dpi: float = 100) -> Figure:
    """Kaplan–Meier curves side by side, each with its pointwise interval, censoring marks and the
    numbers at risk under its time axis.

    Parameters
    ----------
    curves : sequence of (title, KaplanMeier)
        Estimates of :func:`recist_tool.recist.endpoints.kaplan_meier` (``times``, ``survival``,
        ``ci_low``, ``ci_high``, ``censor_times``, ``at_risk``, ``median_days``, ``median_ci``).
    """
    fig = Figure(figsize=(width_in, height_in), dpi=dpi)
    if title:
        fig.suptitle(title, fontsize=10, x=0.01, ha="left")
    for i, (name, km) in enumerate(curves, start=1):
        ax = fig.add_subplot(1, len(curves), i)
        ax.set_title(f"{name} (n = {km.n}, {km.events} event{'' if km.events == 1 else 's'})", fontsize=9,
                     loc="left")
        xs = [0, *km.times]
        ys = [1.0, *km.survival]
        ax.step(xs, ys, where="post", color="#1565c0", linewidth=1.6, zorder=3)
        if km.events:  # an undefined limit (S = 0 under log-log) is drawn at S itself
            lo = [1.0, *(s if v is None else v for v, s in zip(km.ci_low, km.survival, strict=True))]
            hi = [1.0, *(s if v is None else v for v, s in zip(km.ci_high, km.survival, strict=True))]
            ax.fill_between(xs, lo, hi, step="post", color="#1565c0", alpha=0.15, linewidth=0,
                            zorder=2)
        at = dict(zip(km.times, km.survival, strict=True))
        cx = list(km.censor_times)
        ax.plot(cx, [at[t] for t in cx], linestyle="none", marker="|", markersize=9,
                color="#0d47a1", zorder=4)
        med = km.median_days
        lo_m, hi_m = km.median_ci
        ax.axhline(0.5, color="#9e9e9e", linestyle=":", linewidth=0.8)
        text = "median " + ("not reached" if med is None else f"{med} d") + " (95 % CI " + \
            ("NR" if lo_m is None else f"{lo_m}") + "–" + ("NR" if hi_m is None else f"{hi_m}") + ")"
        ax.text(0.02, 0.03, text, transform=ax.transAxes, ha="left", va="bottom", fontsize=7,
                bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8})
        ax.set_ylim(-0.02, 1.05)
        xmax = max([*xs, *(d for d, _ in km.at_risk), 1])
        ax.set_xlim(0, xmax * 1.05)
        ax.set_xticks([d for d, _ in km.at_risk] or [0])
        ax.tick_params(labelsize=7)
        ax.set_xlabel("days", fontsize=8)
        ax.set_ylabel("probability without event", fontsize=8)
        ax.grid(True, color="#eeeeee", linewidth=0.6, zorder=0)
        ax.annotate("at risk", (0, 0), xycoords="axes fraction", xytext=(-8, -42),
                    textcoords="offset points", ha="right", va="top", fontsize=7)
        for d, n in km.at_risk:
            ax.annotate(str(n), (d, 0), xycoords=("data", "axes fraction"), xytext=(0, -42),
                        textcoords="offset points", ha="center", va="top", fontsize=7)
        if not km.n:
            ax.text(0.5, 0.5, "no subjects", ha="center", va="center", transform=ax.transAxes,
                    color="#616161")
    fig.tight_layout(rect=(0.03, 0.07, 1, 0.95 if title else 1))
    return fig
