"""Safe image decoding: size limits before pixels, EXIF orientation, any mode to 8-bit RGB, one-line reasons."""

from __future__ import annotations

import io
import os
import re
import struct
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
from PIL import ExifTags, Image, ImageCms, ImageFile, ImageOps, PngImagePlugin, UnidentifiedImageError

from pipeline.core.errors import ImageDecodeError
from pipeline.core.files import open_regular_file

ImageSource = str | os.PathLike[str] | bytes

# What Pillow raises on damaged data: SyntaxError ("broken PNG file"), OSError ("image file is truncated"),
# struct.error / EOFError / IndexError / ValueError from plugins reading short or inconsistent headers.
_CORRUPT_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error)
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_SWAPPING_ORIENTATIONS = frozenset({5, 6, 7, 8})  # EXIF orientations that rotate by 90°


@dataclass(frozen=True)
class DecodeLimits:
    """Limits checked from the header, before any pixel is decoded.

    Attributes:
        max_pixels: largest width × height accepted; the default is Pillow's own warning threshold.
            Pillow refuses anything over twice *its* threshold (178,956,970 by default) whatever this says,
            because lifting that would mean mutating the process-global `Image.MAX_IMAGE_PIXELS`.
        min_side: smallest accepted width and height (1 accepts everything).
    """

    max_pixels: int = 89_478_485
    min_side: int = 1

    def __post_init__(self) -> None:
        if self.max_pixels < 1 or self.min_side < 1:
            raise ValueError(
                f"DecodeLimits: max_pixels and min_side must be ≥ 1, got {self.max_pixels}, {self.min_side}"
            )


def thumbnail_jpeg(
    path: str | os.PathLike[str], px: int, quality: int = 85, limits: DecodeLimits = DecodeLimits()
) -> bytes:
    """A JPEG of the image fitting in px × px, decoded safely (`load_rgb`): reports, galleries, maps and serve.

    Raises:
        ImageDecodeError: the file cannot be read or decoded within `limits`.
    """
    image = load_rgb(path, limits)
    image.thumbnail((px, px))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def load_rgb(path: str | os.PathLike[str], limits: DecodeLimits = DecodeLimits()) -> Image.Image:
    """Decode an image file into a fully loaded 8-bit RGB image.

    Args:
        path: the image file.
        limits: header checks applied before decoding pixels.

    Returns:
        A mode "RGB" image, EXIF orientation applied, first frame of multi-frame files,
        transparency composited onto white. It holds no open file.

    Raises:
        ImageDecodeError: the file is unreadable, empty, not an image, damaged or outside `limits`;
            the message is one short line naming the reason (without the path).
    """
    return _decode(path, limits)


def decode_bytes(data: bytes, limits: DecodeLimits = DecodeLimits()) -> Image.Image:
    """Decode an encoded image held in memory; same behaviour and errors as `load_rgb`."""
    return _decode(data, limits)


def image_size(source: ImageSource) -> tuple[int, int]:
    """Return (width, height) as displayed (EXIF rotation applied), reading only the header.

    Raises:
        ImageDecodeError: the file is unreadable, empty or not an image (no size limit is applied).
    """
    with _open_image(source) as im:
        width, height = im.size
        if _header_orientation(im) in _SWAPPING_ORIENTATIONS:
            return height, width
        return width, height


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert a loaded image of any Pillow mode to a new 8-bit RGB image.

    Alpha (and palette or colour-key transparency) is composited onto white. High-bit greyscale is
    rescaled with numpy instead of Pillow's `convert`, which clips everything above 255 to white:
    "I;16*" divides by 257; "I" divides by 257 when all values fit 0..65535 (16-bit data, as older
    Pillow opened 16-bit PNGs) and is otherwise stretched min..max to 0..255; "F" is multiplied by
    255 when all values fit 0..1 and otherwise stretched min..max. "LAB" goes through LittleCMS.

    Raises:
        ImageDecodeError: a mode Pillow cannot convert to RGB.
    """
    mode = image.mode
    try:
        if mode.startswith("I;16") or mode in ("I", "F"):
            return Image.fromarray(_grey_to_uint8(image)).convert("RGB")
        if mode == "LAB":
            return _lab_to_rgb(image)
        if mode in _ALPHA_MODES or "transparency" in image.info:
            rgba = (image.convert("LA") if mode == "La" else image).convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            return Image.alpha_composite(white, rgba).convert("RGB")
        return image.convert("RGB")
    except ValueError as e:
        raise ImageDecodeError(f"unsupported colour mode {mode}") from e


def _decode(source: ImageSource, limits: DecodeLimits) -> Image.Image:
    """The one decode path behind `load_rgb` and `decode_bytes`."""
    with _open_image(source) as im:
        _check_limits(im.size, limits)
        im.load()  # first frame only; raises on truncated data as LOAD_TRUNCATED_IMAGES stays False
        ImageOps.exif_transpose(im, in_place=True)
        return to_rgb(im)  # always a new image, so closing `im` leaves it intact


@contextmanager
def _open_image(source: ImageSource) -> Iterator[ImageFile.ImageFile]:
    """Open lazily (header only) and turn every failure, here or in the caller's block, into ImageDecodeError."""
    try:
        with _open_stream(source) as fp, warnings.catch_warnings():
            # Pillow warns above its global MAX_IMAGE_PIXELS; `_check_limits` applies our own limit right after
            # opening, with a clearer message, and honours a user who raised it. Not thread-safe (the filter list
            # is process-global), but a lost filter only lets a harmless warning through.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(fp) as im:
                yield im
    except ImageDecodeError:
        raise
    except Image.DecompressionBombError as e:
        raise ImageDecodeError(_bomb_reason(e)) from e
    except UnidentifiedImageError as e:
        raise ImageDecodeError("not an image: unrecognised format") from e
    except _CORRUPT_ERRORS as e:
        raise ImageDecodeError("truncated or corrupt image data") from e


