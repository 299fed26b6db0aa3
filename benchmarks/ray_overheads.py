"""Where a Ray ingest's time goes besides the work: the settings `pipeline.index.distributed` chose, measured on one
local Ray (a script, not a test; the numbers behind the README's "Distributed ingest" notes).

1. **Start** (each in a fresh process and a fresh local Ray of `--cpus` CPUs, after `ray.init`): 4 no-op Ray core
   tasks; the first Ray Data execution of a no-op map over 2,000 rows (Ray Data starts its own actors then); the
   same with a map that imports torch, as lookalike's worker module did for phash and dlib until it stopped.
2. **Ray Data's per-operator reservation**: the decode tasks of a phash ingest (`embed_rows`: decode, `prepare`,
   encode) over the source's files in 4 blocks, with `op_resource_reservation_enabled` on (Ray's default) and off.
3. **Block size**: the same pipeline in blocks of 128, 512 and 1,024 files (reservation off).

Steps 2 and 3 run in one process on one Ray, alternating, `--repeats` times; medians. The driver only counts rows
(no store writes), so these are Ray Data's costs alone.

    python benchmarks/ray_overheads.py --source ../shared/datasets
    python benchmarks/ray_overheads.py --source /tmp/ray_work/bench/src-phash --repeats 5 --parts pipeline
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


def _ray(cpus: int) -> AbstractContextManager[Any]:
    """A local Ray of `cpus` CPUs, set up as a Ray ingest sets it up (`ray_session`; the reservation is set per run)."""
    sys.path.insert(0, str(ROOT))
    from pipeline.index.ray_session import RayConfig, ray_session

    return ray_session(RayConfig("local", cpus=cpus))


def _noop(batch: Any) -> Any:
    return batch


def _import_torch(batch: Any) -> Any:
    import torch  # noqa: F401  (what the first task of a lookalike worker pays)

    return batch


def start_child(kind: str, cpus: int) -> None:
    """`--start-child`: one start measurement in this fresh process; prints its seconds."""
    with _ray(cpus) as ray:
        start = time.perf_counter()
        if kind == "core":
            ray.get([ray.remote(lambda: None).remote() for _ in range(4)])
        else:
            udf = _noop if kind == "data" else _import_torch
            rows = ray.data.from_items([{"i": i} for i in range(2000)], override_num_blocks=8)
            for _ in rows.map_batches(udf, batch_size=32, num_cpus=1).iter_batches(batch_size=None):
                pass
        print(f"{time.perf_counter() - start:.3f}")


def start_costs(cpus: int, repeats: int) -> None:
    labels = {
        "core": "4 no-op Ray core tasks",
        "data": "first Ray Data execution, no-op map (2,000 rows)",
        "torch": "the same, the map importing torch",
    }
    print(f"\n## Start, after ray.init ({cpus} CPUs; median of {repeats}, each a fresh process)\n")
    print("| what | seconds |\n|---|---:|")
    for kind, label in labels.items():
        runs = []
        for _ in range(repeats):
            command = [sys.executable, __file__, "--start-child", kind, "--cpus", str(cpus)]
            done = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT)
            runs.append(float(done.stdout.strip().splitlines()[-1]))
        print(f"| {label} | {statistics.median(runs):.2f} |")


def pipeline_costs(source: Path, cpus: int, repeats: int) -> None:
    sys.path.insert(0, str(ROOT))
    from pipeline.core.images import DecodeLimits
    from pipeline.encoders import create_encoder
    from pipeline.index.ray_workers import embed_rows, path_blocks

    paths = sorted(str(p) for p in source.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    kwargs = {"encoder": create_encoder("phash"), "limits": DecodeLimits()}
    with _ray(cpus) as ray:
        context = ray.data.DataContext.get_current()

        def run(reserve: bool, per_block: int) -> float:
            context.op_resource_reservation_enabled = reserve
            start = time.perf_counter()
            data = ray.data.from_arrow(path_blocks(paths, per_block))
            mapped = data.map_batches(embed_rows, batch_size=32, batch_format="pyarrow", fn_kwargs=kwargs, num_cpus=1)
            rows = sum(t.num_rows for t in mapped.iter_batches(batch_size=None, batch_format="pyarrow"))
            assert rows == len(paths)
            return time.perf_counter() - start

        quarter = -(-len(paths) // 4)
        ways = {
            f"reservation on (Ray's default), 4 blocks of {quarter:,}": (True, quarter),
            f"reservation off, 4 blocks of {quarter:,}": (False, quarter),
            "reservation off, blocks of 128 files": (False, 128),
            "reservation off, blocks of 512 files": (False, 512),
            "reservation off, blocks of 1,024 files": (False, 1024),
        }
        run(False, 512)  # the workers import lookalike once, outside the timings
        times: dict[str, list[float]] = {label: [] for label in ways}
        for _ in range(repeats):
            for label, (reserve, per_block) in ways.items():
                times[label].append(run(reserve, per_block))
        what = f"{len(paths):,} files of {source} ({cpus} CPUs, median of {repeats})"
        print(f"\n## phash decode tasks through Ray Data: {what}\n")
        print("| how | seconds | img/s |\n|---|---:|---:|")
        for label, runs in times.items():
            seconds = statistics.median(runs)
            print(f"| {label} | {seconds:.2f} | {len(paths) / seconds:,.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=ROOT.parent / "shared" / "datasets")
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--parts", default="start,pipeline", help="which measurements: start, pipeline or both")
    parser.add_argument("--start-child", choices=["core", "data", "torch"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.start_child:
        start_child(args.start_child, args.cpus)
        return
    if "start" in args.parts:
        start_costs(args.cpus, args.repeats)
    if "pipeline" in args.parts:
        pipeline_costs(args.source, args.cpus, args.repeats)


if __name__ == "__main__":
    main()
