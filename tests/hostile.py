"""A hostile ingest corpus, written on the fly, and a way to run code where file permissions are enforced.

`make_hostile_corpus(root)` writes one entry per kind of input a folder ingest must survive (damaged and odd
images, unreadable files and folders, symlink tricks, a FIFO, hostile names) and says what should become of each.
Permission cases are only real where permissions apply: as root they do not, so `run_with_permissions` runs code in
a child process that first drops the capabilities that let root read anything (CAP_DAC_OVERRIDE and
CAP_DAC_READ_SEARCH). It stays uid 0, so the interpreter (under root's 0700 home here) still runs, while the
corpus's mode-000 entries, owned by root, become unreadable to it. Non-root runs need nothing dropped.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from fakes import encode_image as _encode
from fakes import noise_image
from fakes import png_header_only as _png_header_only
from PIL import Image

# Outcome classes: what a first ingest of the corpus root should make of each entry.
INGESTED = "ingested"  # stored; the point's payload `path` is the entry's resolved path
DUPLICATE = "duplicate_content"  # same bytes as an entry stored before it: a report row
FAILED = "failed"  # a report row with a reason; counts towards exit code 3
SKIPPED = "skipped"  # a report row with a reason; not a failure

NON_UTF8_GOOD = os.fsdecode(b"names/good\xff.png")  # a decodable image whose name is not UTF-8
NON_UTF8_BAD = os.fsdecode(b"names/bad\xfe.jpg")  # text in a .jpg whose name is not UTF-8
UNREADABLE_FOLDER = "perm/locked"  # mode 000, with images inside that cannot be listed
UNREADABLE_FILE = "perm/unreadable.jpg"  # mode 000, a good image inside
LOCKED_IMAGES = 3  # images inside UNREADABLE_FOLDER (never seen: they cannot be listed)


def _noise(seed: int, size: tuple[int, int] = (24, 16)) -> Image.Image:
    return noise_image(seed, size)


def _grey16() -> bytes:
    return _encode(Image.fromarray(np.tile(np.linspace(0, 65535, 24).astype(np.uint16), (16, 1))), "PNG")


def _palette_alpha() -> bytes:
    image = Image.fromarray((np.arange(24 * 16).reshape(16, 24) % 3).astype(np.uint8), mode="P")
    image.putpalette([0, 0, 0, 255, 0, 0, 0, 0, 255])
    return _encode(image, "PNG", transparency=0)


def _exif_rotated() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6
    return _encode(_noise(4), "JPEG", exif=exif.tobytes())


def _animated_gif() -> bytes:
    frames = [Image.new("RGB", (24, 16), colour) for colour in ((255, 0, 0), (0, 0, 255), (0, 255, 0))]
    return _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)


def _cmyk() -> bytes:
    return _encode(Image.new("CMYK", (24, 16), (0, 255, 0, 0)), "JPEG")


def _text() -> bytes:
    return b"this is text, not a JPEG\n"


def _truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


# relative path -> (bytes, expected outcome); every image's bytes are distinct unless marked DUPLICATE.
_FILES: dict[str, tuple[Callable[[], bytes], str]] = {
    "good/plain.jpg": (lambda: _encode(_noise(1), "JPEG"), INGESTED),
    "good/plain_copy.jpg": (lambda: _encode(_noise(1), "JPEG"), DUPLICATE),  # sorts after plain.jpg
    "good/cmyk.jpg": (_cmyk, INGESTED),
    "good/grey16.png": (_grey16, INGESTED),
    "good/palette_alpha.png": (_palette_alpha, INGESTED),
    "good/exif_rotated.jpg": (_exif_rotated, INGESTED),
    "good/animated.gif": (_animated_gif, INGESTED),
    "good/one_pixel.png": (lambda: _encode(Image.new("RGB", (1, 1), (9, 99, 199)), "PNG"), INGESTED),
    "bad/truncated.jpg": (lambda: _truncated(_encode(_noise(2, (64, 48)), "JPEG")), FAILED),
    "bad/truncated.png": (lambda: _truncated(_encode(_noise(3, (64, 48)), "PNG")), FAILED),
    "bad/zero.jpg": (lambda: b"", FAILED),
    "bad/text.jpg": (_text, FAILED),
    "bad/bomb.png": (lambda: _png_header_only(50_000, 50_000), FAILED),  # 2.5 gigapixels declared
    "dir.jpg/inside.png": (lambda: _encode(_noise(5), "PNG"), INGESTED),  # a folder named like an image
    UNREADABLE_FILE: (lambda: _encode(_noise(6), "JPEG"), FAILED),
    ".outside/target.png": (lambda: _encode(_noise(7), "PNG"), INGESTED),  # hidden: listed only via links/outside.png
    NON_UTF8_GOOD: (lambda: _encode(_noise(8), "PNG"), INGESTED),
    NON_UTF8_BAD: (lambda: b"text under a name that is not UTF-8", FAILED),
    "names/new\nline.png": (lambda: _encode(_noise(9), "PNG"), INGESTED),
    "names/new\nline bad.jpg": (lambda: b"not\nan image", FAILED),
    'names/tab\tquote"comma, bad.jpg': (lambda: b"not an image, either", FAILED),
    "names/ünïcødé 画像.png": (lambda: _encode(_noise(10), "PNG"), INGESTED),
    "names/ünïcødé 壊れた.jpg": (lambda: b"\xff\xd8\xff broken", FAILED),
    "names/  spaces  .png": (lambda: _encode(_noise(11), "PNG"), INGESTED),
    "notes.txt": (lambda: b"not an image name\n", SKIPPED),
}

# relative path -> (symlink target, expected outcome)
_LINKS: dict[str, tuple[str, str]] = {
    "links/broken.jpg": ("no_such_file.jpg", FAILED),
    "links/loop_a.jpg": ("loop_b.jpg", FAILED),
    "links/loop_b.jpg": ("loop_a.jpg", FAILED),
    "links/to_good.jpg": ("../good/plain.jpg", DUPLICATE),  # followed; same bytes as the file it points at
    "links/outside.png": ("../.outside/target.png", INGESTED),  # followed out of the listed tree
    "loops/up": ("..", SKIPPED),  # a directory symlink to the root: listed once, never recursed into
    "loops/self": (".", SKIPPED),  # a directory symlink to its own folder
}


def make_hostile_corpus(root: Path) -> dict[str, str]:
    """Write the hostile corpus under `root` (created if missing).

    Returns:
        Each entry an ingest of `root` should account for, as its path relative to `root` (a `str`, surrogate-
        escaped where the name is not UTF-8, as `os.listdir` gives it), mapped to its expected outcome class:
        INGESTED, DUPLICATE, FAILED or SKIPPED. The images inside UNREADABLE_FOLDER are not entries (they cannot be
        listed); the folder is. Hidden `.outside/target.png` is not an entry either: it is stored via the
        `links/outside.png` symlink, as its resolved path.
    """
    expected: dict[str, str] = {}
    for relative, (make, outcome) in _FILES.items():
        _write(root / relative, make())
        if not relative.startswith("."):
            expected[relative] = outcome
    for relative, (target, outcome) in _LINKS.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).symlink_to(target)
        expected[relative] = outcome
    os.mkfifo(root / "fifo.jpg")
    expected["fifo.jpg"] = FAILED
    for i in range(LOCKED_IMAGES):
        _write(root / UNREADABLE_FOLDER / f"hidden_{i}.png", _encode(_noise(100 + i), "PNG"))
    expected[UNREADABLE_FOLDER] = FAILED
    (root / UNREADABLE_FILE).chmod(0)
    (root / UNREADABLE_FOLDER).chmod(0)
    return expected


def shown(path: str | Path) -> str:
    """The text a store payload or report should hold for a file path: the path's bytes read as UTF-8, each byte that
    is not UTF-8 written as the four characters `\\xNN`. Stated from the bytes, apart from
    `pipeline.index.sources.display_path`, so the tests do not check that function against itself."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def drop_root_file_access() -> None:
    """As root, give up reading and listing what file permissions forbid (no-op for other users).

    Clears CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from this process's effective, permitted and inheritable sets
    with capset(2) (Linux), so a mode-000 file or folder is unreadable even though the process stays uid 0.

    Raises:
        OSError: capset failed.
    """
    if os.geteuid() != 0:
        return
    header = _CapHeader(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3: two 32-bit data words
    data = (_CapData * 2)()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.capget(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capget failed")
    keep = ~((1 << 1) | (1 << 2)) & 0xFFFFFFFF  # CAP_DAC_OVERRIDE = 1, CAP_DAC_READ_SEARCH = 2 (both in word 0)
    data[0].effective &= keep
    data[0].permitted &= keep
    data[0].inheritable &= keep
    if libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def run_with_permissions(code: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run Python `code` in a child process where file permissions are enforced (see `drop_root_file_access`).

    The child gets `args` as `sys.argv[1:]`, and the repository and tests/ on its path.
    """
    tests = Path(__file__).resolve().parent
    preamble = f"import sys; sys.path[:0] = [{str(tests.parent)!r}, {str(tests)!r}]\n"
    preamble += "from hostile import drop_root_file_access; drop_root_file_access()\n"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tests.parent), str(tests)])}
    return subprocess.run(
        [sys.executable, "-c", preamble + code, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )
