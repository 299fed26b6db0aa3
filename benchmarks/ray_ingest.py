"""`lookalike ingest --ray local` against the plain ingest on the same files: identical collections, and img/s with
1 and 2 Ray CPU workers against the single process with 1 and 2 decode workers, in one run (a script, not a test).

Sources (read in place, as folders of symlinks under --work): 2,000 images for phash, 1,000 TLL training images
(500 left, 500 right) and the first 1,000 LFW images by path; 300 LFW faces for dlib (`--no-face center`).

Each ingest is the real command line in its own process, into its own new store (`--device cpu`):

    lookalike ingest SRC -c bench -e phash --workers W --store S --no-progress --device cpu            # plain
    lookalike ingest SRC -c bench -e phash --workers W --store S --no-progress --device cpu --ray local  # Ray

`img/s` is what the command prints (images ingested over the ingest's own time: hashing, checks, decode, encode,
writes; not Python's start or, for Ray, starting Ray itself); `wall` is the whole command. "Ray warm" runs the
same ingest twice in one process on one local Ray (the library call, `ingest_ray`) and times the second: Ray and
its worker processes already up, as when a long ingest is under way, but new encode actors, as every run starts.

"Ray cluster" runs start a local cluster first (`ray start --head --num-cpus N`, as a user with Ray running does),
then run the same command with `--ray auto` twice, each timed: the 1st run's tasks start the cluster's worker
processes, the 2nd finds them up (every run after the first against a running cluster).

Every Ray store is compared with the plain store: point ids, vectors (exactly) and payloads; the printed counts
and the reasons CSV too.

    python benchmarks/ray_ingest.py --work /tmp/ray_work/bench
    python benchmarks/ray_ingest.py --encoders phash --repeats 3
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from bench_util import lookalike_command

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "datasets"
SUMMARY = re.compile(r"^(?:\S+: )?(seen .*) \(([\d.]+) img/s, ([\d.]+) s\)$", re.MULTILINE)
ENCODER_ARGS = {"phash": ["-e", "phash"], "dlib": ["-e", "dlib", "--no-face", "center"]}


@dataclass(frozen=True)
class Run:
    """One ingest: its store, printed counts, img/s over the ingest's own time, and the whole command's seconds."""

    label: str
    store: Path
    counts: str
    images_per_second: float
    wall: float
    report: str


def link_sources(work: Path, tll: Path, lfw: Path) -> dict[str, Path]:
    """The two benchmark folders of symlinks (made once): `phash` 1,000 TLL + 1,000 LFW, `dlib` 300 LFW faces."""
    people = sorted(p for p in (lfw / "lfw-deepfunneled").iterdir() if p.is_dir())
    faces = [f for person in people for f in sorted(person.glob("*.jpg"))]
    tll_files = (
        sorted((tll / "train" / "left").glob("*.jpg"))[:500] + sorted((tll / "train" / "right").glob("*.jpg"))[:500]
    )
    plan = {
        "phash": [(Path("tll") / f.parent.name / f.name, f) for f in tll_files]
        + [(Path("lfw") / f.parent.name / f.name, f) for f in faces[:1000]],
        "dlib": [(Path(f.parent.name) / f.name, f) for f in faces[:300]],
    }
    folders = {}
    for name, links in plan.items():
        folder = work / f"src-{name}"
        if not (folder / ".complete").exists():
            shutil.rmtree(folder, ignore_errors=True)
            for relative, target in links:
                (folder / relative).parent.mkdir(parents=True, exist_ok=True)
                (folder / relative).symlink_to(target.resolve())
            (folder / ".complete").write_text(f"{len(links)}\n")
        folders[name] = folder
    return folders


def run_cli(source: Path, out: Path, encoder: str, workers: int, ray: str = "") -> Run:
    """One `lookalike ingest` in a child process, into a new store under `out`; `ray`: the `--ray` address."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    command = [lookalike_command(), "ingest", str(source), "-c", "bench", *ENCODER_ARGS[encoder]]
    command += ["--workers", str(workers), "--store", str(out / "store"), "--report", str(out / "report.csv")]
    command += ["--no-progress", "--device", "cpu", *(["--ray", ray] if ray else [])]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    found = SUMMARY.search(done.stdout)
    if found is None:
        raise SystemExit(f"{' '.join(command)} gave no summary (exit {done.returncode}):\n{done.stdout}{done.stderr}")
    label = f"{f'Ray {ray}' if ray else 'single process'}, {workers} {'CPU' if ray else 'decode worker'}"
    return Run(label, out / "store", found[1], float(found[2]), wall, _read(out / "report.csv"))