@contextmanager
def _open_stream(source: ImageSource) -> Iterator[BinaryIO]:
    """Yield a binary stream over `source`, rejecting unreadable and empty inputs with a reason."""
    if isinstance(source, bytes):
        if not source:
            raise ImageDecodeError("empty input (0 bytes)")
        yield io.BytesIO(source)
        return
    with open_regular_file(source) as fp:
        if os.fstat(fp.fileno()).st_size == 0:
            raise ImageDecodeError("empty file (0 bytes)")
        yield fp


def _check_limits(size: tuple[int, int], limits: DecodeLimits) -> None:
    """Reject by header size before any pixel is decoded."""
    width, height = size
    pixels = width * height
    if pixels > limits.max_pixels:
        raise ImageDecodeError(
            f"too large: {width}×{height} = {pixels:,} pixels > limit {limits.max_pixels:,} "
            "(raise the max_pixels limit)",
            setting="max_pixels",
        )
    if min(width, height) < limits.min_side:
        raise ImageDecodeError(f"too small: {width}×{height}, a side is under the minimum {limits.min_side}")


def _bomb_reason(error: Image.DecompressionBombError) -> str:
    """Reason for an image Pillow itself refused to open (over twice its global MAX_IMAGE_PIXELS)."""
    match = re.search(r"\((\d+) pixels\)", str(error))
    size = f"{int(match.group(1)):,} pixels" if match else "pixel count"
    ceiling = 2 * (Image.MAX_IMAGE_PIXELS or 0)
    return f"too large: {size} > Pillow's decompression-bomb limit {ceiling:,} (the max_pixels limit cannot raise it)"


def _header_orientation(im: ImageFile.ImageFile) -> int:
    """EXIF orientation (1 = as stored) without decoding pixels."""
    if isinstance(im, PngImagePlugin.PngImageFile) and "exif" not in im.info:
        return 1  # PNG's getexif() would load the whole image to look for an eXIf chunk after the pixel data
    orientation = im.getexif().get(ExifTags.Base.Orientation, 1)
    return orientation if isinstance(orientation, int) else 1


def _grey_to_uint8(image: Image.Image) -> np.ndarray:
    """Rescale high-bit greyscale ("I;16*", "I", "F") to (H, W) uint8 as documented in `to_rgb`."""
    mode = image.mode
    values = np.asarray(image.convert("I") if mode.startswith("I;16") else image, dtype=np.float64)  # (H, W)
    values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if mode == "F" and low >= 0.0 and high <= 1.0:
        scaled = values * 255.0
    elif mode != "F" and low >= 0.0 and high <= 65535.0:
        scaled = values / 257.0  # 65535 / 257 == 255 exactly
    elif high > low:
        scaled = (values - low) * (255.0 / (high - low))
    else:
        scaled = np.zeros_like(values)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _lab_to_rgb(image: Image.Image) -> Image.Image:
    """CIELAB to sRGB; Pillow's plain `convert` just copies channels, which gives wrong colours."""
    transform = ImageCms.buildTransform(ImageCms.createProfile("LAB"), ImageCms.createProfile("sRGB"), "LAB", "RGB")
    converted = ImageCms.applyTransform(image, transform)
    if converted is None:  # only when asked to work in place
        raise ValueError("LittleCMS returned no image")
    return converted


def ink_crop(image: Image.Image, margin: float = 0.08, threshold: int = 64) -> Image.Image:
    """The image cut to a square around its ink, centred, with `margin` × side of background on each side.

    Background is the median of the border pixels (per channel); ink is any pixel whose grey level differs from the
    background's by more than `threshold`. The square is padded with the background colour where it leaves the
    image. An image with no ink is returned unchanged. Made for drawings on a plain ground (handwritten characters):
    it removes where on the canvas and how large a character was drawn, and spends every input pixel on strokes.
    """
    grey = np.asarray(image.convert("L"), dtype=np.int16)
    ink = np.abs(grey - int(np.median(_border(grey)))) > threshold
    if not ink.any():
        return image
    rows, cols = np.nonzero(ink.any(axis=1))[0], np.nonzero(ink.any(axis=0))[0]
    top, bottom, left, right = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    side = max(1, round(max(bottom - top, right - left) * (1 + 2 * margin)))
    canvas = Image.new(image.mode, (side, side), _border_colour(image))
    box = image.crop((left, top, right, bottom))
    canvas.paste(box, ((side - box.width) // 2, (side - box.height) // 2))
    return canvas


def _border_colour(image: Image.Image) -> int | tuple[int, ...]:
    """The median colour of an image's border pixels, in its own mode (an int for one band)."""
    pixels = np.asarray(image).reshape(image.height, image.width, -1)
    colour = tuple(int(v) for v in np.median(_border(pixels), axis=0))
    return colour[0] if len(colour) == 1 else colour


def _border(pixels: np.ndarray) -> np.ndarray:
    """The outermost rows and columns of an (H, W[, C]) array, as one (2H + 2W[, C]) run."""
    return np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
