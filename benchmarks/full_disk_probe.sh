#!/usr/bin/env bash
# What the embedded engine does on a full disk, with lookalike's free-space guard switched off (min_free_bytes=0):
# (1) the exit status of a process writing 3,000 points into a store on a 1 MiB tmpfs (135 = killed by SIGBUS),
# (2) how much a 200 MiB tmpfs fills when a shard written there is opened again (its write-ahead log).
# Needs root (mount). The numbers behind the README's "Full disk" paragraph.
#   sudo bash benchmarks/full_disk_probe.sh
set -uo pipefail
cd "$(dirname "$0")/.."
disk=$(mktemp -d)
trap 'umount -l "$disk" 2>/dev/null; rm -rf "$disk"' EXIT
write='
import sys, numpy as np
from pathlib import Path
from pipeline.store import Point, VectorSpec, VectorStore, point_id_for
from pipeline.store.edge import EdgeBackend
with VectorStore(EdgeBackend(Path(sys.argv[1]), min_free_bytes=0)) as vs:
    vs.ensure_collection("c", [VectorSpec("v", 64, "cosine")])
    rng = np.random.default_rng(0)
    for start in range(0, 3000, 64):
        vs.upsert("c", [Point(point_id_for(f"{i:064x}"), {"v": rng.normal(size=64)}, {"path": str(i)}) for i in range(start, min(start + 64, 3000))])
'
mount -t tmpfs -o size=1m tmpfs "$disk"
.venv/bin/python -c "$write" "$disk/store" 2>/dev/null
echo "writing into a full 1 MiB tmpfs: exit status $?"
umount "$disk"; mount -t tmpfs -o size=200m tmpfs "$disk"
.venv/bin/python -c "$write" "$disk/store"
before=$(df -m --output=used "$disk" | tail -1)
.venv/bin/python -c "
import sys; from pathlib import Path
from pipeline.store import VectorStore
from pipeline.store.edge import EdgeBackend
with VectorStore(EdgeBackend(Path(sys.argv[1]), min_free_bytes=0)) as vs: print('points', vs.count('c'))" "$disk/store"
after=$(df -m --output=used "$disk" | tail -1)
echo "reopening the shard: disk use ${before// /} MiB -> ${after// /} MiB"
