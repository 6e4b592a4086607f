"""``recist endpoints``: ORR, DCR, duration of response and imaging PFS of a trial from its reads.

Thin shell over :func:`recist_tool.export.endpoints.endpoints_from_store` and
:func:`~recist_tool.export.endpoints.write_endpoints`; see ``docs/endpoints.md``.
"""

from __future__ import annotations

from pathlib import Path

import typer

from recist_tool.cli._app import DB_OPTION, READER_OPTION, TRIAL_OPTION, app, console, note


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f} %"


def _days(x: int | None) -> str:
    return "NR" if x is None else f"{x} d"


@app.command("endpoints")
def endpoints_cmd(
    out: Path = typer.Option(..., "-o", "--out", help="Output folder (created)."),
    db: str = DB_OPTION,
    trial: str | None = TRIAL_OPTION,
    reader: str | None = READER_OPTION,
    include_unsigned: bool = typer.Option(False, "--include-unsigned",
                                          help="Also use unsigned reads (endpoints.json says so)."),
    settings: Path | None = typer.Option(
        None, "--settings", help="Trial settings TOML: [endpoints] censoring rules."),
    events: Path | None = typer.Option(
        None, "--events", help="CSV of subject,date,event (DEATH or NEW THERAPY)."),
) -> None:
    """ORR and DCR with exact 95 % intervals, DoR and PFS by Kaplan–Meier: endpoints.json,
    adtte.csv, adrs.csv."""
    from recist_tool.export.endpoints import endpoints_from_store, write_endpoints
    from recist_tool.store import TrialStore
    from recist_tool.store.settings import read_endpoint_policies

    policies = read_endpoint_policies(settings)
    with TrialStore(db, read_only=True) as store:
        run = endpoints_from_store(store, trial=trial, reader=reader,
                                   include_unsigned=include_unsigned, events=events,
                                   endpoint_policies=policies)
    paths = write_endpoints(run, out)
    ep = run.endpoints
    say = lambda line: console.print(line, highlight=False, soft_wrap=True)  # noqa: E731
    say(f"trial {run.data.trial}: {ep.n_subjects} subject(s), {len(ep.evaluable)} response-evaluable")
    for p in (ep.orr, ep.orr_confirmed, ep.dcr, ep.dcr_confirmed):
        kind = "confirmed" if p.confirmed else "unconfirmed"
        say(f"{p.name} ({kind}): {p.count}/{p.n} = {_pct(p.rate)} "
            f"(95 % CI {_pct(p.ci_low)} to {_pct(p.ci_high)})")
    for km in (ep.pfs_km, ep.dor_km):
        lo, hi = km.median_ci
        say(f"{km.paramcd}: {km.n} subject(s), {km.events} event(s), median {_days(km.median_days)} "
            f"(95 % CI {_days(lo)} to {_days(hi)})")
    for code, why in ep.not_evaluable:
        note(f"{code}: {why}", "not evaluable:")
    for code, why in ep.pfs_excluded:
        note(f"{code}: {why}", "no PFS:")
    for text in run.notes:
        note(text, "note:")
    say(f"{len(paths)} file(s) in {out}")
