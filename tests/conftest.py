"""Shared fixtures: image files written on the fly with Pillow and numpy (nothing binary is committed)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from fakes import encode_image as _encode
from fakes import noise_image
from fakes import png_header_only as _png_header_only
from PIL import Image
from stores import STORE_KINDS, open_test_store

from pipeline.store import VectorStore

EDGE_CASE_SIZE = (48, 32)  # (width, height) of every decodable edge case; non-square so EXIF rotation shows


def _noise(seed: int, size: tuple[int, int] = EDGE_CASE_SIZE) -> Image.Image:
    """Seeded RGB noise (edge-case size unless given): each seed gives a visually distinct image."""
    return noise_image(seed, size)


def _halves(left: tuple[int, int, int], right: tuple[int, int, int]) -> Image.Image:
    """Left half one colour, right half another (to see which way a rotation went)."""
    width, height = EDGE_CASE_SIZE
    array = np.empty((height, width, 3), dtype=np.uint8)
    array[:, : width // 2] = left
    array[:, width // 2 :] = right
    return Image.fromarray(array)


def _grey16_gradient() -> bytes:
    """16-bit greyscale PNG (mode I;16), 0 at the left to 65535 at the right."""
    width, height = EDGE_CASE_SIZE
    row = np.linspace(0, 65535, width).round().astype(np.uint16)
    return _encode(Image.fromarray(np.tile(row, (height, 1))), "PNG")


def _palette_with_transparency() -> bytes:
    """Palette PNG: index 0 (black, transparent) on the left half, index 1 (opaque red) on the right."""
    width, height = EDGE_CASE_SIZE
    indices = np.zeros((height, width), dtype=np.uint8)
    indices[:, width // 2 :] = 1
    image = Image.fromarray(indices, mode="P")
    image.putpalette([0, 0, 0, 255, 0, 0])
    return _encode(image, "PNG", transparency=0)


def _rgba() -> bytes:
    """RGBA PNG: transparent green | half-transparent red | opaque blue, in vertical thirds."""
    width, height = EDGE_CASE_SIZE
    array = np.zeros((height, width, 4), dtype=np.uint8)
    array[:, : width // 3] = (0, 255, 0, 0)
    array[:, width // 3 : 2 * width // 3] = (255, 0, 0, 128)
    array[:, 2 * width // 3 :] = (0, 0, 255, 255)
    return _encode(Image.fromarray(array), "PNG")


def _exif_rotated() -> bytes:
    """JPEG stored red-left | blue-right with EXIF orientation 6 (display rotated 90° clockwise)."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return _encode(_halves((255, 0, 0), (0, 0, 255)), "JPEG", exif=exif.tobytes(), quality=95)


def _two_frames(fmt: str) -> bytes:
    """Two frames: solid red, then solid blue (the decoder must keep the first)."""
    red = Image.new("RGB", EDGE_CASE_SIZE, (255, 0, 0))
    return _encode(red, fmt, save_all=True, append_images=[Image.new("RGB", EDGE_CASE_SIZE, (0, 0, 255))])


def _float_gradient() -> bytes:
    """32-bit float TIFF (mode F), 0.0 at the left to 1.0 at the right."""
    width, height = EDGE_CASE_SIZE
    return _encode(Image.fromarray(np.tile(np.linspace(0, 1, width, dtype=np.float32), (height, 1))), "TIFF")


def _truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


# name -> (file name, bytes factory, should decode with default DecodeLimits())
_EDGE_CASES: dict[str, tuple[str, Callable[[], bytes], bool]] = {
    "rgb_jpeg": ("rgb.jpg", lambda: _encode(_noise(1), "JPEG"), True),
    "rgb_png": ("rgb.png", lambda: _encode(_noise(2), "PNG"), True),
    "grey_jpeg": ("grey.jpg", lambda: _encode(_noise(3).convert("L"), "JPEG"), True),
    "cmyk_jpeg": ("cmyk.jpg", lambda: _encode(Image.new("CMYK", EDGE_CASE_SIZE, (0, 255, 0, 0)), "JPEG"), True),
    "grey16_png": ("grey16.png", _grey16_gradient, True),
    "palette_alpha_png": ("palette_alpha.png", _palette_with_transparency, True),
    "rgba_png": ("rgba.png", _rgba, True),
    "exif_rotated_jpeg": ("exif6.jpg", _exif_rotated, True),
    "bilevel_png": ("bilevel.png", lambda: _encode(_noise(4).convert("1"), "PNG"), True),
    "gif": ("two_frames.gif", lambda: _two_frames("GIF"), True),
    "tiff": ("two_frames.tiff", lambda: _two_frames("TIFF"), True),
    "float_tiff": ("float.tiff", _float_gradient, True),
    "bmp": ("rgb.bmp", lambda: _encode(_noise(5), "BMP"), True),
    "zero_bytes": ("empty.jpg", lambda: b"", False),
    "text_as_jpg": ("text.jpg", lambda: b"this is not a JPEG, just some text\n", False),
    "truncated_jpeg": ("truncated.jpg", lambda: _truncated(_encode(_noise(6), "JPEG")), False),
    "truncated_png": ("truncated.png", lambda: _truncated(_encode(_noise(7), "PNG")), False),
    # 144,000,000 px: over DecodeLimits' default, under Pillow's own hard ceiling (2 × 89,478,485).
    "too_large_png": ("too_large.png", lambda: _png_header_only(12_000, 12_000), False),
    # 400,000,000 px: over Pillow's hard ceiling, so Image.open itself refuses it.
    "bomb_png": ("bomb.png", lambda: _png_header_only(20_000, 20_000), False),
}


