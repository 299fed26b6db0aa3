"""Tests for pipeline.core.images: every edge case decodes to 8-bit RGB or fails with a one-line reason."""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from pipeline.core import images
from pipeline.core.errors import ImageDecodeError
from pipeline.core.images import DecodeLimits, decode_bytes, image_size, ink_crop, load_rgb, to_rgb

GOOD_CASES = [
    "rgb_jpeg",
    "rgb_png",
    "grey_jpeg",
    "cmyk_jpeg",
    "grey16_png",
    "palette_alpha_png",
    "rgba_png",
    "exif_rotated_jpeg",
    "bilevel_png",
    "gif",
    "tiff",
    "float_tiff",
    "bmp",
]
BAD_CASES = {
    "zero_bytes": "empty file (0 bytes)",
    "text_as_jpg": "not an image",
    "truncated_jpeg": "truncated",
    "truncated_png": "truncated",
    "too_large_png": "too large: 12000×12000 = 144,000,000 pixels > limit 89,478,485",
    "bomb_png": "too large: 400,000,000 pixels > Pillow's decompression-bomb limit",
}
WHITE, RED, BLUE = (255, 255, 255), (255, 0, 0), (0, 0, 255)


def _pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image).astype(int)  # (H, W, 3), signed so differences do not wrap


def test_fixture_covers_every_case(edge_case_images: dict[str, tuple[Path, bool]]) -> None:
    assert set(edge_case_images) == set(GOOD_CASES) | set(BAD_CASES)
    assert all(edge_case_images[name][1] for name in GOOD_CASES)
    assert not any(edge_case_images[name][1] for name in BAD_CASES)


@pytest.mark.parametrize("case", GOOD_CASES)
def test_good_cases_decode_to_8bit_rgb(edge_case_images: dict[str, tuple[Path, bool]], case: str) -> None:
    path, _ = edge_case_images[case]
    with Image.open(path) as raw:
        stored = raw.size
    expected = stored[::-1] if case == "exif_rotated_jpeg" else stored

    image = load_rgb(path)

    assert image.mode == "RGB"
    assert image.size == expected == image_size(path)
    assert np.asarray(image).dtype == np.uint8
    assert np.asarray(image).shape == (expected[1], expected[0], 3)


@pytest.mark.parametrize("case", ["rgb_png", "bmp", "rgb_jpeg"])
def test_plain_rgb_matches_pillow(edge_case_images: dict[str, tuple[Path, bool]], case: str) -> None:
    path, _ = edge_case_images[case]
    with Image.open(path) as raw:
        oracle = np.asarray(raw.convert("RGB"))
    np.testing.assert_array_equal(np.asarray(load_rgb(path)), oracle)


@pytest.mark.parametrize(("case", "reason"), BAD_CASES.items())
def test_bad_cases_raise_with_reason(edge_case_images: dict[str, tuple[Path, bool]], case: str, reason: str) -> None:
    path, _ = edge_case_images[case]
    with pytest.raises(ImageDecodeError, match="^" + re.escape(reason)) as info:
        load_rgb(path)
    message = str(info.value)
    assert "\n" not in message and str(path) not in message  # one line; the caller adds the path
    own_checks = {"zero_bytes", "too_large_png"}  # raised by pipeline.core.images itself, not translated
    assert (info.value.__cause__ is None) == (case in own_checks)


