"""``recist audit verify|head|log``, ``reader add|list``, ``trial add``, ``sign``, ``amend``,
``discrepancies``, ``adjudicate``, ``db upgrade``: the trial DB.

Thin shell over :class:`recist_tool.store.TrialStore`. ``--db`` takes a SQLite path (default
``recist.db`` in the working folder, or ``$RECIST_DB``) or a ``postgresql://`` URL.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from recist_tool.cli._app import DB_OPTION, app, console
from recist_tool.errors import InputError, StoreError, UsageError

audit_app = typer.Typer(help="The audit trail: verify its hash chain, print the history.",
                        no_args_is_help=True)
reader_app = typer.Typer(help="Reader accounts.", no_args_is_help=True)
db_app = typer.Typer(help="The trial database itself.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
app.add_typer(reader_app, name="reader")
app.add_typer(db_app, name="db")

_DB = DB_OPTION


def _open(db: str, read_only: bool = False):  # noqa: ANN202 - TrialStore, imported lazily
    from recist_tool.store import TrialStore

    return TrialStore(db, read_only=read_only)


@audit_app.command("verify")
def audit_verify(
    expect_head: str | None = typer.Option(
        None, "--expect-head", metavar="HASH",
        help="A head printed earlier by 'recist audit head' and kept outside the database: the "
             "chain must still contain it (detects events cut from its end)."),
    db: str = _DB,
) -> None:
    """Check the audit hash chain, the signed records and that every audited row is what the
    trail says; exit 3 naming the first problem."""
    from recist_tool.store.audit import is_chain_hash

    if expect_head is not None and not is_chain_hash(expect_head):
        raise UsageError(f"--expect-head {expect_head!r}: a chain head is 64 hex digits "
                         "(as 'recist audit head' prints it)")
    with _open(db, read_only=True) as store:
        check = store.verify_audit(expect_head=expect_head)
    if check.ok:
        console.print(check.message, highlight=False, soft_wrap=True)
        return
    raise StoreError(f"audit trail BROKEN: {check.message}")


@audit_app.command("head")
def audit_head(db: str = _DB) -> None:
    """Print the chain head: hash, event number, time (UTC). Keep it outside the database (e.g. in
    the trial master file) and check later with 'recist audit verify --expect-head HASH'."""
    from recist_tool.store.audit import GENESIS

    with _open(db, read_only=True) as store:
        head = store.audit_head()
    if head is None:
        typer.echo(f"{GENESIS} event 0 (empty trail)")
    else:
        typer.echo(f"{head.hash} event {head.id} {head.ts}")


@audit_app.command("log")
def audit_log(
    subject: str | None = typer.Option(None, "--subject", help="Only this subject's history."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
    db: str = _DB,
) -> None:
    """Print the audit trail (who, when UTC, what, old → new, why), oldest first."""
    with _open(db, read_only=True) as store:
        entries = store.audit_log(subject)
    if as_json:
        for e in entries:
            sys.stdout.write(json.dumps(e.__dict__, ensure_ascii=False) + "\n")
        return
    for e in entries:
        if e.action == "UPDATE" and e.old is not None and e.new is not None:
            change = "; ".join(f"{k}: {e.old.get(k)} → {e.new.get(k)}" for k in e.new)
        elif e.new is not None:
            change = ", ".join(f"{k}={v}" for k, v in e.new.items() if k != "id")
        elif e.old is not None:
            change = "deleted: " + ", ".join(f"{k}={v}" for k, v in e.old.items() if k != "id")
        else:
            change = ""
        record = f"{e.entity}#{e.entity_id}" if e.entity_id is not None else e.entity
        why = f" | why: {e.reason}" if e.reason else ""
        subject_txt = f" [{e.subject}]" if e.subject else ""
        sys.stdout.write(f"{e.id:>6} {e.ts} {e.actor} {e.action} {record}{subject_txt} "
                         f"{change}{why}\n")


def _password(password_stdin: bool, prompt: str) -> str:
    if password_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise UsageError("--password-stdin: no password on standard input")
        return line
    return typer.prompt(prompt, hide_input=True, confirmation_prompt=True)


def _signing_password(password_stdin: bool, account: str) -> str:
    """The password that confirms a signature: from stdin, or asked once."""
    if password_stdin:
        return _password(True, "")
    return typer.prompt(f"password for {account}", hide_input=True)


@reader_app.command("add")
def reader_add(
    name: str = typer.Argument(..., help="Account name (no spaces)."),
    full_name: str = typer.Option("", "--full-name", help="Printed name on signatures."),
    role: str = typer.Option("reader", "--role", help="reader, adjudicator or admin."),
    password_stdin: bool = typer.Option(False, "--password-stdin",
                                        help="Read the password from the first line of stdin."),
    db: str = _DB,
) -> None:
    """Create a reader account; the password is asked twice (or read from stdin)."""
    password = _password(password_stdin, f"password for {name}")
    with _open(db) as store:
        info = store.add_reader(name, password, full_name=full_name, role=role)
    console.print(f"reader {info.name} ({info.role}) added", highlight=False)


@reader_app.command("list")
def reader_list(db: str = _DB) -> None:
    """List the accounts (never their passwords)."""
    with _open(db) as store:
        for r in store.readers():
            console.print(f"{r.name}\t{r.role}\t{r.full_name}\t{'active' if r.active else 'inactive'}",
                          highlight=False)


@db_app.command("upgrade")
def db_upgrade(db: str = _DB) -> None:
    """Create the database or bring its schema to this version's newest revision."""
    with _open(db) as store:
        console.print(f"{store.where}: schema revision {store.revision}", highlight=False)


