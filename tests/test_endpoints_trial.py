"""``recist endpoints`` and the trial report's Kaplan–Meier plot on the sample trial.

The database holds the sample trial's analytic ground truth (``trial_ground_truth``, 6 subjects:
archetypes A/B/C twice) entered through the store API by reader ``rad1`` and signed, plus one
subject with a baseline read only. The expected endpoints are derived here from the ground truth's
dates and expected responses, independently of the engine.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import re
import shlex
from pathlib import Path

import pytest

from recist_tool.cli import main

READER, PASSWORD, TRIAL = "rad1", "rad1-password", "ES-SCLC-SYN"
#: Subject with a baseline read and no follow-up read.
NO_FOLLOW_UP = "SYN-900"
DOCS = Path(__file__).resolve().parents[1] / "docs" / "endpoints.md"


def _d(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


@pytest.fixture(scope="module")
def truth() -> dict:
    from recist_tool.sample_data.generate import trial_ground_truth

    return trial_ground_truth(seed=0, n_subjects=6)


@pytest.fixture(scope="module")
def trial_db(truth: dict, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ground truth entered as rad1's signed reads (reference start = baseline scan)."""
    from recist_tool.store import TrialStore

    db = tmp_path_factory.mktemp("endpoints") / "trial.db"
    old = os.environ.get("RECIST_SCRYPT_N")
    os.environ["RECIST_SCRYPT_N"] = "1024"
    try:
        with TrialStore(db) as st:
            st.add_reader(READER, PASSWORD, full_name="Reader One")
            st.add_trial(TRIAL, criteria="RECIST 1.1")
            subjects = dict(truth["subjects"])
            subjects[NO_FOLLOW_UP] = {"timepoints": {"BL": subjects["SYN-001"]["timepoints"]["BL"]}}
            for code, subj in subjects.items():
                tps = subj["timepoints"]
                st.add_subject(TRIAL, code, reference_date=_d(tps["BL"]["date"]))
                for visit, tp in tps.items():
                    st.add_timepoint(code, visit, _d(tp["date"]))
                for visit, tp in tps.items():
                    for lid, les in tp["lesions"].items():
                        kw = dict(long_axis_mm=str(les["long_axis_mm"]),
                                  short_axis_mm=str(les["short_axis_mm"]))
                        if les["category"] == "new":
                            st.record_new_lesion(code, visit, lid, reader=READER, organ=les["organ"],
                                                 nodal=les["nodal"], **kw)
                            continue
                        if visit == "BL":
                            st.add_lesion(code, visit, lid, les["category"].upper(), reader=READER,
                                          organ=les["organ"], nodal=les["nodal"])
                        if les["present"]:
                            st.record_measurement(code, visit, lid, reader=READER, **kw)
                        else:
                            st.record_measurement(code, visit, lid, reader=READER, state="ABSENT")
                st.compute_responses(code, reader=READER)
                for visit in tps:
                    st.sign(code, visit, reader=READER, password=PASSWORD)
    finally:
        if old is None:
            os.environ.pop("RECIST_SCRYPT_N", None)
        else:
            os.environ["RECIST_SCRYPT_N"] = old
    return db


def _expected(truth: dict) -> dict:
    """ORR / DCR / PFS / DoR of the ground truth, from RECIST 1.1's definitions (42-day SD window,
    28-day confirmation, AVAL = days + 1)."""
    orr, corr, dcr, pfs, dor = [], [], [], {}, {}
    for code, subj in truth["subjects"].items():
        tps = subj["timepoints"]
        start = _d(tps["BL"]["date"])
        fu = [(_d(t["date"]), t["overall_response"]) for v, t in tps.items() if v != "BL"]
        prs = [d for d, r in fu if r in ("CR", "PR")]
        if prs:
            orr.append(code)
            if any((b - a).days >= 28 for a in prs for b in prs):
                corr.append(code)
        if prs or any(r == "SD" and (d - start).days >= 42 for d, r in fu):
            dcr.append(code)
        pd = next((d for d, r in fu if r == "PD"), None)
        end = pd or fu[-1][0]
        pfs[code] = ((end - start).days + 1, int(pd is None))
        if prs:
            dor[code] = ((end - prs[0]).days + 1, int(pd is None))
    return {"orr": orr, "corr": corr, "dcr": dcr, "pfs": pfs, "dor": dor}


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_ground_truth_database_gives_the_expected_responses(trial_db: Path, truth: dict) -> None:
    from recist_tool.store import TrialStore

    with TrialStore(trial_db, read_only=True) as st:
        for code, subj in truth["subjects"].items():
            got = {tr.visit: tr.overall.value for tr in st.compute_responses(code, reader=READER)}
            want = {v: t["overall_response"] for v, t in subj["timepoints"].items() if v != "BL"}
            assert got == want, code


