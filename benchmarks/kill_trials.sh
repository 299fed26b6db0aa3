#!/usr/bin/env bash
# kill -9 of `lookalike ingest` (the real command line, 2 DataLoader workers, a test encoder slowed to 0.1 s per batch
# of 4) after a random 0–45 of its 50 batches were acknowledged (0: once its 2 workers are up), N times (default 10).
# Each trial checks what issue 16 asks: `pgrep -f <store path>` finds nothing within 5 s, and the re-run completes
# with every image in the collection exactly once.
#   bash benchmarks/kill_trials.sh [N]
set -uo pipefail
cd "$(dirname "$0")/.."
N=${1:-10}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export PYTHONPATH=".:tests"
.venv/bin/python -c "
from pathlib import Path; from fakes import write_noise_images
write_noise_images(Path('$work/imgs'), 200)"
ok=0
for i in $(seq 1 "$N"); do
  store="$work/store-$i"
  .venv/bin/python tests/cli_child.py ingest "$work/imgs" -c c -e slow:0.1 --store "$store" --workers 2 \
    --batch-size 4 --no-progress > "$work/acks" 2>&1 &
  pid=$!
  target=$(( RANDOM % 46 ))  # acknowledged batches before the kill; 0 = as soon as the 2 workers are up
  until [[ $(grep -c '^acked' "$work/acks") -ge $target && $(pgrep -fc "$store") -ge 3 ]]; do sleep 0.02; done
  acked=$(grep -c '^acked' "$work/acks")
  kill -9 "$pid"; wait "$pid" 2>/dev/null
  t0=$(date +%s.%N); gone=no
  for _ in $(seq 1 50); do
    if ! pgrep -f "$store" > /dev/null; then gone=yes; break; fi
    sleep 0.1
  done
  waited=$(echo "$(date +%s.%N) - $t0" | bc)
  rerun=$(.venv/bin/python tests/cli_child.py ingest "$work/imgs" -c c -e slow:0 --store "$store" --workers 2 \
    --no-progress 2>&1 | grep '^seen')
  points=$(.venv/bin/python cli.py collections --store "$store" | awk '$1 == "c" {print $2}')
  printf 'trial %2d: killed after %3d batches acked; processes gone: %s (%.1f s); re-run: %s; points %s\n' \
    "$i" "$acked" "$gone" "$waited" "$rerun" "$points"
  [[ $gone == yes && $points == 200 ]] && ok=$((ok + 1))
done
echo "kill -9 of an ingest, then re-run: $ok of $N with no process left within 5 s and all 200 points"