trial_app = typer.Typer(help="Trials in the database.", no_args_is_help=True)
app.add_typer(trial_app, name="trial")


@trial_app.command("add")
def trial_add(
    name: str = typer.Argument(..., help="Trial name."),
    settings: Path | None = typer.Option(
        None, "--settings", exists=True, dir_okay=False,
        help="Trial settings TOML: [trial] criteria, visits; [recist] policies."),
    criteria: str | None = typer.Option(None, "--criteria", help="RECIST 1.1 or iRECIST."),
    db: str = _DB,
) -> None:
    """Create a trial with its criteria, RECIST policies and visit schedule."""
    from recist_tool.store.settings import read_trial_settings

    crit, policies, visits = read_trial_settings(settings)
    with _open(db) as store:
        store.add_trial(name, criteria=criteria or crit, policies=policies, visit_schedule=visits)
    console.print(f"trial {name} added ({criteria or crit}, {len(visits)} scheduled visits)",
                  highlight=False)


@app.command("sign")
def sign(
    subject: str = typer.Argument(..., help="Subject code."),
    visit: str = typer.Argument(..., help="Visit name."),
    reader: str = typer.Option(..., "--reader", help="Your account name."),
    meaning: str = typer.Option("read complete", "--meaning",
                                help="'read complete', 'adjudicated' or 'reviewed'."),
    confirm: str | None = typer.Option(None, "--confirm",
                                       help="Overall response to confirm if not the computed one."),
    reason: str | None = typer.Option(None, "--reason", help="Why (needed with --confirm)."),
    password_stdin: bool = typer.Option(False, "--password-stdin",
                                        help="Read the password from the first line of stdin."),
    db: str = _DB,
) -> None:
    """Sign your read of SUBJECT at VISIT (password asked again); the read is locked afterwards.

    The responses of your open reads of SUBJECT are computed first (audited as 'responses
    computed'), so what is signed is the RECIST response of the measurements signed, also after
    'recist amend'. The confirmed overall response is printed. A follow-up needs your read of the
    baseline.
    """
    from recist_tool.store.service import MEANINGS

    if meaning not in MEANINGS:
        raise UsageError(f"--meaning {meaning!r} is not one of {', '.join(MEANINGS)}")
    password = _signing_password(password_stdin, reader)
    with _open(db) as store:
        store.authenticate(reader, password)  # nothing is computed in a reader's name without it
        if store.get_read(subject, visit, reader=reader).status == "open":  # else sign refuses
            store.compute_responses(subject, reader=reader)
            first = store.timepoints(subject)[0][0]
            if visit != first and store.get_read(subject, visit, reader=reader).response is None:
                raise InputError(f"{subject} {visit}: no response can be computed for {reader}'s "
                                 f"read: it needs {reader}'s read of the baseline {first}")
        digest = store.sign(subject, visit, reader=reader, password=password, meaning=meaning,
                            confirmed_overall=confirm, reason=reason)
        read = store.get_read(subject, visit, reader=reader)
    resp = read.response
    if resp is None:
        what = "baseline, no response"
    elif resp.confirmed_overall != resp.overall:
        what = f"overall response {resp.confirmed_overall} confirmed (computed {resp.overall})"
    else:
        what = f"overall response {resp.overall}"
    console.print(f"signed {subject} {visit} by {reader} ({meaning}), version {read.version}: "
                  f"{what}; content sha256 {digest}", highlight=False, soft_wrap=True)