def test_too_large_is_rejected_before_pixels_are_loaded(
    edge_case_images: dict[str, tuple[Path, bool]], monkeypatch: pytest.MonkeyPatch
) -> None:
    loads: list[str] = []
    original = ImageFile.ImageFile.load

    def spy(self: ImageFile.ImageFile) -> object:
        loads.append(self.format or "")
        return original(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", spy)
    with pytest.raises(ImageDecodeError, match="too large"):
        load_rgb(edge_case_images["too_large_png"][0])
    assert loads == []
    load_rgb(edge_case_images["rgb_png"][0])
    assert "PNG" in loads  # the spy does see ordinary loads


@pytest.mark.filterwarnings("error")
def test_raised_limit_is_honoured_without_pillow_warning(edge_case_images: dict[str, tuple[Path, bool]]) -> None:
    # 144 Mpx passes a raised limit, so decoding is attempted and hits the missing pixel data instead.
    with pytest.raises(ImageDecodeError, match="truncated"):
        load_rgb(edge_case_images["too_large_png"][0], DecodeLimits(max_pixels=200_000_000))


def test_small_limits_reject_a_good_image(edge_case_images: dict[str, tuple[Path, bool]]) -> None:
    path, _ = edge_case_images["rgb_png"]
    with pytest.raises(
        ImageDecodeError, match=r"^too large: 48×32 = 1,536 pixels > limit 1,000 \(raise the max_pixels limit\)$"
    ):
        load_rgb(path, DecodeLimits(max_pixels=1_000))
    with pytest.raises(ImageDecodeError, match=r"^too small: 48×32"):
        load_rgb(path, DecodeLimits(min_side=33))
    assert load_rgb(path, DecodeLimits(max_pixels=1_536, min_side=32)).size == (48, 32)


def test_globals_are_left_alone(edge_case_images: dict[str, tuple[Path, bool]]) -> None:
    before = (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES)
    for path, _ in edge_case_images.values():
        with contextlib.suppress(ImageDecodeError):
            load_rgb(path, DecodeLimits(max_pixels=10**9))
    assert (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES) == before == (89_478_485, False)


def test_exif_rotation_puts_stored_left_on_top(edge_case_images: dict[str, tuple[Path, bool]]) -> None:
    pixels = _pixels(load_rgb(edge_case_images["exif_rotated_jpeg"][0]))  # (48, 32, 3) after rotation
    assert np.abs(pixels[2, 16] - RED).max() < 40
    assert np.abs(pixels[-3, 16] - BLUE).max() < 40


def test_16bit_gradient_survives(edge_case_images: dict[str, tuple[Path, bool]]) -> None:
    grey = _pixels(load_rgb(edge_case_images["grey16_png"][0]))[..., 0]
    assert grey.min() == 0 and grey.max() == 255
    assert np.all(np.diff(grey[0]) >= 0)
    assert abs(grey.mean() - 127.5) < 2  # Pillow's convert("L") would give ~250: all but one column clipped


def test_float_gradient_scaled_from_unit_range(edge_case_images: dict[str, tuple[Path, bool]]) -> None:
    grey = _pixels(load_rgb(edge_case_images["float_tiff"][0]))[0, :, 0]
    assert grey[0] == 0 and grey[-1] == 255 and np.all(np.diff(grey) >= 0)


def test_palette_transparency_composites_to_white(edge_case_images: dict[str, tuple[Path, bool]]) -> None:
    pixels = _pixels(load_rgb(edge_case_images["palette_alpha_png"][0]))
    assert (pixels[:, :24] == WHITE).all()  # index 0 is black in the palette but transparent
    assert (pixels[:, 24:] == RED).all()


def test_rgba_composites_onto_white(edge_case_images: dict[str, tuple[Path, bool]]) -> None:
    pixels = _pixels(load_rgb(edge_case_images["rgba_png"][0]))
    assert tuple(pixels[0, 0]) == WHITE
    assert np.abs(pixels[0, 24] - (255, 127, 127)).max() <= 1  # red at alpha 128 over white
    assert tuple(pixels[0, -1]) == BLUE


@pytest.mark.parametrize("case", ["gif", "tiff"])
def test_multi_frame_keeps_first_frame(edge_case_images: dict[str, tuple[Path, bool]], case: str) -> None:
    assert (_pixels(load_rgb(edge_case_images[case][0])) == RED).all()


def test_cmyk_colour_is_converted(edge_case_images: dict[str, tuple[Path, bool]]) -> None:
    pixels = _pixels(load_rgb(edge_case_images["cmyk_jpeg"][0]))
    assert np.abs(pixels - (255, 0, 255)).max() < 10  # 100% magenta ink


def test_greyscale_sources_give_equal_channels(edge_case_images: dict[str, tuple[Path, bool]]) -> None:
    for case in ("grey_jpeg", "bilevel_png"):
        pixels = _pixels(load_rgb(edge_case_images[case][0]))
        assert (pixels[..., 0] == pixels[..., 1]).all() and (pixels[..., 1] == pixels[..., 2]).all()
        assert pixels.std() > 10  # the noise survived


def test_decode_bytes_matches_load_rgb(edge_case_images: dict[str, tuple[Path, bool]]) -> None:
    path, _ = edge_case_images["exif_rotated_jpeg"]
    np.testing.assert_array_equal(np.asarray(decode_bytes(path.read_bytes())), np.asarray(load_rgb(path)))
    with pytest.raises(ImageDecodeError, match=r"^empty input"):
        decode_bytes(b"")
    with pytest.raises(ImageDecodeError, match=r"^truncated"):
        decode_bytes(edge_case_images["truncated_jpeg"][0].read_bytes())


def test_unreadable_paths(tmp_path: Path) -> None:
    with pytest.raises(ImageDecodeError, match=r"^unreadable: No such file"):
        load_rgb(tmp_path / "missing.jpg")
    with pytest.raises(ImageDecodeError, match=r"^not a regular file: a folder$"):
        load_rgb(tmp_path)


# Issue 16: odd files are refused with a reason, and nothing waits.


def _load_in_thread(path: Path) -> tuple[threading.Thread, list[BaseException]]:
    """Start `load_rgb(path)` in a daemon thread, so a test of a call that blocks fails instead of hanging."""
    raised: list[BaseException] = []

    def target() -> None:
        try:
            load_rgb(path)
        except BaseException as e:  # any of them is handed to the test
            raised.append(e)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, raised


def test_fifo_named_like_an_image_is_refused_without_blocking(tmp_path: Path) -> None:
    # Opening a FIFO for reading waits for a writer: before, load_rgb blocked forever on one named x.jpg.
    fifo = tmp_path / "x.jpg"
    os.mkfifo(fifo)
    thread, raised = _load_in_thread(fifo)
    thread.join(timeout=10)
    if thread.is_alive():  # unblock it: a non-blocking writer end lets the reader's open return
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(timeout=10)
        pytest.fail("load_rgb blocked on a FIFO")
    assert [str(e) for e in raised] == ["not a regular file: a FIFO (named pipe)"]


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: p.symlink_to("missing.jpg"), "broken symbolic link (its target does not exist)"),
        (lambda p: p.symlink_to(p.name), "symbolic link loop (too many levels of symbolic links)"),
        (lambda p: p.mkdir(), "not a regular file: a folder"),
        (lambda p: p.write_bytes(b""), "empty file (0 bytes)"),
    ],
    ids=["broken_symlink", "symlink_loop", "folder", "empty"],
)
def test_odd_paths_give_one_line_reasons(tmp_path: Path, make: Callable[[Path], object], reason: str) -> None:
    path = tmp_path / "x.jpg"
    make(path)
    with pytest.raises(ImageDecodeError) as info:
        load_rgb(path)
    assert str(info.value) == reason


