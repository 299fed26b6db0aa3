"""Tests for pipeline.evaluation.report: a self-contained, escaped, well-formed page with capped galleries."""

from __future__ import annotations

import base64
import html
import io
import os
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import pipeline.core.html as core_html
from pipeline.evaluation.plots import roc_png
from pipeline.evaluation.report import FailureCase, PairCase, RankedItem, ReportContent, ReportLimits, write_report

VOID_TAGS = frozenset({"img", "meta", "br", "hr", "input", "link"})
ROC = (np.array([0.0, 0.1, 0.4, 1.0]), np.array([0.0, 0.6, 0.9, 1.0]))


@pytest.fixture
def paths(tmp_path: Path) -> dict[str, str]:
    """Three plain PNGs (200×100), one whose name holds `<&"`, and one that does not exist."""
    names = {"a": "a.png", "b": "b.png", "c": "c.png", "weird": 'x<&"y.png'}
    out = {}
    for seed, (key, name) in enumerate(names.items()):
        pixels = np.random.default_rng(seed).integers(0, 256, (100, 200, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(tmp_path / name)
        out[key] = str(tmp_path / name)
    out["missing"] = str(tmp_path / "missing.png")
    return out


def _content(paths: dict[str, str], roc: tuple[np.ndarray, np.ndarray] | None = ROC) -> ReportContent:
    """Two failure cases and three pairs; 9 decodable thumbnails, 2 missing-file placeholders, 1 'unknown'."""
    a, b, c, weird, missing = (paths[k] for k in ("a", "b", "c", "weird", "missing"))
    failures = (
        FailureCase(
            a, (b,), (RankedItem(c, 0.9, False), RankedItem(weird, 0.8, False), RankedItem(b, 0.7, True)), "rank 3"
        ),
        FailureCase(missing, (), (RankedItem(a, 0.5, False),)),
    )
    pairs = (
        PairCase(a, weird, 0.9, same=False, threshold=0.5),  # false accept
        PairCase(b, missing, 0.1, same=True, threshold=0.5),  # false reject
        PairCase(a, b, 0.9, same=True, threshold=0.5),  # correct: skipped
    )
    metrics = {"top1_accuracy": 0.123456, "queries": 42, "encoder": "clip<b>", "auc": np.float32(0.5)}
    return ReportContent("Run <1> & co", metrics, failures, pairs, roc, notes=("lookalike evaluate --k 5 'x'",))


def _write(tmp_path: Path, content: ReportContent, thumb_px: int = 112, limits: ReportLimits | None = None) -> str:
    out = write_report(content, tmp_path / "out" / "report.html", thumb_px, limits or ReportLimits())
    assert out.is_file()
    return out.read_text(encoding="utf-8")


class _TagBalance(HTMLParser):
    """Records mismatched or unclosed non-void tags."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in VOID_TAGS:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()


def test_report_shows_title_metrics_thumbnails_and_roc(tmp_path: Path, paths: dict[str, str]) -> None:
    page = _write(tmp_path, _content(paths))
    assert "<title>Run &lt;1&gt; &amp; co</title>" in page
    for text in ("top1_accuracy", "0.1235", "queries", ">42<", "clip&lt;b&gt;", "0.5000", "--k 5 &#x27;x&#x27;"):
        assert text in page
    assert page.count("<img") == 9 + 1  # thumbnails + ROC
    assert page.count('class="ph"') == 3  # the missing file twice, the unknown truth once
    assert "unreadable" in page
    assert page.count("data:image/png;base64,") == 1
    assert all(src.startswith("data:") for src in re.findall(r'src="([^"]*)"', page))  # nothing to fetch


def test_pairs_are_split_into_false_accepts_and_rejects(tmp_path: Path, paths: dict[str, str]) -> None:
    page = _write(tmp_path, _content(paths))
    assert "False accepts (different, scored ≥ threshold) (1)" in page
    assert "False rejects (same, scored &lt; threshold) (1)" in page
    assert "1 correctly decided pair(s) skipped (not errors)." in page
    assert "score 0.9000 (threshold 0.5000)" in page


def test_paths_are_escaped(tmp_path: Path, paths: dict[str, str]) -> None:
    page = _write(tmp_path, _content(paths))
    assert 'x<&"y' not in page
    assert f'title="{html.escape(paths["weird"])}"' in page  # full path as tooltip
    assert '<span class="name">x&lt;&amp;&quot;y.png</span>' in page  # file name under the thumbnail


def test_roc_only_when_given(tmp_path: Path, paths: dict[str, str]) -> None:
    page = _write(tmp_path, _content(paths, roc=None))
    assert "data:image/png" not in page
    assert "ROC" not in page
    assert page.count("<img") == 9


def test_html_tags_are_balanced(tmp_path: Path, paths: dict[str, str]) -> None:
    parser = _TagBalance()
    parser.feed(_write(tmp_path, _content(paths)))
    parser.close()
    assert parser.errors == []
    assert parser.stack == []


def test_caps_say_how_many_were_omitted(tmp_path: Path, paths: dict[str, str]) -> None:
    ranked = tuple(RankedItem(paths["c"], 0.5, False) for _ in range(5))
    failures = tuple(FailureCase(paths["a"], (paths["b"],), ranked) for _ in range(5))
    pairs = tuple(PairCase(paths["a"], paths["b"], 0.9, same=False, threshold=0.5) for _ in range(4))
    content = ReportContent("capped", {}, failures, pairs)
    page = _write(tmp_path, content, limits=ReportLimits(max_failures=2, max_pairs=3, max_ranked=4))
    assert "Retrieval failures (5)" in page
    assert "3 more failure cases not shown." in page
    assert "1 more pairs not shown." in page
    assert page.count("+1 more") == 2
    assert page.count("<img") == 2 * (1 + 1 + 4) + 3 * 2


def test_each_image_is_decoded_once(tmp_path: Path, paths: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = core_html.thumbnail_jpeg

    def counting(path: str, px: int) -> bytes:
        calls.append(path)
        return real(path, px)

    monkeypatch.setattr(core_html, "thumbnail_jpeg", counting)
    _write(tmp_path, _content(paths))
    assert sorted(calls) == sorted(set(calls))
    assert set(calls) == set(paths.values())


def test_thumbnails_are_resized_to_the_long_side(tmp_path: Path, paths: dict[str, str]) -> None:
    content = ReportContent("one", {}, (FailureCase(paths["a"], (), ()),))
    page = _write(tmp_path, content, thumb_px=64)
    data = re.search(r'src="data:image/jpeg;base64,([^"]+)"', page)
    assert data is not None
    with Image.open(io.BytesIO(base64.b64decode(data.group(1)))) as thumb:
        assert (thumb.format, thumb.size) == ("JPEG", (64, 32))


def test_empty_report_is_still_a_page(tmp_path: Path) -> None:
    page = _write(tmp_path, ReportContent("nothing yet", {}))
    assert "<h1>nothing yet</h1>" in page
    assert "<img" not in page


@pytest.mark.parametrize("thumb_px", [0, 15, 2000])
def test_thumb_px_out_of_range_is_rejected(tmp_path: Path, thumb_px: int) -> None:
    with pytest.raises(ValueError, match="thumb_px"):
        write_report(ReportContent("t", {}), tmp_path / "r.html", thumb_px=thumb_px)


def test_roc_png_is_a_png_and_rejects_bad_arrays() -> None:
    assert roc_png(*ROC).startswith(b"\x89PNG")
    with pytest.raises(ValueError, match="equal length"):
        roc_png(np.array([0.0, 1.0]), np.array([0.0, 0.5, 1.0]))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        roc_png(np.array([0.0, 2.0]), np.array([0.0, 1.0]))


def test_a_name_that_is_not_utf8_is_shown_escaped_and_still_drawn(tmp_path: Path, paths: dict[str, str]) -> None:
    # Issue 16: such a name (a query path from a folder listing) made write_text raise UnicodeEncodeError.
    odd = tmp_path / os.fsdecode(b"caf\xe9.png")
    Path(paths["a"]).rename(odd)
    page = _write(tmp_path, ReportContent("t", {}, (FailureCase(str(odd), (), ()),)))
    assert '<span class="name">caf\\xe9.png</span>' in page
    assert page.count("data:image/jpeg;base64") == 1  # the thumbnail is read from the real file
