"""Dask worker plugin (imported only when a Dask scheduler is used: needs ``distributed``)."""

from __future__ import annotations

from typing import Any

from distributed import WorkerPlugin

from recist_tool.batch.job import init_worker

__all__ = ["WorkerSetup"]


class WorkerSetup(WorkerPlugin):
    """On each worker: one thread for torch / SimpleITK, and the segmenter loaded once."""

    name = "recist-batch-setup"

    def __init__(self, segmenter: str) -> None:
        self.segmenter = segmenter

    def setup(self, worker: Any) -> None:  # noqa: ARG002 - distributed's plugin protocol
        init_worker(self.segmenter)