def test_symlink_to_an_image_is_followed(edge_case_images: dict[str, tuple[Path, bool]], tmp_path: Path) -> None:
    target = edge_case_images["rgb_png"][0]
    (tmp_path / "link.png").symlink_to(target)
    np.testing.assert_array_equal(np.asarray(load_rgb(tmp_path / "link.png")), np.asarray(load_rgb(target)))


def test_nul_in_a_path_is_a_reason_not_a_value_error(tmp_path: Path) -> None:
    with pytest.raises(ImageDecodeError, match=r"^invalid path: .*null"):
        load_rgb(f"{tmp_path}/x\0.jpg")


def test_open_regular_file_reads_the_bytes(tmp_path: Path) -> None:
    (tmp_path / "f.bin").write_bytes(b"abc")
    with images.open_regular_file(tmp_path / "f.bin") as fh:
        assert fh.read() == b"abc"
    with pytest.raises(ImageDecodeError, match="not a regular file: a character device"):
        images.open_regular_file("/dev/null")


def test_image_size_reads_header_only(edge_case_images: dict[str, tuple[Path, bool]]) -> None:
    assert image_size(edge_case_images["too_large_png"][0]) == (12_000, 12_000)  # no limit, no pixel data needed
    assert image_size(edge_case_images["exif_rotated_jpeg"][0]) == (32, 48)
    with pytest.raises(ImageDecodeError, match=r"^empty file"):
        image_size(edge_case_images["zero_bytes"][0])


