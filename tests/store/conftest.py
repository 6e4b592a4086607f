"""Fixtures of the trial-database tests: a real SQLite file, and a real PostgreSQL server when
``RECIST_TEST_POSTGRES_URL`` is set (``.ci/postgres.sh`` starts one); skipped with a reason otherwise.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator

import pytest

PG_ENV = "RECIST_TEST_POSTGRES_URL"
PASSWORDS = {"alice": "alice-pass-1", "bob": "bob-pass-22", "carol": "carol-pass-333"}


@pytest.fixture(autouse=True)
def _fast_scrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheap scrypt cost in tests (the parameters are stored with each hash)."""
    monkeypatch.setenv("RECIST_SCRYPT_N", "1024")


def postgres_url() -> str | None:
    """The server URL from the environment, or None."""
    return os.environ.get(PG_ENV) or None


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database on the test server (dropped afterwards)."""
    base = postgres_url()
    if base is None:
        pytest.skip(f"no PostgreSQL server: set {PG_ENV} (.ci/postgres.sh starts one)")
    psycopg = pytest.importorskip("psycopg", reason="psycopg not installed (extra 'postgres')")
    from sqlalchemy.engine import make_url

    u = make_url(base.replace("postgresql://", "postgresql+psycopg://", 1))
    name = "recist_t_" + uuid.uuid4().hex[:12]
    admin = u.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield u.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path) -> str:  # noqa: ANN001
    """A real SQLite file, then (when a server is configured) a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "recist.db")
    return request.getfixturevalue("pg_url")


def make_trial(store, readers=("alice", "bob"), adjudicator: str | None = "carol") -> None:  # noqa: ANN001
    """Trial ES-SCLC, subject S001 (PatientID PAT-123) with visits BL and W6, and the accounts."""
    for name in readers:
        store.add_reader(name, PASSWORDS[name], full_name=name.title() + " Reader")
    if adjudicator:
        store.add_reader(adjudicator, PASSWORDS[adjudicator], role="adjudicator")
    store.add_trial("ES-SCLC", policies={"sd_min_days": 42})
    store.add_subject("ES-SCLC", "S001", patient_id="PAT-123", reference_date=dt.date(2026, 1, 1))
    store.add_timepoint("S001", "BL", dt.date(2026, 1, 2), study_uid="1.2.3", series_uid="1.2.3.4")
    store.add_timepoint("S001", "W6", dt.date(2026, 2, 13), study_uid="1.2.5", series_uid="1.2.5.6")


def read_subject(store, reader: str, t01_w6: str, t02_w6: str) -> None:  # noqa: ANN001
    """``reader`` reads S001: T01 lung 30 mm, T02 node SA 20 mm, NT01 liver; W6 as given."""
    store.add_lesion("S001", "BL", "T01", "TARGET", reader=reader, organ="LUNG")
    store.add_lesion("S001", "BL", "T02", "TARGET", reader=reader, organ="LYMPH NODE", nodal=True)
    store.add_lesion("S001", "BL", "NT01", "NON-TARGET", reader=reader, organ="LIVER")
    store.record_measurement("S001", "BL", "T01", reader=reader, long_axis_mm="30.0",
                             endpoints_lps={"long": [[0, 0, 0], [30, 0, 0]]}, volume_ml="9.1",
                             mask_path="masks/S001_BL_T01.nii.gz", mask_sha256="a" * 64,
                             segmenter="classic", segmenter_version="0.1", method="automatic")
    store.record_measurement("S001", "BL", "T02", reader=reader, long_axis_mm="25",
                             short_axis_mm="20")
    store.assess_non_target("S001", "BL", "NT01", "PRESENT", reader=reader)
    store.record_measurement("S001", "W6", "T01", reader=reader, long_axis_mm=t01_w6)
    store.record_measurement("S001", "W6", "T02", reader=reader, long_axis_mm="25",
                             short_axis_mm=t02_w6)
    store.assess_non_target("S001", "W6", "NT01", "PRESENT", reader=reader)


def two_signed_reads(store) -> None:  # noqa: ANN001
    """alice (W6: PR) and bob (W6: SD) read S001, compute their responses and sign BL and W6."""
    for name, t01, t02 in (("alice", "18", "12"), ("bob", "27", "18")):
        read_subject(store, name, t01_w6=t01, t02_w6=t02)
        store.compute_responses("S001", reader=name)
        for visit in ("BL", "W6"):
            store.sign("S001", visit, reader=name, password=PASSWORDS[name])
