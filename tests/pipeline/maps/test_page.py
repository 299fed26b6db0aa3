"""The map's files: a self-contained HTML page listing every drawn point in its label's colour, with capped
embedded thumbnails; a PNG in the same colours; the CSV."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from map_collection import Synthetic, make_collection
from PIL import Image

from pipeline.maps.build import EmbeddingMap, MapConfig, MapPoint, build_map
from pipeline.maps.colors import PALETTE
from pipeline.maps.layout import Method
from pipeline.maps.page import PageConfig, map_fragment, map_html, thumbnail_data_url
from pipeline.maps.png import map_png
from pipeline.maps.write import write_map
from pipeline.store import VectorStore


def _data(page: str) -> dict:
    """The points JSON embedded in a map page."""
    match = re.search(r'<script type="application/json" class="lk-data">(.*?)</script>', page, re.S)
    assert match is not None
    return json.loads(match.group(1))


@pytest.fixture
def emap(synthetic: Synthetic, vector_store: VectorStore) -> EmbeddingMap:
    return build_map(vector_store, "syn", None, MapConfig(method="pca"))


def test_page_is_self_contained_and_lists_every_point(emap: EmbeddingMap) -> None:
    page = map_html(emap)
    assert "http://" not in page and "https://" not in page  # no CDN, no fetched script, style or image
    assert not re.search(r"""<(script|link|img|iframe)[^>]*\s(src|href)=["'](?!data:)""", page)
    points = _data(page)["points"]
    assert [row[4] for row in points] == [p.point_id for p in emap.points]
    assert [row[3] for row in points] == [p.path for p in emap.points]
    assert all(row[6] == Path(row[3]).as_uri() for row in points)  # a click opens the file itself
    assert "24 points" in page and "pca" in page


def test_colours_follow_the_label_field(emap: EmbeddingMap, synthetic: Synthetic) -> None:
    data = _data(map_html(emap))
    assert data["classes"] == ["a", "b", "c"] and data["colours"] == list(PALETTE[:3])
    label_of = dict(zip(synthetic.ids, synthetic.labels, strict=True))
    for row in data["points"]:
        assert data["classes"][row[2]] == label_of[row[4]]
    assert 'class="lk-legend"' in map_fragment(emap)


def test_thumbnails_are_capped_and_decodable(emap: EmbeddingMap) -> None:
    points = _data(map_html(emap, config=PageConfig(max_thumbnails=5, thumb_px=20)))["points"]
    thumbs = [row[5] for row in points]
    assert all(t.startswith("data:image/jpeg;base64,") for t in thumbs[:5]) and thumbs[5:] == [""] * 19
    assert thumbnail_data_url("/no/such/file.png", 20) == ""


def test_served_thumbnails_and_open_urls_replace_embedded_ones(emap: EmbeddingMap) -> None:
    page = map_fragment(emap, thumb_url=lambda p: f"/thumb?path={p}", open_url=lambda p: f"/image?path={p}")
    points = _data(page)["points"]
    assert "data:image" not in page
    assert all(row[5] == f"/thumb?path={row[3]}" and row[6] == f"/image?path={row[3]}" for row in points)


def test_labels_and_paths_cannot_break_out_of_the_page(vector_store: VectorStore, tmp_path: Path) -> None:
    hostile = "</script><script>alert(1)</script>"
    make_collection(vector_store, tmp_path / "h", n=6, labels=(hostile, "x & y"), collection="h")
    page = map_html(build_map(vector_store, "h", None, MapConfig(method="pca")))
    assert hostile not in page and "alert(1)</script>" not in page
    assert _data(page)["classes"] == [hostile, "x & y"]  # intact once parsed


def test_no_legend_beyond_twenty_classes(vector_store: VectorStore, tmp_path: Path) -> None:
    make_collection(vector_store, tmp_path / "m", n=25, labels=tuple(f"p{i}" for i in range(25)), collection="m")
    emap = build_map(vector_store, "m", None, MapConfig(method="pca"))
    assert 'class="lk-legend"' not in map_fragment(emap) and "25 classes: no legend" in map_fragment(emap)


def _pixels_near(png: bytes, colour: str) -> int:
    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)
    target = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(rgb - target).sum(axis=2) < 40).sum())


def test_png_draws_each_class_in_its_colour() -> None:
    points = tuple(MapPoint(f"id{i}", f"/p{i}.png", "a" if i < 5 else "b", float(i), float(i % 3)) for i in range(10))
    emap = EmbeddingMap("c", "fake:v", "fake-v", Method.PCA, "label", points, 10, 0, 0.1)
    png = map_png(emap, size_in=3)
    assert png.startswith(b"\x89PNG")
    assert _pixels_near(png, PALETTE[0]) > 20 and _pixels_near(png, PALETTE[1]) > 20
    only_a = EmbeddingMap("c", "fake:v", "fake-v", Method.PCA, "label", points[:5], 5, 0, 0.1)
    assert _pixels_near(map_png(only_a, size_in=3), PALETTE[1]) == 0


def test_write_map_writes_png_html_and_csv(emap: EmbeddingMap, tmp_path: Path) -> None:
    files = write_map(emap, tmp_path / "out" / "nested")
    assert files.png.read_bytes().startswith(b"\x89PNG") and "<canvas>" in files.html.read_text()
    rows = list(csv.DictReader(files.csv.open()))
    assert list(rows[0]) == ["point_id", "path", "label", "x", "y"] and len(rows) == 24
    first = emap.points[0]
    assert rows[0]["point_id"] == first.point_id and float(rows[0]["x"]) == pytest.approx(first.x, rel=1e-5)