@pytest.mark.parametrize(
    ("mode", "values", "expected"),
    [
        ("I;16", [0, 257, 65535], [0, 1, 255]),
        ("I", [0, 32896, 65535], [0, 128, 255]),  # 16-bit data held in 32-bit ints
        ("I", [-100, 0, 300], [0, 64, 255]),  # outside 0..65535: stretched min..max
        ("F", [0.0, 0.5, 1.0], [0, 128, 255]),
        ("F", [-1.0, 0.0, 3.0], [0, 64, 255]),
        ("F", [7.0, 7.0, 7.0], [0, 0, 0]),  # constant outside 0..1: no division by zero
    ],
)
def test_high_bit_greyscale_scaling(mode: str, values: list[float], expected: list[int]) -> None:
    dtype = {"I;16": np.uint16, "I": np.int32, "F": np.float32}[mode]
    image = Image.fromarray(np.array([values], dtype=dtype))
    assert image.mode == mode
    rgb = np.asarray(to_rgb(image))
    assert rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb[0, :, 0], expected)


@pytest.mark.parametrize("mode", sorted(Image.MODES))
def test_every_pillow_mode_converts(mode: str) -> None:
    rgb = to_rgb(Image.new(mode, (3, 2)))
    assert rgb.mode == "RGB" and rgb.size == (3, 2)


def test_lab_is_colour_managed() -> None:
    grey = to_rgb(Image.new("LAB", (1, 1), (128, 128, 128))).getpixel((0, 0))  # L* 50, a* = b* = 0
    assert grey == (119, 119, 119)  # Pillow's plain convert would give (128, 128, 128)-ish channel copies


def test_decode_limits_validation() -> None:
    with pytest.raises(ValueError, match="max_pixels"):
        DecodeLimits(max_pixels=0)


def test_mixed_folder_layout(mixed_image_folder) -> None:  # MixedFolder, defined in conftest.py
    folder = mixed_image_folder
    assert (folder.n_good, folder.n_duplicates, folder.n_broken, folder.n_images) == (7, 1, 4, 12)
    assert {p.parent.name for p in folder.good} == {"cats", "dogs", "birds"}
    assert folder.duplicates[0].read_bytes() == folder.good[0].read_bytes()
    good = [np.asarray(load_rgb(p)) for p in folder.good]
    assert len({g.tobytes() for g in good}) == 7  # visually distinct
    for path in folder.broken:
        with pytest.raises(ImageDecodeError):
            load_rgb(path)


def _drawing(canvas: int, box: tuple[int, int, int, int], ground: int = 255) -> Image.Image:
    """A `canvas`² RGB image of `ground` with a black rectangle at box = (left, top, right, bottom)."""
    pixels = np.full((canvas, canvas, 3), ground, dtype=np.uint8)
    left, top, right, bottom = box
    pixels[top:bottom, left:right] = 0
    return Image.fromarray(pixels)


def test_ink_crop_centres_a_square_with_margin() -> None:
    cropped = ink_crop(_drawing(100, (10, 20, 50, 40)), margin=0.1)  # 40 wide, 20 high
    assert cropped.size == (48, 48) and cropped.mode == "RGB"  # 40 × (1 + 2 × 0.1)
    grey = np.asarray(cropped.convert("L"))
    rows, cols = np.nonzero((grey < 128).any(axis=1))[0], np.nonzero((grey < 128).any(axis=0))[0]
    assert (cols[0], cols[-1] + 1) == (4, 44) and (rows[0], rows[-1] + 1) == (14, 34)  # centred both ways
    assert grey[0, 0] == 255 and grey[47, 47] == 255  # padded with the ground colour


def test_ink_crop_removes_position_and_scale() -> None:
    small, large = _drawing(100, (5, 5, 25, 15)), _drawing(120, (50, 60, 110, 90))

    def gap(a: Image.Image, b: Image.Image) -> int:
        return int(np.abs(np.asarray(a.resize((28, 28)), dtype=int) - np.asarray(b.resize((28, 28)), dtype=int)).max())

    assert gap(small, large) == 255
    assert gap(ink_crop(small, margin=0.0), ink_crop(large, margin=0.0)) <= 16  # resampling at the edges only


def test_ink_crop_finds_light_ink_on_dark_ground_and_leaves_blank_images() -> None:
    dark = _drawing(60, (0, 0, 60, 60), ground=0)  # all "ink" colour: the border says it is the ground
    assert ink_crop(dark).size == (60, 60)
    pixels = np.zeros((60, 60), dtype=np.uint8)
    pixels[30:40, 10:20] = 200
    assert ink_crop(Image.fromarray(pixels), margin=0.0).size == (10, 10)
    assert ink_crop(Image.fromarray(pixels), margin=0.0).mode == "L"