@app.command("amend")
def amend(
    subject: str = typer.Argument(..., help="Subject code."),
    visit: str = typer.Argument(..., help="Visit name."),
    reader: str = typer.Option(..., "--reader", help="Your account name."),
    reason: str = typer.Option(..., "--reason", help="Why the signed read is changed."),
    password_stdin: bool = typer.Option(False, "--password-stdin",
                                        help="Read the password from the first line of stdin."),
    db: str = _DB,
) -> None:
    """Open a new version of your signed read of SUBJECT at VISIT for changes (password asked).

    The signed version stays as it was (audit trail and exports of earlier data keep it); the new
    version starts as a copy and must be signed again.
    """
    password = _signing_password(password_stdin, reader)
    with _open(db) as store:
        version = store.amend(subject, visit, reader=reader, password=password, reason=reason)
    console.print(f"{subject} {visit}: version {version} of {reader}'s read opened ({reason})",
                  highlight=False, soft_wrap=True)


@app.command("discrepancies")
def discrepancies(
    subject: str = typer.Argument(..., help="Subject code."),
    adjudicator: str = typer.Option(..., "--adjudicator", help="Your (adjudicator) account name."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    password_stdin: bool = typer.Option(False, "--password-stdin",
                                        help="Read the password from the first line of stdin."),
    db: str = _DB,
) -> None:
    """Per visit, every reader's signed overall response, whether they differ, and any
    adjudication (adjudicators only; password asked, as this unblinds)."""
    password = _signing_password(password_stdin, adjudicator)
    with _open(db) as store:  # not read-only: a wrong password is recorded (AUTH_FAIL)
        rows = store.discrepancies(subject, adjudicator=adjudicator, password=password)
    if as_json:
        typer.echo(json.dumps([{"visit": r.visit, "date": r.date.isoformat(),
                                "responses": r.responses, "differ": r.differ,
                                "adjudicated_reader": r.adjudicated_reader,
                                "adjudication_reason": r.adjudication_reason} for r in rows],
                              indent=2))
        return
    from rich.table import Table

    t = Table(title=f"{subject}: readers' overall responses", header_style="bold")
    for col in ("visit", "date", "responses", "differ", "adjudicated"):
        t.add_column(col)
    for r in rows:
        given = ", ".join(f"{k} {v or '-'}" for k, v in r.responses.items())
        adj = f"{r.adjudicated_reader} ({r.adjudication_reason})" if r.adjudicated_reader else ""
        t.add_row(r.visit, r.date.isoformat(), given, "yes" if r.differ else "", adj)
    console.print(t)


@app.command("adjudicate")
def adjudicate(
    subject: str = typer.Argument(..., help="Subject code."),
    visit: str = typer.Argument(..., help="Visit name."),
    adjudicator: str = typer.Option(..., "--adjudicator", help="Your (adjudicator) account name."),
    choose: str = typer.Option(..., "--choose", help="The reader whose read is kept."),
    over: str = typer.Option(..., "--over", help="The other reader."),
    reason: str = typer.Option(..., "--reason", help="Why that read is chosen."),
    password_stdin: bool = typer.Option(False, "--password-stdin",
                                        help="Read the password from the first line of stdin."),
    db: str = _DB,
) -> None:
    """Choose one of two readers' differing signed reads of SUBJECT at VISIT, and sign that
    choice (password asked again)."""
    password = _signing_password(password_stdin, adjudicator)
    with _open(db) as store:
        store.adjudicate(subject, visit, adjudicator=adjudicator, password=password,
                         chosen_reader=choose, other_reader=over, reason=reason)
    console.print(f"{subject} {visit}: {choose}'s read chosen over {over}'s by {adjudicator} "
                  f"({reason}); signed", highlight=False, soft_wrap=True)
