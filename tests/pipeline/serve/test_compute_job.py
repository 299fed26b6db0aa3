""" "Compute now" as a background job: the POST answers at once (202), the status says running / done / failed, a
second compute is refused while one runs, and the store keeps answering other requests meanwhile."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the serve extra (fastapi) is not installed")

from conftest import COLLECTION, wait_for_compute

from pipeline.core.errors import LookalikeError
from pipeline.serve import duplicates_api

BODY = {"collection": COLLECTION, "threshold": 0.9}


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Make the job's dedup use the store, then wait (up to 30 s) until the test lets it go on: the Event to set."""
    entered, release = threading.Event(), threading.Event()
    real = duplicates_api.run_dedup

    def slow(store: Any, *args: Any, **kwargs: Any) -> Any:
        assert store.count(COLLECTION) > 0
        entered.set()
        release.wait(30)
        return real(store, *args, **kwargs)

    monkeypatch.setattr(duplicates_api, "run_dedup", slow)
    yield entered, release
    release.set()


def test_other_requests_answer_while_a_compute_runs(client: Any, held: Any) -> None:
    entered, release = held
    started = time.monotonic()
    answer = client.post("/api/duplicates/compute", json=BODY)
    assert answer.status_code == 202 and time.monotonic() - started < 5, answer.text
    job = answer.json()
    assert job["state"] == "running" and job["collection"] == COLLECTION and job["threshold"] == 0.9
    assert entered.wait(10), "the job did not start"

    started = time.monotonic()
    listed = client.get("/api/collections")
    sample = listed.json()["collections"][0]["samples"][0]["point_id"]
    found = client.get("/api/search", params={"collection": COLLECTION, "id": sample, "k": 3})
    thumb = client.get(f"/thumb/{COLLECTION}/{sample}")
    took = time.monotonic() - started
    assert (listed.status_code, found.status_code, thumb.status_code) == (200, 200, 200), found.text
    assert took < 5, f"requests took {took:.1f} s while the compute ran (it waits 30 s)"

    status = client.get("/api/duplicates/compute/status").json()
    assert status["state"] == "running" and status["job"] == job["job"]
    again = client.post("/api/duplicates/compute", json=BODY)
    assert again.status_code == 409 and "a compute is running" in again.json()["error"]
    moves = {"collection": COLLECTION, "groups": [{"group_id": 1, "keeper": "x"}]}
    refused = client.post("/api/duplicates/apply", json=moves)
    assert refused.status_code == 409 and "a compute is running" in refused.json()["error"]

    release.set()
    done = wait_for_compute(client)
    assert done["state"] == "done" and done["groups"] == 2 and done["job"] == job["job"], done
    assert done["error"] is None and done["finished"] >= done["started"]
    assert client.get("/api/duplicates", params={"collection": COLLECTION}).json()["run"]["groups"] == 2


@pytest.mark.parametrize(
    ("error", "says"),
    [
        (LookalikeError("no vectors to compare\nsecond line of the message"), "no vectors to compare"),
        (RuntimeError("engine fell over"), "engine fell over"),
    ],
)
def test_a_failed_compute_says_why_in_one_line(
    client: Any, monkeypatch: pytest.MonkeyPatch, error: Exception, says: str
) -> None:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise error

    monkeypatch.setattr(duplicates_api, "run_dedup", fail)
    assert client.post("/api/duplicates/compute", json=BODY).status_code == 202
    status = wait_for_compute(client)
    assert status["state"] == "failed" and status["error"] == says and status["groups"] is None, status
    assert client.post("/api/duplicates/compute", json=BODY).status_code == 202  # a failed job does not block
    wait_for_compute(client)


def test_status_before_any_compute_is_idle(client: Any) -> None:
    assert client.get("/api/duplicates/compute/status").json() == {"job": None, "state": "idle"}


def test_compute_of_an_unknown_collection_is_404(client: Any) -> None:
    answer = client.post("/api/duplicates/compute", json={"collection": "nope", "threshold": 0.9})
    assert answer.status_code == 404
    assert client.get("/api/duplicates/compute/status").json()["state"] == "idle"
