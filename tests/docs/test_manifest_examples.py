"""README's manifest examples (CSV and TOML) are SYN-002 of the sample trial and run when pasted:
saved in the trial's folder they are read as manifests, every series path is there and holds the
series_uid named; the CSV rows are the generator's own rows; the TOML is scored."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def _block(lang: str) -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("### `recist batch`"):]
    m = re.search(rf"^```{lang}\n(.*?)^```", section, re.S | re.M)
    assert m, f"no ```{lang} block in README's recist batch section"
    return m.group(1)


@pytest.fixture(scope="module")
def trial(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from recist_tool.sample_data import generate_trial

    root = tmp_path_factory.mktemp("manifest-examples") / "trial"
    generate_trial(root, seed=0, n_subjects=2)  # SYN-002 is the same in the 3-subject default
    return root


def _check_cases(path: Path) -> list:
    from recist_tool.batch.manifest import plan_cases, read_manifest
    from recist_tool.io import scan

    cases = read_manifest(path)
    plan_cases(cases)
    for case in cases:
        assert Path(case.series_path).exists(), f"{case.where}: {case.series_path}"
        uids = [s.series_uid for s in scan(case.series_path).stacks]
        assert len(uids) == 1, uids
        if case.series_uid:
            assert case.series_uid in uids, f"{case.where}: {case.series_uid} not in {uids}"
    return cases


def test_csv_example_is_the_sample_trials_rows(trial: Path) -> None:
    doc = _block("csv")
    (trial / "readme.csv").write_text(doc)
    cases = _check_cases(trial / "readme.csv")
    assert [c.visit for c in cases] == ["BL", "W06", "W12"]
    with (trial / "manifest.csv").open(newline="") as fh:
        sample = [{**r, "series_uid": ""} for r in csv.DictReader(fh)]
    for row in csv.DictReader(doc.splitlines()):
        assert row in sample, row


@pytest.mark.slow
def test_toml_example_reads_and_scores(trial: Path) -> None:
    from recist_tool.batch import run_batch

    (trial / "readme.toml").write_text(_block("toml"))
    cases = _check_cases(trial / "readme.toml")
    assert [(c.subject, c.visit) for c in cases] == [("SYN-002", "BL"), ("SYN-002", "W06")]
    assert cases[0].series_uid and cases[0].series_uid.startswith("2.25.")
    summary = run_batch(trial / "readme.toml", db=trial / "readme.db", outdir=trial / "out",
                        workers=2, segmenter="classic")
    assert [r.error for r in summary.results if not r.ok] == []
    assert len(summary.results) == 2
