#!/usr/bin/env bash
# End to end, before and after the store engine, on ../shared/datasets: the previous lookalike (qdrant-client's
# local mode) and this one (qdrant-edge), the same commands on the same machine, one after the other.
#
#   git worktree add /tmp/lookalike-old f975c6f      # the last version on local mode
#   bash benchmarks/store_e2e.sh /tmp/lookalike-old
#
# Steps: the old version embeds LFW View 1 (eval pairs), TLL (eval candidates, submit tll) with dlib, and runs
# each again (a re-run embeds nothing: its time is the time outside embedding); its store is then copied and
# moved to the new engine with `lookalike store migrate`, and the new version runs the same re-runs on it (same
# vectors, so the numbers and the submission file must come out identical). Then `make demo`'s command and a
# phash ingest of 4,500 LFW images + 1,200 queries, each from an empty store, old vs new, beside imagehash alone.
set -euo pipefail
cd "$(dirname "$0")/.."
OLD=$(cd "$1" && pwd); NEW=$PWD; PY="$NEW/.venv/bin/python"
DATA=$(cd "${LOOKALIKE_DATA:-../shared/datasets}" && pwd)
W=${E2E_WORK:-/tmp/store-e2e}; rm -rf "$W"; mkdir -p "$W"
FACE=(-e dlib --no-face center --workers 2 --no-progress)

run() {  # run LABEL CHECKOUT ARGS... : time one lookalike command, print its time and headline
  local label=$1 dir=$2; shift 2
  (cd "$dir" && /usr/bin/time -o "$W/$label.time" -f "%e %M" "$PY" cli.py "$@" > "$W/$label.out" 2>&1) || {
    echo "$label FAILED:"; tail -3 "$W/$label.out"; return 1; }
  read -r wall rss < "$W/$label.time"
  printf '%-22s wall %8.1f s  max RSS %5d MB  | %s\n' "$label" "$wall" "$((rss / 1024))" \
    "$(grep -m2 -E 'accuracy|top-2|top2|rank 1|precision|wrote|ingested' "$W/$label.out" | tr -s ' \n' ' ' | cut -c1-150)"
}

pairs=(eval pairs --dataset "$DATA/lfw" "${FACE[@]}")
cands=(eval candidates --dataset "$DATA/tll" "${FACE[@]}")
submit=(submit tll --dataset "$DATA/tll" "${FACE[@]}" --validate)
for v in first rerun; do
  run "old-pairs-$v"  "$OLD" "${pairs[@]}" --store "$W/old" --out "$W/eval-pairs-old"
  run "old-cands-$v"  "$OLD" "${cands[@]}" --store "$W/old" --out "$W/eval-cands-old"
  run "old-submit-$v" "$OLD" "${submit[@]}" --store "$W/old" --out "$W/sub-old.csv"
done
cp -r "$W/old" "$W/new"
run "new-migrate"      "$NEW" store migrate --store "$W/new" --no-progress
run "new-pairs-rerun"  "$NEW" "${pairs[@]}" --store "$W/new" --out "$W/eval-pairs-new"
run "new-cands-rerun"  "$NEW" "${cands[@]}" --store "$W/new" --out "$W/eval-cands-new"
run "new-submit-rerun" "$NEW" "${submit[@]}" --store "$W/new" --out "$W/sub-new.csv"
"$PY" - "$W/sub-old.csv" "$W/sub-new.csv" <<'PY'
import sys
import numpy as np
import polars as pl
old, new = (pl.read_csv(p) for p in sys.argv[1:])
assert old["left"].to_list() == new["left"].to_list(), "the rows differ"
a, b = old.drop("left").to_numpy(), new.drop("left").to_numpy()
same = (np.argsort(-a, axis=1, kind="stable") == np.argsort(-b, axis=1, kind="stable")).all(axis=1)
print(f"submissions: {same.mean():.4f} of rows rank the 20 candidates identically; max |score diff| {abs(a - b).max():.1e}")
PY

demo=(eval retrieval --dataset "$DATA/lfw/lfw-deepfunneled" "${FACE[@]}" --collection lfw-dlib --limit 1500)
run "old-demo" "$OLD" "${demo[@]}" --store "$W/old-demo" --out "$W/demo-old"
run "new-demo" "$NEW" "${demo[@]}" --store "$W/new-demo" --out "$W/demo-new"

find "$DATA/lfw/lfw-deepfunneled" -name '*.jpg' | sort | head -4500 > "$W/files.txt"
head -1200 "$W/files.txt" > "$W/queries.txt"
for v in old new; do
  dir=$OLD; [ $v = new ] && dir=$NEW
  run "$v-phash-ingest" "$dir" ingest "$DATA/lfw/lfw-deepfunneled" -c ph -e phash:8 --limit 4500 --workers 2 \
    --no-progress --store "$W/$v-ph" --report "$W/$v-ph-report.csv"
  mapfile -t queries < "$W/queries.txt"
  run "$v-phash-1200q" "$dir" query "${queries[@]}" -c ph -k 10 --exclude-self --csv --store "$W/$v-ph"
done
/usr/bin/time -f "imagehash alone      wall %e s (phash, hash_size 8, the same 4,500 files, one process)" "$PY" -c "
import sys, imagehash
from PIL import Image
for line in open('$W/files.txt'):
    with Image.open(line.strip()) as im:
        imagehash.phash(im.convert('RGB'), hash_size=8)
"
