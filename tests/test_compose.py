"""docker-compose.yml: the single node stays the default; the `cluster` profile is three Qdrant nodes, one
bootstrap peer and two that join it, each with its own volume and a health check.

No Docker engine runs here, so the file is checked as data (PyYAML, with the anchors and merge keys compose uses
resolved), and, where a compose CLI is installed, by `docker compose config` too (it validates without an engine).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

COMPOSE = Path(__file__).resolve().parents[1] / "docker-compose.yml"
NODES = ("qdrant-node1", "qdrant-node2", "qdrant-node3")
IMAGE = "qdrant/qdrant:v1.20.0"


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text())["services"])


def test_the_default_set_is_exactly_todays_single_node(services: dict[str, Any]) -> None:
    """`docker compose up -d` starts the services without a profile: only `qdrant`, as before the cluster existed."""
    assert [name for name, s in services.items() if not s.get("profiles")] == ["qdrant"]
    single = services["qdrant"]
    assert single["image"] == IMAGE and single["ports"] == ["6333:6333", "6334:6334"]
    assert single["volumes"] == ["lookalike-qdrant:/qdrant/storage"]
    assert "QDRANT__CLUSTER__ENABLED" not in single["environment"] and "command" not in single
    assert "/readyz" in single["healthcheck"]["test"][1]


def test_the_cluster_profile_is_three_nodes_with_a_bootstrap_peer(services: dict[str, Any]) -> None:
    assert sorted(n for n, s in services.items() if "cluster" in s.get("profiles", [])) == list(NODES)
    assert services["qdrant-node1"]["command"] == "./qdrant --uri http://qdrant-node1:6335"
    for n in NODES[1:]:
        assert services[n]["command"] == f"./qdrant --bootstrap http://qdrant-node1:6335 --uri http://{n}:6335"
    for n in NODES:
        node = services[n]
        assert node["image"] == IMAGE and node["restart"] == "unless-stopped"
        assert node["environment"]["QDRANT__CLUSTER__ENABLED"] == "true"
        assert node["environment"]["QDRANT__CLUSTER__P2P__PORT"] == "6335"
        assert node["healthcheck"] == services["qdrant"]["healthcheck"]


def test_each_node_has_its_own_named_volume(services: dict[str, Any]) -> None:
    declared = yaml.safe_load(COMPOSE.read_text())["volumes"]
    mounts = [services[n]["volumes"] for n in NODES]
    assert mounts == [[f"lookalike-qdrant-node{i}:/qdrant/storage"] for i in (1, 2, 3)]
    assert set(declared) == {"lookalike-qdrant", *(f"lookalike-qdrant-node{i}" for i in (1, 2, 3))}


def test_only_the_entry_node_is_published_on_ports_apart_from_the_single_nodes(services: dict[str, Any]) -> None:
    """Both sets may run at once (`--profile cluster up` starts the single node too): no host port twice, and the
    peer-to-peer port 6335 (it accepts writes) never published."""
    assert services["qdrant-node1"]["ports"] == ["6433:6333", "6434:6334"]
    assert all("ports" not in services[n] for n in NODES[1:])
    published = [p.split(":")[0] for s in services.values() for p in s.get("ports", [])]
    assert len(published) == len(set(published)) and "6335" not in published


def test_nodes_join_one_at_a_time_once_the_one_before_is_healthy(services: dict[str, Any]) -> None:
    assert "depends_on" not in services["qdrant-node1"]
    assert services["qdrant-node2"]["depends_on"] == {"qdrant-node1": {"condition": "service_healthy"}}
    assert services["qdrant-node3"]["depends_on"] == {"qdrant-node2": {"condition": "service_healthy"}}


def _compose_cli() -> list[str] | None:
    """`docker compose` (v2 plugin) or `docker-compose` (v1), whichever answers; None when neither is installed."""
    for command in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(command[0]) is None:
            continue
        probe = subprocess.run([*command, "version"], capture_output=True, text=True, check=False)
        if probe.returncode == 0:
            return command
    return None


@pytest.mark.parametrize("profile", [[], ["--profile", "cluster"]], ids=["default", "cluster"])
def test_compose_validates_the_file(profile: list[str]) -> None:
    compose = _compose_cli()
    if compose is None:
        pytest.skip("no docker compose CLI installed (apt-get install docker-compose gives one)")
    result = subprocess.run(
        [*compose, "-f", str(COMPOSE), *profile, "config", "-q"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
