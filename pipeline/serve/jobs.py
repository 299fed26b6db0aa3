"""Background jobs of the server: "compute now" runs a whole dedup, minutes on a large collection, so it runs in a
thread of its own, one at a time, and the page polls its status instead of holding a request open."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

from pipeline.core.errors import LookalikeError, first_line

log = logging.getLogger(__name__)
JobState = Literal["running", "done", "failed"]


@dataclass(frozen=True)
class ComputeJob:
    """One "compute now": for which collection and threshold, its state, and its outcome once over.

    Attributes:
        job: the job's number (1, 2, … in this server's life).
        groups: the groups found, once done.
        error: why it failed, in one line.
    """

    job: int
    collection: str
    threshold: float
    state: JobState
    started: float
    finished: float | None = None
    groups: int | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class ComputeJobs:
    """At most one compute running at a time; the latest job's status is kept for the page to poll."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._latest: ComputeJob | None = None

    def latest(self) -> ComputeJob | None:
        with self._lock:
            return self._latest

    def running(self) -> ComputeJob | None:
        """The job running now, if any."""
        latest = self.latest()
        return latest if latest is not None and latest.state == "running" else None

    def start(self, collection: str, threshold: float, work: Callable[[], int]) -> ComputeJob | None:
        """Run `work` (returns the number of groups found) in a background thread; None, and nothing started, when
        a job is running already."""
        with self._lock:
            if self._latest is not None and self._latest.state == "running":
                return None
            job = ComputeJob(next(self._ids), collection, threshold, "running", time.time())
            self._latest = job
        thread = threading.Thread(target=self._run, args=(job, work), name=f"lookalike-compute-{job.job}", daemon=True)
        thread.start()
        return job

    def _run(self, job: ComputeJob, work: Callable[[], int]) -> None:
        try:
            over = replace(job, state="done", groups=work(), finished=time.time())
        except Exception as e:  # a background thread: every failure is reported through the status
            if not isinstance(e, LookalikeError):
                log.exception("compute job %d failed", job.job)
            over = replace(job, state="failed", error=first_line(e), finished=time.time())
        with self._lock:
            self._latest = over
