#!/usr/bin/env bash
# The embedded store's crash guarantees, N trials each (default 20): kill -9 of an ingest after a random number of
# acknowledged points (4–36 of 40, with 2 DataLoader workers) then a re-run, and a second process opening the store
# while an ingest runs. Each trial is one run of the regression test (tests/pipeline/store/test_store_edge.py),
# which checks: every acknowledged point kept, no process left, the re-run gives the exact point set without
# duplicates; the second process exits 2 with one line, the first completes with its exact point set.
#   bash benchmarks/store_crash_trials.sh [N]
set -uo pipefail
cd "$(dirname "$0")/.."
N=${1:-20}
kill_ok=0; second_ok=0
for i in $(seq 1 "$N"); do
  after=$(( (RANDOM % 9 + 1) * 4 ))
  LOOKALIKE_KILL_AFTER=$after .venv/bin/python -m pytest -q -p no:cacheprovider \
    tests/pipeline/store/test_store_edge.py -k kill_9 > /tmp/store-trial.log 2>&1 && kill_ok=$((kill_ok + 1)) \
    || { echo "kill trial $i (after $after points) FAILED:"; grep -E "^E " /tmp/store-trial.log | head -5; }
  .venv/bin/python -m pytest -q -p no:cacheprovider tests/pipeline/store/test_store_edge.py -k second_process \
    > /tmp/store-trial.log 2>&1 && second_ok=$((second_ok + 1)) \
    || { echo "second-process trial $i FAILED:"; grep -E "^E " /tmp/store-trial.log | head -5; }
done
echo "kill -9 during ingest, then re-run: $kill_ok of $N exact"
echo "second process while an ingest runs: $second_ok of $N refused in one line, first writer exact"