def test_cli_endpoints_match_the_analytic_truth(trial_db: Path, truth: dict, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    from scipy.stats import beta

    out = tmp_path / "ep"
    assert main(["endpoints", "--db", str(trial_db), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["adrs.csv", "adtte.csv", "endpoints.json"]
    exp = _expected(truth)
    doc = json.loads((out / "endpoints.json").read_text())
    n = len(truth["subjects"])
    assert doc["n_subjects"] == n + 1 and len(doc["evaluable"]) == n
    assert doc["not_evaluable"] == [{"subject": NO_FOLLOW_UP, "reason": "no follow-up assessment"}]
    assert f"not evaluable: {NO_FOLLOW_UP}: no follow-up assessment" in printed
    for key, names in (("orr", exp["orr"]), ("orr_confirmed", exp["corr"]), ("dcr", exp["dcr"]),
                       ("dcr_confirmed", exp["dcr"])):
        k = len(names)
        assert (doc[key]["count"], doc[key]["n"], doc[key]["subjects"]) == (k, n, sorted(names))
        lo = beta.ppf(0.025, k, n - k + 1) if k else 0.0
        hi = beta.ppf(0.975, k + 1, n - k) if k < n else 1.0
        assert doc[key]["ci_low"] == pytest.approx(lo) and doc[key]["ci_high"] == pytest.approx(hi)
    assert (len(exp["orr"]), len(exp["dcr"])) == (2, 4)
    rows = _csv(out / "adtte.csv")
    got = {(r["PARAMCD"], r["USUBJID"]): (int(r["AVAL"]), int(r["CNSR"])) for r in rows}
    want = {("PFS", c): v for c, v in exp["pfs"].items()} | {("DOR", c): v for c, v in exp["dor"].items()}
    want[("PFS", NO_FOLLOW_UP)] = (1, 1)  # censored at the reference start
    assert got == want
    assert list(rows[0]) == ["STUDYID", "USUBJID", "PARAMCD", "PARAM", "STARTDT", "ADT", "AVAL",
                             "CNSR", "EVNTDESC", "CNSDTDSC"]
    # PFS: events at 85 (×2) and 87 (×2), censored at 86 (×2): S = 4/6 then 0; median 87 days
    assert doc["pfs_km"]["median_days"] == 87 and doc["pfs_km"]["events"] == 4
    assert doc["dor_km"]["median_days"] is None and doc["dor_km"]["n"] == 2
    adrs = {(r["USUBJID"], r["PARAMCD"]): r["AVALC"] for r in _csv(out / "adrs.csv")}
    assert adrs[("SYN-001", "CBOR")] == "PR" and adrs[("SYN-002", "BOR")] == "PD"
    assert adrs[(NO_FOLLOW_UP, "BOR")] == "MISSING"
    assert "Reader One" not in (out / "endpoints.json").read_text()
    assert doc["evaluators"] == ["RADIOLOGIST 1"]


def _run_error(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    rc = main(args)
    err = capsys.readouterr().err.strip()
    return rc, err


@pytest.mark.parametrize("events,message", [
    ("subject,date,event\nSYN-777,2025-06-01,DEATH\n", "events.csv:2: subject 'SYN-777' is not in"),
    ("subject,date,event\nSYN-001,2024-12-01,DEATH\n",
     "SYN-001: death (2024-12-01) is before the reference start 2025-03-03"),
    ("subject,date,event\nSYN-001,2025-06-01,SURGERY\n", "events.csv:2: event 'SURGERY' is not one"),
    ("subject,date,event\nSYN-001,2025-06,DEATH\n", "events.csv:2: partial date '2025-06'"),
    ("subject,date\nSYN-001,2025-06-01\n", "missing column(s) EVENT"),
    ("subject,date,event\nSYN-001,2025-06-01,DEATH\nSYN-001,2025-07-01,death\n",
     "events.csv:3: a second DEATH for SYN-001"),
])
def test_bad_events_are_one_line_errors(trial_db: Path, tmp_path: Path, events: str, message: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "events.csv").write_text(events)
    rc, err = _run_error(["endpoints", "--db", str(trial_db), "--events",
                          str(tmp_path / "events.csv"), "-o", str(tmp_path / "out")], capsys)
    assert rc == 3 and message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "out").exists()


def test_bad_settings_and_unsigned_reads(trial_db: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "trial.toml").write_text("[endpoints]\nnew_therapy = 'sometimes'\n")
    rc, err = _run_error(["endpoints", "--db", str(trial_db), "--settings",
                          str(tmp_path / "trial.toml"), "-o", str(tmp_path / "out")], capsys)
    assert rc == 3 and "new_therapy='sometimes' is not one of censor, ignore" in err
    rc, err = _run_error(["endpoints", "--db", str(trial_db), "--reader", "nobody", "-o",
                          str(tmp_path / "out")], capsys)
    assert rc == 3 and "has no read by 'nobody'" in err and len(err.splitlines()) == 1


def test_nothing_is_written_outside_the_output_folder(trial_db: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """A link in the output folder that leads out is refused; the file it points at is untouched."""
    out = tmp_path / "out"
    out.mkdir()
    outside = tmp_path / "outside.csv"
    outside.write_text("keep\n")
    (out / "adtte.csv").symlink_to(outside)
    rc, err = _run_error(["endpoints", "--db", str(trial_db), "-o", str(out)], capsys)
    assert rc == 3 and "refusing to write 'adtte.csv'" in err and "leaves the folder" in err
    assert outside.read_text() == "keep\n"
    assert sorted(p.name for p in out.iterdir()) == ["adtte.csv"]


def _doc_blocks() -> dict[str, str]:
    text = DOCS.read_text(encoding="utf-8")
    return {lang: body for lang, body in re.findall(r"```(\w+)\n(.*?)```", text, re.S)}


def test_docs_example_runs(trial_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                           capsys: pytest.CaptureFixture[str]) -> None:
    """The command (and the lines it prints), the Python block, trial.toml and EVENTS.csv of
    docs/endpoints.md, run as written."""
    blocks = _doc_blocks()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "trial.db").write_bytes(trial_db.read_bytes())
    (tmp_path / "trial.toml").write_text(blocks["toml"])
    (tmp_path / "events.csv").write_text(blocks["csv"])
    cmd = next(line for line in blocks["console"].splitlines() if line.startswith("$ recist endpoints"))
    args = shlex.split(cmd[2:])[1:]
    assert main(args) == 0
    printed = capsys.readouterr().out
    out = Path(args[args.index("-o") + 1])
    doc = json.loads((out / "endpoints.json").read_text())
    # the documented output lines are what the command prints
    for line in blocks["console"].splitlines():
        if line and not line.startswith("$"):
            assert line in printed, line
    pfs = {r["USUBJID"]: r for r in _csv(out / "adtte.csv") if r["PARAMCD"] == "PFS"}
    assert pfs["SYN-004"]["EVNTDESC"] == "DEATH" and pfs["SYN-004"]["CNSR"] == "0"
    assert pfs["SYN-005"]["EVNTDESC"] == "NEW ANTICANCER THERAPY"
    assert doc["policies"]["assessment_interval_days"] == 42
    # the Python block, on the same files: the median its last line shows
    code = blocks["python"]
    shown = re.search(r"^(run\.endpoints\.pfs_km\.median_days)\s+# (\d+)$", code, re.M)
    assert shown, code
    namespace: dict = {}
    exec(compile(code, str(DOCS), "exec"), namespace)  # noqa: S102 - the doc's own example
    assert namespace["run"].endpoints.pfs_km.median_days == int(shown.group(2))


def test_trial_report_has_the_km_plot_and_endpoints(trial_db: Path, tmp_path: Path) -> None:
    from recist_tool.report import build_reports
    from recist_tool.report.trial import TRIAL_FILES
    from recist_tool.store import TrialStore

    with TrialStore(trial_db, read_only=True) as st:
        summary = build_reports(st, tmp_path / "rep", subject_reports=False)
    assert sorted(p.name for p in summary.files) == sorted(TRIAL_FILES)
    html = (tmp_path / "rep" / "trial_report.html").read_text()
    assert "Kaplan–Meier plot" in html and "ORR (confirmed)" in html
    assert f"{NO_FOLLOW_UP}: no follow-up assessment" in html
    assert (tmp_path / "rep" / "km.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_cli_uses_the_events_file(trial_db: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    events = tmp_path / "events.csv"
    events.write_text("subject,date,event\nSYN-777,2025-06-01,DEATH\n")
    args = ["report", "--db", str(trial_db), "--trial-only", "--events", str(events)]
    rc, err = _run_error([*args, "-o", str(tmp_path / "bad")], capsys)
    assert rc == 3 and "subject 'SYN-777' is not in" in err and not (tmp_path / "bad").exists()
    events.write_text("subject,date,event\nSYN-004,2025-07-30,DEATH\n")
    assert main([*args, "-o", str(tmp_path / "rep")]) == 0
    html = (tmp_path / "rep" / "trial_report.html").read_text()
    assert "median DoR (days)" in html and "1/2 events" in html  # SYN-004's death ends its response
