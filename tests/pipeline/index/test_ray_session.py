"""Connecting a Ray ingest: the install hint without Ray, and the embedded store refused for a cluster that has nodes
on other machines (no Ray needed: a stand-in answers for it)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from pipeline.core.errors import LookalikeError
from pipeline.index import ray_session


def test_the_embedded_store_is_refused_with_a_cluster_on_other_machines() -> None:
    here = {"NodeManagerAddress": "10.0.0.1", "Alive": True}
    ray = SimpleNamespace(util=SimpleNamespace(get_node_ip_address=lambda: "10.0.0.1"))
    ray.nodes = lambda: [here, {"NodeManagerAddress": "10.0.0.9", "Alive": False}]
    ray_session.check_single_machine(ray, "auto")  # a dead node elsewhere does not count
    ray.nodes = lambda: [here, {"NodeManagerAddress": "10.0.0.2", "Alive": True}]
    with pytest.raises(LookalikeError, match=r"10\.0\.0\.2.*ingest into a Qdrant server") as caught:
        ray_session.check_single_machine(ray, "auto")
    assert caught.value.setting == "qdrant_url"  # the CLI adds "(set by --qdrant-url)"


def test_without_ray_the_error_gives_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(__import__("sys").modules, "ray", None)
    with pytest.raises(LookalikeError, match=r"pip install 'lookalike\[ray\]'"):
        ray_session.import_ray()
