"""The same cases on a real Dask LocalCluster (2 worker processes on loopback) give the same
results as the local process pool."""

from __future__ import annotations

from pathlib import Path

import pytest

from recist_tool.batch import run_batch

from .conftest import ScoredTrial, subset_manifest

pytestmark = pytest.mark.slow


def test_dask_local_cluster_equals_local_pool(scored_trial: ScoredTrial, tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    manifest = subset_manifest(scored_trial.trial / "manifest.csv", tmp_path / "m.csv",
                               lambda r: r["subject"] == "SYN-002")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        s = run_batch(manifest, db=tmp_path / "dask.db", outdir=tmp_path / "out",
                      scheduler=cluster.scheduler_address, segmenter="classic")
        assert s.backend.startswith("Dask scheduler tcp://127.0.0.1:")
        # each worker holds one segmenter, created by the worker plugin and reused by its tasks
        with distributed.Client(cluster.scheduler_address, set_as_default=False) as client:
            loaded = client.run(lambda: sorted(
                __import__("recist_tool.batch.job", fromlist=["_SEGMENTERS"])._SEGMENTERS))
        assert list(loaded.values()) == [["classic"], ["classic"]]
    assert len(s.results) == 3 and s.ok, [(r.key, r.error) for r in s.failed]
    pids = {r.worker for r in s.results}
    assert 1 <= len(pids) <= 2

    def meas(rows: list) -> list:
        return [(m.visit, m.lesion_id, m.state, m.long_axis_mm, m.short_axis_mm, m.volume_ml,
                 m.confidence, m.tracking) for m in rows if m.subject == "SYN-002"]

    def resp(rows: list) -> list:
        return [(r.visit, r.sod_mm, r.target_response, r.non_target_response, r.new_lesions,
                 r.overall_response, r.pct_change_from_nadir) for r in rows if r.subject == "SYN-002"]

    assert meas(s.measurements) == meas(scored_trial.summary.measurements)
    assert resp(s.responses) == resp(scored_trial.summary.responses)
    assert [r.overall_response for r in s.responses] == [None, "SD", "PD"]


def test_unreachable_scheduler_is_one_clear_error(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    from recist_tool.batch.runner import DaskBackend
    from recist_tool.errors import InputError

    with pytest.raises(InputError, match="cannot connect to the Dask scheduler at tcp://127.0.0.1:9"):
        DaskBackend("tcp://127.0.0.1:9", "classic", timeout_s=2)