@pytest.fixture(scope="session")
def edge_case_images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, bool]]:
    """One small file per decoding edge case.

    Returns:
        case name -> (path, should_decode), where should_decode is the outcome under the default
        `DecodeLimits()`. Decodable cases are all `EDGE_CASE_SIZE` (48 × 32) as stored.
    """
    folder = tmp_path_factory.mktemp("edge_cases")
    cases: dict[str, tuple[Path, bool]] = {}
    for name, (file_name, make, should_decode) in _EDGE_CASES.items():
        path = folder / file_name
        path.write_bytes(make())
        cases[name] = (path, should_decode)
    return cases


@dataclass(frozen=True)
class MixedFolder:
    """A labelled folder tree (`root/<label>/<file>`) mixing good, duplicate, broken and non-image files.

    Attributes:
        root: the top folder.
        good: unique decodable images (label = parent folder name).
        duplicates: byte-identical copies of a file in `good`, named so they sort after their original.
        broken: files with image extensions that fail to decode under the default `DecodeLimits()`.
        ignored: files without an image extension (a folder source should not list them at all).
    """

    root: Path
    good: tuple[Path, ...]
    duplicates: tuple[Path, ...]
    broken: tuple[Path, ...]
    ignored: tuple[Path, ...]

    @property
    def n_good(self) -> int:
        return len(self.good)

    @property
    def n_duplicates(self) -> int:
        return len(self.duplicates)

    @property
    def n_broken(self) -> int:
        return len(self.broken)

    @property
    def n_images(self) -> int:
        """Files with an image extension: what an ingest of `root` should report as seen."""
        return self.n_good + self.n_duplicates + self.n_broken


@pytest.fixture
def mixed_image_folder(tmp_path: Path) -> MixedFolder:
    """Write `cats/`, `dogs/` and `birds/` with 7 good images, 1 duplicate, 4 broken files and `notes.txt`."""
    root = tmp_path / "mixed"
    good_files = {
        "cats/cat_0.jpg": _encode(_noise(100, (64, 48)), "JPEG"),
        "cats/cat_1.png": _encode(_noise(101, (64, 48)), "PNG"),
        "cats/cat_2.jpg": _encode(_noise(102, (48, 64)), "JPEG"),
        "dogs/dog_0.jpg": _encode(_noise(200, (64, 48)), "JPEG"),
        "dogs/dog_1.png": _encode(_noise(201, (64, 48)), "PNG"),
        "dogs/dog_2.bmp": _encode(_noise(202, (32, 32)), "BMP"),
        "birds/bird_0.jpg": _encode(_noise(300, (64, 48)), "JPEG"),
    }
    files = {
        **good_files,
        "cats/cat_0_copy.jpg": good_files["cats/cat_0.jpg"],
        "cats/empty.jpg": b"",
        "dogs/truncated.jpg": _truncated(_encode(_noise(203, (64, 48)), "JPEG")),
        "dogs/text.jpg": b"not an image\n",
        "birds/too_large.png": _png_header_only(12_000, 12_000),
        "notes.txt": b"labels are the folder names\n",
    }
    for relative, data in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    paths = {relative: root / relative for relative in files}
    return MixedFolder(
        root=root,
        good=tuple(paths[r] for r in good_files),
        duplicates=(paths["cats/cat_0_copy.jpg"],),
        broken=tuple(
            paths[r] for r in ("cats/empty.jpg", "dogs/truncated.jpg", "dogs/text.jpg", "birds/too_large.png")
        ),
        ignored=(paths["notes.txt"],),
    )


@pytest.fixture(params=STORE_KINDS)
def vector_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VectorStore]:
    """Each test that takes it runs once per backend, so both keep the same contract."""
    store = open_test_store(request.param, tmp_path / "store")
    yield store
    store.close()


@pytest.fixture(autouse=True)
def _signing_key(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every test signs manifests with a key of its own session, never the user's ~/.config/lookalike one."""
    path = tmp_path_factory.getbasetemp() / "signing" / "manifest.key"
    monkeypatch.setenv("LOOKALIKE_KEY_FILE", str(path))
    return path