def run_cluster(source: Path, out: Path, encoder: str, cpus: int) -> tuple[Run, Run]:
    """A running local Ray cluster (`ray start --head --num-cpus CPUS`), then the same `lookalike ingest … --ray
    auto` twice: the first run's tasks start the cluster's worker processes, the second finds them up, as every run
    after the first against a running cluster does."""
    ray = [str(Path(sys.executable).parent / "ray")]
    head = [*ray, "start", "--head", "--num-cpus", str(cpus), "--include-dashboard=false", "--disable-usage-stats"]
    subprocess.run(head, check=True, capture_output=True)
    try:
        first = run_cli(source, out / "first", encoder, cpus, ray="auto")
        second = run_cli(source, out / "second", encoder, cpus, ray="auto")
    finally:
        subprocess.run([*ray, "stop", "--force"], check=False, capture_output=True)
    label = f"Ray cluster already running (`ray start --head --num-cpus {cpus}`), `--ray auto`"
    return replace(first, label=f"{label}, 1st run"), replace(second, label=f"{label}, 2nd run")


def run_warm(source: Path, out: Path, encoder: str, cpus: int) -> Run:
    """Two library ingests in one child process on one local Ray of `cpus` CPUs; the second is timed."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    command = [sys.executable, __file__, "--warm-child", str(source), str(out), encoder, str(cpus)]
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"warm Ray run failed (exit {done.returncode}):\n{done.stdout}{done.stderr}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    label = f"Ray local warm, {cpus} CPU"
    return Run(label, out / "store", result["counts"], result["img_s"], result["seconds"], _read(out / "report.csv"))


def warm_child(source: Path, out: Path, encoder: str, cpus: int) -> None:
    """`--warm-child`: ingest into a scratch store (starts Ray's workers), then time the same into `out/store`."""
    import functools

    sys.path.insert(0, str(ROOT))
    from pipeline.core.config import IngestConfig, StoreConfig
    from pipeline.encoders import EncoderOptions, create_encoder
    from pipeline.index.distributed import RemoteEncoder, ingest_ray
    from pipeline.index.ray_session import RayConfig, ray_session
    from pipeline.index.sources import stream_source
    from pipeline.store import VectorStore

    options = EncoderOptions(no_face="center" if encoder == "dlib" else "skip")
    remote = [RemoteEncoder.from_factory(functools.partial(create_encoder, encoder, options=options))]
    ray_config = RayConfig("local", cpus=cpus, use_gpus=False)
    with ray_session(ray_config):
        for store_path, report in ((out / "warmup", None), (out / "store", out / "report.csv")):
            config = IngestConfig("bench", workers=cpus, report_path=report, progress=False)
            with VectorStore.open(StoreConfig(path=str(store_path))) as store:
                start = time.perf_counter()
                [summary] = ingest_ray(stream_source(source), remote, store, config, ray_config, point_ids=False)
                seconds = time.perf_counter() - start
    counts = (
        f"seen {summary.seen} · ingested {summary.ingested} · already present {summary.already_present} · "
        f"duplicate content {summary.duplicate_content} · no face {summary.no_face} · failed {summary.failed} · "
        f"skipped {summary.skipped}"
    )
    print(json.dumps({"counts": counts, "img_s": summary.images_per_second, "seconds": seconds}))


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def collection(store: Path, vector: str) -> dict[str, tuple[list[float], dict[str, Any]]]:
    """Every point of the `bench` collection: id → (vector, payload)."""
    from pipeline.core.config import StoreConfig
    from pipeline.store import VectorStore

    with VectorStore.open(StoreConfig(path=str(store))) as vs:
        return {pid: ([] if v is None else v.tolist(), p) for pid, v, p in vs.scroll("bench", vector)}


def compare(plain: Run, other: Run, vector: str) -> str:
    """'identical' or what differs (ids, vectors, payloads, counts, report)."""
    a, b = collection(plain.store, vector), collection(other.store, vector)
    problems = []
    if set(a) != set(b):
        problems.append(f"ids ({len(set(a) ^ set(b))} differ)")
    shared = set(a) & set(b)
    if any(a[i][0] != b[i][0] for i in shared):
        problems.append(f"vectors ({sum(a[i][0] != b[i][0] for i in shared)} differ)")
    if any(a[i][1] != b[i][1] for i in shared):
        problems.append(f"payloads ({sum(a[i][1] != b[i][1] for i in shared)} differ)")
    if plain.counts != other.counts:
        problems.append(f"counts ({other.counts!r})")
    if plain.report != other.report:
        problems.append("reasons CSV")
    return f"identical ({len(a)} points)" if not problems else "DIFFERENT: " + ", ".join(problems)


def upsert_rate(reference: Run, vector: str, out: Path, batch: int = 32) -> float:
    """Points a second written into a new embedded store, `batch` at a time as an ingest writes them (merge_points,
    from this process): the ceiling the driver's writes put on any ingest into the embedded store."""
    from pipeline.core.config import StoreConfig
    from pipeline.store import Point, VectorStore

    with VectorStore.open(StoreConfig(path=str(reference.store))) as vs:
        spec = vs.vector_specs("bench")[vector]
    points = collection(reference.store, vector)
    shutil.rmtree(out, ignore_errors=True)
    with VectorStore.open(StoreConfig(path=str(out))) as store:
        store.ensure_collection("bench", [spec])
        todo = [Point(pid, {vector: np.asarray(v, dtype=np.float32)}, p) for pid, (v, p) in points.items()]
        start = time.perf_counter()
        for i in range(0, len(todo), batch):
            store.merge_points("bench", todo[i : i + batch])
        store.flush()
        return len(todo) / (time.perf_counter() - start)


def bench_encoder(encoder: str, source: Path, work: Path, repeats: int, only: Sequence[str] = ()) -> None:
    """Every way (or those `only` names; `single` always), `repeats` times interleaved (other load on the machine
    hits them alike); a table of medians."""
    ways = [("single", 1), ("single", 2), ("ray", 1), ("ray", 2), ("warm", 1), ("warm", 2)]
    ways += [("cluster-1st", 1), ("cluster", 1), ("cluster-1st", 2), ("cluster", 2)]
    if only:
        ways = [(k, n) for k, n in ways if k == "single" or k.split("-")[0] in only]
    runs: dict[tuple[str, int], list[Run]] = {way: [] for way in ways}
    for r in range(repeats):
        for kind, n in ways:
            out = work / f"{encoder}-{kind}{n}-r{r}"
            if kind == "warm":
                runs[(kind, n)].append(run_warm(source, out, encoder, n))
            elif kind == "cluster":
                first, second = run_cluster(source, out, encoder, n)
                runs[("cluster-1st", n)].append(first)
                runs[(kind, n)].append(second)
            elif kind in ("single", "ray"):
                runs[(kind, n)].append(run_cli(source, out, encoder, n, "local" if kind == "ray" else ""))
    vector = "phash-8" if encoder == "phash" else "dlib"
    reference = runs[("single", 2)][0]
    print(f"\n## {encoder}: {source} ({reference.counts})\n")
    print("| how | img/s (median) | wall s (median) | single img/s ÷ this, same count | collection vs single, 2 |")
    print("|---|---:|---:|---:|---|")
    for kind, n in ways:
        rate = statistics.median(r.images_per_second for r in runs[(kind, n)])
        wall = statistics.median(r.wall for r in runs[(kind, n)])
        single = statistics.median(r.images_per_second for r in runs[("single", n)])
        same = "; ".join(dict.fromkeys(compare(reference, r, vector) for r in runs[(kind, n)]))
        print(f"| {runs[(kind, n)][0].label} | {rate:.1f} | {wall:.1f} | {single / rate:.2f}× | {same} |")
    rate = upsert_rate(reference, vector, work / f"{encoder}-upsert")
    print(f"\nwrites alone (the driver's merge_points, 32 points a batch, a new embedded store): {rate:.0f} points/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/tmp/ray_work/bench"))
    parser.add_argument("--tll", type=Path, default=DATASETS / "tll")
    parser.add_argument("--lfw", type=Path, default=DATASETS / "lfw")
    parser.add_argument("--encoders", default="phash,dlib")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument(
        "--source", type=Path, default=None, help="instead of the linked sources: this folder, read in place"
    )
    parser.add_argument("--ways", default="", help="only these ways, e.g. single,ray,cluster [all]")
    parser.add_argument("--warm-child", nargs=4, metavar=("SOURCE", "OUT", "ENCODER", "CPUS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.warm_child:
        source, out, encoder, cpus = args.warm_child
        warm_child(Path(source), Path(out), encoder, int(cpus))
        return
    sources = link_sources(args.work, args.tll, args.lfw)
    for encoder in args.encoders.split(","):
        source = args.source or sources[encoder]
        bench_encoder(encoder, source, args.work, args.repeats, [w for w in args.ways.split(",") if w])


if __name__ == "__main__":
    main()
