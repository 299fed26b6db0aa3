"""How fast `lookalike serve` answers a search once warm (a script, not a test).

Starts `lookalike serve -c COLLECTION` as a child process on a free port of 127.0.0.1 (the encoder is loaded and run
once at start), then, from this process over HTTP, like a browser would:

    upload   POST /api/search with an image the collection does not hold (so it is decoded and embedded now)
    by id    GET /api/search?id=… from an indexed point (its stored vector: no decoding, no model)
    thumbs   GET /thumb/… of the first page of results, cold (decoded and resized) and then warm (memory cache)

Times are wall-clock at the client (HTTP, multipart, decode, embed, query, JSON); `server` is the time the app itself
reports for the search. Query images are the last files of the dataset (sorted by path) whose bytes the collection
does not hold, checked through the API first.

    make demo                                      # ingests 1,500 LFW faces into lfw-dlib (.lookalike/qdrant)
    python benchmarks/serve_latency.py             # 100 uploads + 100 by-id searches against lfw-dlib
    python benchmarks/serve_latency.py -c photos --images DIR --store /tmp/store --no-face skip
"""

from __future__ import annotations

import argparse
import hashlib
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

from pipeline.store import point_id_for

ROOT = Path(__file__).resolve().parents[1]
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(args: argparse.Namespace, port: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-c", "from cli import main; main()", "serve", "-c", args.collection]
    command += ["--port", str(port), "--device", args.device, "--no-face", args.no_face]
    command += ["--store", args.store] if args.store else []
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_up(client: httpx.Client, process: subprocess.Popen[bytes], seconds: float = 600) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        if process.poll() is not None:
            raise SystemExit(f"lookalike serve exited {process.returncode}:\n{process.stderr.read().decode()}")  # type: ignore[union-attr]
        try:
            if client.get("/api/collections", timeout=5).status_code == 200:
                return time.perf_counter() - start
        except httpx.TransportError:
            time.sleep(0.25)
    raise SystemExit(f"lookalike serve did not answer within {seconds:.0f} s")


def _queries(client: httpx.Client, args: argparse.Namespace) -> list[Path]:
    """The last `n` images of the dataset whose bytes the collection does not hold."""
    files = sorted(p for p in Path(args.images).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    chosen: list[Path] = []
    for path in reversed(files):
        pid = point_id_for(hashlib.sha256(path.read_bytes()).hexdigest())
        held = client.get("/api/search", params={"collection": args.collection, "id": pid, "k": 1}).status_code
        if held == 404:
            chosen.append(path)
        if len(chosen) == args.n + args.warmup:
            return chosen
    raise SystemExit(f"only {len(chosen)} images of {args.images} are not in {args.collection}; need {args.n}")


def _upload(client: httpx.Client, collection: str, path: Path, k: int) -> tuple[float, dict]:
    start = time.perf_counter()
    response = client.post(
        "/api/search", data={"collection": collection, "k": str(k)}, files={"image": (path.name, path.read_bytes())}
    )
    elapsed = time.perf_counter() - start
    if response.status_code != 200:
        raise SystemExit(f"{path}: HTTP {response.status_code}: {response.text}")
    return elapsed, response.json()


def _row(name: str, seconds: list[float], server_ms: list[float] | None = None) -> str:
    ms = sorted(s * 1000 for s in seconds)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    server = f"{statistics.median(server_ms):8.1f}" if server_ms else f"{'':>8}"
    return f"{name:<14} {len(ms):>5} {statistics.median(ms):8.1f} {p95:8.1f} {ms[0]:8.1f} {ms[-1]:8.1f} {server}"


def _measure(client: httpx.Client, args: argparse.Namespace) -> list[str]:
    queries = _queries(client, args)
    for path in queries[: args.warmup]:
        _upload(client, args.collection, path, args.k)
    uploads, server, first_ids = [], [], []
    for path in queries[args.warmup :]:
        elapsed, body = _upload(client, args.collection, path, args.k)
        uploads.append(elapsed)
        server.append(body["ms"])
        first_ids.append(body["hits"][0]["point_id"])
    by_id, by_id_server, thumbs_cold, thumbs_warm = [], [], [], []
    for pid in first_ids:
        start = time.perf_counter()
        body = client.get("/api/search", params={"collection": args.collection, "id": pid, "k": args.k}).json()
        by_id.append(time.perf_counter() - start)
        by_id_server.append(body["ms"])
    for cache in (thumbs_cold, thumbs_warm):
        for pid in first_ids[:20]:
            start = time.perf_counter()
            assert client.get(f"/thumb/{args.collection}/{pid}").status_code == 200
            cache.append(time.perf_counter() - start)
    return [
        _row("upload search", uploads, server),
        _row("by-id search", by_id, by_id_server),
        _row("thumb (cold)", thumbs_cold),
        _row("thumb (warm)", thumbs_warm),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-c", "--collection", default="lfw-dlib")
    lfw = os.environ.get("LOOKALIKE_LFW", "../shared/datasets/lfw")
    parser.add_argument("--images", default=f"{lfw}/lfw-deepfunneled", help="query images are taken from here")
    parser.add_argument("--store", default=None, help="store folder [default: lookalike's, .lookalike/qdrant]")
    parser.add_argument("--no-face", default="center", help="as the collection was ingested (make demo: center)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("-n", type=int, default=100, help="timed searches of each kind")
    parser.add_argument("--warmup", type=int, default=5, help="untimed uploads first")
    parser.add_argument("-k", type=int, default=10)
    args = parser.parse_args()
    port = _free_port()
    process = _start(args, port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            ready = _wait_up(client, process)
            lines = _measure(client, args)
    finally:
        process.terminate()
        process.wait(timeout=60)
    print(
        f"lookalike serve -c {args.collection} (--device {args.device}): up and warm in {ready:.1f} s; "
        f"{args.n} queries each, k={args.k}, after {args.warmup} untimed uploads; {os.cpu_count()} CPUs"
    )
    print(f"{'':<14} {'n':>5} {'median':>8} {'p95':>8} {'min':>8} {'max':>8} {'server':>8}   (ms)")
    for line in lines:
        print(line)


if __name__ == "__main__":
    main()
