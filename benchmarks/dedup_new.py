"""`lookalike dedup --new` against a large indexed collection: time, and planted duplicates found (a script, not a
test).

1. The collection: a folder of images (default /tmp/ingest_scale/images-100000, as benchmarks/ingest_scale.py makes
   it; `--generate N` makes N 32×32 noise PNGs there, 1,000 per folder, if it does not exist), ingested with
   `lookalike ingest DIR -c COLLECTION -e phash` unless the store already holds the collection.
2. The new set, made fresh in WORK/new from a seeded sample of the collection's files: `--copies` byte copies,
   `--near` re-encoded copies (upscaled to 64×64 bicubic, then JPEG q90: phash moves ≤ 4 of 64 bits on these images)
   and `--fresh` new random images; the truth goes to WORK/planted.csv.
3. The timed run, as a child process: `lookalike dedup -c COLLECTION --new WORK/new --threshold T --store STORE
   --out WORK/out --no-progress --device cpu`; its wall time (interpreter start and imports included) and the
   check's own seconds from summary.json.
4. The count: a planted copy is found when its row is `exact` (byte copies) or `near` (re-encoded ones) with the
   original's point id; any other match (a fresh image matched, a copy matched to another image) is a false match.

    python benchmarks/dedup_new.py                                  # the 100k folder, 250 + 250 planted, 500 fresh
    python benchmarks/dedup_new.py --images /tmp/dedup_new/images --generate 100000 --store /tmp/dedup_new/store
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
from bench_util import lookalike_command
from PIL import Image

from pipeline.core.config import StoreConfig
from pipeline.store import VectorStore, point_id_for

FILES_PER_FOLDER = 1_000
SIDE = 32


@dataclass(frozen=True)
class Planted:
    """One file of the new set: its kind (exact, near, fresh) and the point id of the original it copies."""

    path: Path
    kind: str
    original_id: str = ""


def generate_collection(root: Path, n: int, seed: int = 0) -> None:
    """`n` distinct 32×32 noise PNGs under `root`, 1,000 per folder, one image in memory at a time."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        folder = root / f"d{i // FILES_PER_FOLDER:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, size=(SIDE, SIDE, 3), dtype=np.uint8)).save(folder / f"i{i:07d}.png")


def ensure_ingested(images: Path, collection: str, store: Path, workers: int) -> float:
    """Ingest `images` into `collection` unless the store holds it already; the seconds it took (0 if skipped)."""
    if store.exists():
        with VectorStore.open(StoreConfig(path=str(store))) as vs:
            if vs.has_collection(collection):
                return 0.0
    command = [lookalike_command(), "ingest", str(images), "-c", collection, "-e", "phash", "--store", str(store)]
    command += ["--workers", str(workers), "--no-progress", "--report", str(store.parent / f"{collection}-ingest.csv")]
    start = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - start


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _near_copy(src: Path, dst: Path) -> None:
    """Upscaled to 64×64 and saved as JPEG q90: other bytes, nearly the same phash."""
    buffer = io.BytesIO()
    Image.open(src).convert("RGB").resize((64, 64), Image.Resampling.BICUBIC).save(buffer, "JPEG", quality=90)
    dst.write_bytes(buffer.getvalue())


def make_new_set(images: Path, new: Path, counts: tuple[int, int, int], seed: int) -> list[Planted]:
    """Byte copies, re-encoded copies and fresh images in `new` (made again from scratch), from a seeded sample."""
    copies, near, fresh = counts
    shutil.rmtree(new, ignore_errors=True)
    for kind in ("exact", "near", "fresh"):
        (new / kind).mkdir(parents=True)
    files = sorted(images.rglob("*.png"))
    rng = np.random.default_rng(seed)
    originals = [files[i] for i in rng.choice(len(files), size=copies + near, replace=False)]
    planted = []
    for i, src in enumerate(originals):
        kind = "exact" if i < copies else "near"
        dst = new / kind / f"{kind}_{i:04d}_{src.stem}{'.png' if kind == 'exact' else '.jpg'}"
        if kind == "exact":
            shutil.copyfile(src, dst)
        else:
            _near_copy(src, dst)
        planted.append(Planted(dst, kind, point_id_for(_sha(src))))
    for i in range(fresh):
        dst = new / "fresh" / f"fresh_{i:04d}.png"
        Image.fromarray(rng.integers(0, 256, size=(SIDE, SIDE, 3), dtype=np.uint8)).save(dst)
        planted.append(Planted(dst, "fresh"))
    return planted


def timed_check(collection: str, new: Path, store: Path, out: Path, extra: list[str]) -> tuple[float, int]:
    """Run `dedup --new` as a child process (`extra`: --threshold and search options); its wall seconds and exit
    code."""
    command = [lookalike_command(), "dedup", "-c", collection, "--new", str(new), *extra]
    command += ["--store", str(store), "--out", str(out), "--no-progress", "--device", "cpu"]
    start = time.perf_counter()
    done = subprocess.run(command)
    return time.perf_counter() - start, done.returncode


def score(planted: list[Planted], report: pl.DataFrame) -> dict[str, int]:
    """Planted copies found with the right tier and original; false matches; files missing from the report."""
    rows = {Path(r["new_path"]).name: r for r in report.iter_rows(named=True)}
    counts = {"exact found": 0, "near found": 0, "false matches": 0, "missing rows": 0}
    for p in planted:
        row = rows.get(p.path.name)
        if row is None:
            counts["missing rows"] += 1
        elif p.kind != "fresh" and row["status"] == p.kind and row["match_point_id"] == p.original_id:
            counts[f"{p.kind} found"] += 1
        elif row["status"] != "unique":
            counts["false matches"] += 1
    return counts


def main() -> None:
    """Parse options, make and ingest the collection if needed, plant the new set, time the check, print a table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=Path, default=Path("/tmp/ingest_scale/images-100000"))
    parser.add_argument("--generate", type=int, default=0, help="make this many images in --images if it is missing")
    parser.add_argument("--collection", default="new100k")
    parser.add_argument("--store", type=Path, default=Path("/tmp/dedup_new/store"))
    parser.add_argument("--work", type=Path, default=Path("/tmp/dedup_new/run"), help="new set and outputs go here")
    parser.add_argument("--copies", type=int, default=250)
    parser.add_argument("--near", type=int, default=250)
    parser.add_argument("--fresh", type=int, default=500)
    parser.add_argument("--threshold", type=float, default=0.9)
    parser.add_argument("--method", default="auto", help="dedup --method: auto, exact or ann (the HNSW index)")
    parser.add_argument("--ef", type=int, default=32, help="dedup --ef: HNSW beam, for --method ann")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workers", type=int, default=2, help="ingest's decode workers")
    args = parser.parse_args()
    if not args.images.is_dir() and args.generate:
        generate_collection(args.images, args.generate)
    ingest_seconds = ensure_ingested(args.images, args.collection, args.store, args.workers)
    planted = make_new_set(args.images, args.work / "new", (args.copies, args.near, args.fresh), args.seed)
    extra = ["--threshold", str(args.threshold), "--method", args.method, "--ef", str(args.ef)]
    wall, code = timed_check(args.collection, args.work / "new", args.store, args.work / "out", extra)
    summary = json.loads((args.work / "out" / "summary.json").read_text())
    counts = score(planted, pl.read_csv(args.work / "out" / "new-duplicates.csv", infer_schema=False))
    search = summary["search"]
    beam = f" (ef {search['ef']})" if search["ef"] else ""
    print(f"phash · threshold {args.threshold:g} · {search['method']} search{beam} · {args.collection}")
    if ingest_seconds:
        print(f"ingest of the collection: {ingest_seconds:.1f} s")
    head = ["new files", "wall s (CLI)", "check s", "exact found", "near found", "false matches", "exit"]
    cells = [
        f"{len(planted):,}",
        f"{wall:.1f}",
        f"{summary['seconds']['total']:.1f}",
        f"{counts['exact found']} / {args.copies}",
        f"{counts['near found']} / {args.near}",
        str(counts["false matches"] + counts["missing rows"]),
        str(code),
    ]
    print("| " + " | ".join(head) + " |\n|" + "---:|" * len(head) + "\n| " + " | ".join(cells) + " |")
    print(f"counts: {summary['counts']} · seconds: {summary['seconds']}")


if __name__ == "__main__":
    main()
