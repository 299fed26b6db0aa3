"""Ingest time and peak memory against folder size, through the real CLI (a script, not a test).

For each size N, a folder of N small PNGs (32×32 random noise, so every file has distinct bytes; 1,000 files per
sub-folder) is generated once into the cache folder and kept for later runs. Each size is then ingested by
`lookalike ingest DIR -c bench -e phash --store STORE --no-progress` in its own child process, into a new store;
its peak resident memory is the ru_maxrss that `wait4` reports for that child (the largest of it and the decode
workers it reaped), so sizes do not share a peak.

    python benchmarks/ingest_scale.py                                  # 10k and 100k
    python benchmarks/ingest_scale.py --sizes 10000 --cache /tmp/ingest_scale --workers 2
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from bench_util import lookalike_command
from PIL import Image

FILES_PER_FOLDER = 1_000
SIDE = 32


@dataclass(frozen=True)
class Result:
    """One size's run: wall time, peak RSS of the ingest process tree, and the store's size on disk."""

    n: int
    seconds: float
    peak_rss_mib: float
    store_mib: float
    exit_code: int


def image_folder(cache: Path, n: int, seed: int = 0) -> Path:
    """The folder of `n` distinct PNGs under `cache`, generated on first use (one image in memory at a time).

    A `.complete` marker (hidden, so ingest does not list it) is written last: an interrupted generation is
    started again from scratch rather than leaving a short folder.
    """
    root = cache / f"images-{n}"
    if (root / ".complete").exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        folder = root / f"d{i // FILES_PER_FOLDER:04d}"
        if i % FILES_PER_FOLDER == 0:
            folder.mkdir(parents=True)
        pixels = rng.integers(0, 256, size=(SIDE, SIDE, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"i{i:07d}.png")
    (root / ".complete").write_text(f"{n}\n")
    return root


def _disk_mib(folder: Path) -> float:
    files = (p for p in folder.rglob("*") if p.is_file() and not p.is_symlink())
    return sum(p.stat().st_blocks * 512 for p in files) / 2**20  # allocated, not apparent, size


def run_one(images: Path, work: Path, workers: int) -> Result:
    """Ingest `images` into a new store under `work` with the CLI as a child process; wait4 gives its peak RSS."""
    store = work / "store"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    command = [lookalike_command(), "ingest", str(images), "-c", "bench", "-e", "phash", "--store", str(store)]
    command += ["--no-progress", "--workers", str(workers), "--device", "cpu", "--report", str(work / "report.csv")]
    start = time.perf_counter()
    with open(work / "output.txt", "wb") as out:
        child = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)  # reaped here; tell Popen so it does not wait again
    seconds = time.perf_counter() - start
    n = sum(1 for _ in images.rglob("*.png"))
    return Result(n, seconds, usage.ru_maxrss / 1024, _disk_mib(store), child.returncode)  # Linux: KiB


def _row(r: Result) -> str:
    cells = [f"{r.n:,}", f"{r.seconds:.1f}", f"{r.n / r.seconds:.0f}", f"{r.peak_rss_mib:,.0f}", f"{r.store_mib:.0f}"]
    return "| " + " | ".join(cells) + " |" + ("" if r.exit_code == 0 else f" exit {r.exit_code}")


def main() -> None:
    """Parse options, generate the folders, ingest each size in a child process, print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--cache", type=Path, default=Path("/tmp/ingest_scale"), help="images and stores go here")
    parser.add_argument("--workers", type=int, default=2, help="decode worker processes (lookalike --workers)")
    args = parser.parse_args()
    folders = {n: image_folder(args.cache, n) for n in args.sizes}
    print(f"phash · {SIDE}×{SIDE} PNG · {FILES_PER_FOLDER} files per folder · --workers {args.workers} · CPU")
    head = ["N", "seconds", "files/s", "peak RSS MiB", "store on disk MiB"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---:|" * len(head))
    for n, images in folders.items():
        print(_row(run_one(images, args.cache / f"run-{n}", args.workers)), flush=True)


if __name__ == "__main__":
    main()
