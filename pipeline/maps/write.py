"""A map's files in one folder: map.png, map.html (self-contained) and map.csv (point id, path, label, x, y)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from pipeline.core.files import write_bytes_atomic
from pipeline.maps.build import EmbeddingMap
from pipeline.maps.page import PageConfig, map_html
from pipeline.maps.png import map_png


@dataclass(frozen=True)
class MapFiles:
    """Where `write_map` put each file."""

    png: Path
    html: Path
    csv: Path


def map_csv(emap: EmbeddingMap) -> str:
    """One row per drawn point: point_id, path, the colouring field (named after it), x, y."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["point_id", "path", emap.color_by, "x", "y"])
    for p in emap.points:
        writer.writerow([p.point_id, p.path, "" if p.label is None else p.label, f"{p.x:.6g}", f"{p.y:.6g}"])
    return buffer.getvalue()


def write_map(emap: EmbeddingMap, out_dir: Path, page: PageConfig | None = None) -> MapFiles:
    """Write map.png, map.html and map.csv into `out_dir` (made if missing; each file replaced whole).

    Raises:
        OSError: the folder cannot be made or written.
        LookalikeError: matplotlib is not installed.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    files = MapFiles(out_dir / "map.png", out_dir / "map.html", out_dir / "map.csv")
    write_bytes_atomic(files.png, map_png(emap))
    write_bytes_atomic(files.html, map_html(emap, config=page or PageConfig()).encode("utf-8"))
    write_bytes_atomic(files.csv, map_csv(emap).encode("utf-8"))
    return files
