"""`lookalike serve` as a real process on 127.0.0.1, driven by headless Chromium (selenium): upload an image and see
its planted near copy first, open the duplicates view and plan a move, keep a mark across pages, the collections view
and the map (hovering a point shows its thumbnail and path).

Screenshots of each view go to $LOOKALIKE_SCREENSHOTS (default: the test's tmp folder). Needs Debian's `chromium` and
`chromium-driver` (`.ci/run` installs them with apt); without them the browser tests skip, saying so. The raw-socket
test of the upload cap runs with the server alone.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from cli import app as cli_app

pytest.importorskip("fastapi", reason="the serve extra (fastapi, uvicorn) is not installed")

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
needs_browser = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver; .ci/run does)",
)


@dataclass(frozen=True)
class Served:
    base: str
    port: int
    photos: Path
    query: Path
    shots: Path
    key: Path


def _plant(root: Path) -> None:
    """Twelve distinct smooth images in two labels, a half-size copy of a0 and a byte copy of b0."""
    rng = np.random.default_rng(3)
    for i in range(12):
        label = "a" if i < 6 else "b"
        path = root / label / f"{label}{i % 6}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).resize((160, 120), Image.BICUBIC).save(path)
    Image.open(root / "a" / "a0.png").resize((80, 60)).save(root / "a" / "a0_small.jpg", quality=85)
    shutil.copyfile(root / "b" / "b0.png", root / "b" / "b0_copy.png")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_up(base: str, process: subprocess.Popen[bytes], seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"lookalike serve exited {process.returncode}: {process.stderr.read().decode()}")  # type: ignore[union-attr]
        try:
            with urllib.request.urlopen(base + "/api/collections", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"lookalike serve did not answer at {base} within {seconds:.0f} s")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """Ingest (phash) and dedup a small folder, then run `lookalike serve` on a free port of 127.0.0.1."""
    work = tmp_path_factory.mktemp("browser")
    env = {**os.environ, "LOOKALIKE_KEY_FILE": str(work / "key" / "manifest.key")}
    _plant(work / "photos")
    store = ["--store", str(work / "qdrant")]
    cli = CliRunner(env={"LOOKALIKE_KEY_FILE": env["LOOKALIKE_KEY_FILE"]})
    ingest = ["ingest", str(work / "photos"), "-c", "photos", "-e", "phash", "--workers", "0", "--no-progress"]
    assert cli.invoke(cli_app, [*ingest, "--report", str(work / "ingest.csv"), *store]).exit_code == 0
    dedup = ["dedup", "-c", "photos", "--threshold", "0.9", "--out", str(work / "runs" / "dedup" / "photos")]
    assert cli.invoke(cli_app, [*dedup, "--no-progress", "--device", "cpu", *store]).exit_code == 0
    query = work / "queries" / "a0_query.jpg"
    query.parent.mkdir()
    Image.open(work / "photos" / "a" / "a0.png").resize((120, 90)).save(query, quality=80)
    port = _free_port()
    command = [sys.executable, "-c", "from cli import main; main()", "serve", "-c", "photos", "--port", str(port)]
    command += ["--runs", str(work / "runs"), "--device", "cpu", "--max-upload-mb", "1", *store]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_up(base, process)
        shots = Path(os.environ.get("LOOKALIKE_SCREENSHOTS") or work / "screenshots")
        shots.mkdir(parents=True, exist_ok=True)
        yield Served(base, port, work / "photos", query, shots, Path(env["LOOKALIKE_KEY_FILE"]))
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_a_declared_100_mb_upload_is_refused_before_it_is_sent(served: Served) -> None:
    """The server answers 413 from the headers alone: the client has sent 1 KB of the 100 MB it announced."""
    head = (
        "POST /api/search HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=x\r\n"
        f"Content-Length: {100 * 2**20}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", served.port), timeout=20) as s:
        s.sendall(head.encode() + b"x" * 1024)
        answer = b""
        while chunk := s.recv(65536):  # the server closes the connection after its answer
            answer += chunk
    text = answer.decode("latin-1")
    assert text.startswith("HTTP/1.1 413"), text
    assert '"error"' in text and "upload cap" in text


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (the dev extra)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1360,1000"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(120)
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver: Any, css: str, count: int = 1, seconds: float = 60) -> list[Any]:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def enough(d: Any) -> list[Any] | bool:
        found = d.find_elements(By.CSS_SELECTOR, css)
        return list(found) if len(found) >= count else False

    return list(WebDriverWait(driver, seconds).until(enough))


def _images_loaded(driver: Any) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    script = "return Array.from(document.images).every(i => i.complete)"
    WebDriverWait(driver, 60).until(lambda d: d.execute_script(script))


def _clear_review(served: Served) -> None:
    """Forget the marks and keeper choices the previous tests left beside the run (they persist server-side)."""
    url = served.base + "/api/duplicates/review?collection=photos"
    with urllib.request.urlopen(urllib.request.Request(url, method="DELETE"), timeout=20) as answer:
        assert answer.status == 200


@needs_browser
def test_upload_shows_the_near_copy_first_and_a_click_searches_from_it(served: Served, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    browser.get(served.base + "/")
    browser.find_element(By.ID, "file").send_keys(str(served.query))
    cards = _wait(browser, "#results a.card", count=5)
    first = cards[0].get_attribute("title")
    assert Path(first).name in {"a0.png", "a0_small.jpg"}, first
    assert "results in" in browser.find_element(By.ID, "status").text
    _images_loaded(browser)
    browser.save_screenshot(str(served.shots / "1-search-upload.png"))

    cards[0].click()
    _wait(browser, ".query img")
    assert "id=" in browser.current_url
    assert Path(_wait(browser, "#results a.card")[0].get_attribute("title")).name in {"a0.png", "a0_small.jpg"}
    _images_loaded(browser)
    browser.save_screenshot(str(served.shots / "2-search-by-id.png"))


@needs_browser
def test_duplicates_view_changes_a_keeper_and_plans_the_move(served: Served, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    _clear_review(served)
    browser.get(served.base + "/duplicates?collection=photos")
    groups = _wait(browser, "section.group", count=2)
    assert "2 groups" in browser.find_element(By.ID, "run-info").text
    near_group = next(g for g in groups if "a0_small.jpg" in g.text or "a0.png" in g.get_attribute("innerHTML"))
    other = next(r for r in near_group.find_elements(By.CSS_SELECTOR, "input[type=radio]") if not r.is_selected())
    other.click()
    assert near_group.find_element(By.CSS_SELECTOR, ".mark").is_selected()  # changing the keeper marks the group
    roles = [r.text for r in near_group.find_elements(By.CSS_SELECTOR, ".role")]
    chosen = other.find_element(By.XPATH, "..").find_element(By.CSS_SELECTOR, ".role").text
    assert chosen == "keep" and sorted(roles) == ["keep", "move"]
    browser.find_element(By.ID, "plan").click()
    outcome = _wait(browser, "#outcome table tr", count=2)[0].find_element(By.XPATH, "../..")
    assert "Plan (nothing moved yet)" in outcome.text and "planned 1" in outcome.text
    assert (served.photos / "a" / "a0.png").is_file() and (served.photos / "a" / "a0_small.jpg").is_file()
    _images_loaded(browser)
    browser.set_window_size(1360, 1300)  # the outcome and both groups in one picture
    browser.save_screenshot(str(served.shots / "3-duplicates.png"))
    browser.set_window_size(1360, 1000)


def _on_page(driver: Any, n: int) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def shown(d: Any) -> bool:
        return bool(d.execute_script("return document.readyState") == "complete") and f"page {n} of 2" in str(
            d.find_element(By.CSS_SELECTOR, ".page-no").text
        )

    WebDriverWait(driver, 60).until(shown)


def _mark_count_is(driver: Any, n: int) -> None:
    """Wait until the page shows `n` marked groups: the server has saved the change."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 30).until(lambda d: d.find_element(By.ID, "marked-count").text == str(n))


@needs_browser
def test_a_mark_survives_going_to_the_next_page_and_back(served: Served, browser: Any) -> None:
    """Marks are kept beside the run, not in the page: page 2 and back, the mark is still there; plan covers both
    pages' marked groups."""
    from selenium.webdriver.common.by import By

    _clear_review(served)
    browser.get(served.base + "/duplicates?collection=photos&per_page=1")
    _on_page(browser, 1)
    [group] = _wait(browser, "section.group")
    first = group.get_attribute("data-group")
    group.find_element(By.CSS_SELECTOR, ".mark").click()
    _mark_count_is(browser, 1)

    browser.find_element(By.CSS_SELECTOR, "a[rel=next]").click()
    _on_page(browser, 2)
    [other] = _wait(browser, "section.group")
    assert other.get_attribute("data-group") != first
    assert not other.find_element(By.CSS_SELECTOR, ".mark").is_selected()
    other.find_element(By.CSS_SELECTOR, ".mark").click()
    _mark_count_is(browser, 2)

    browser.find_element(By.CSS_SELECTOR, "a[rel=prev]").click()
    _on_page(browser, 1)
    [back] = _wait(browser, "section.group")
    assert back.get_attribute("data-group") == first
    assert back.find_element(By.CSS_SELECTOR, ".mark").is_selected() and "marked" in back.get_attribute("class")
    browser.find_element(By.ID, "plan").click()
    outcome = _wait(browser, "#outcome table tr", count=3)[0].find_element(By.XPATH, "../..")
    assert "planned 2" in outcome.text  # both pages' groups
    _images_loaded(browser)
    browser.save_screenshot(str(served.shots / "7-duplicates-marks-kept.png"))
    _clear_review(served)


@needs_browser
def test_collections_and_map_views(served: Served, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    browser.get(served.base + "/collections")
    row = _wait(browser, "#collections tr[data-collection=photos]")[0]
    assert " 13 " in row.text and "phash:8" in row.text  # 12 + the near copy; the byte copy is the same point
    _images_loaded(browser)
    browser.save_screenshot(str(served.shots / "4-collections.png"))

    browser.get(served.base + "/map?collection=photos")
    canvas = _wait(browser, "#map canvas")[0]
    assert canvas.size["width"] > 300 and "13 points" in browser.find_element(By.CSS_SELECTOR, ".lk-meta").text
    browser.save_screenshot(str(served.shots / "5-map.png"))


# Where the map's script draws each point (its `fit`, `sx`, `sy` at the initial view), in CSS pixels of the canvas;
# the point farthest from any other, so that hovering it cannot pick a neighbour.
ISOLATED_POINT = """
const canvas = arguments[0], root = canvas.closest(".lk-map");
const P = JSON.parse(root.querySelector("script.lk-data").textContent).points;
const w = canvas.clientWidth, h = canvas.clientHeight, pad = 12;
const xs = P.map(p => p[0]), ys = P.map(p => p[1]);
const x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(...ys), y1 = Math.max(...ys);
const k = Math.min((w - 2 * pad) / ((x1 - x0) || 1), (h - 2 * pad) / ((y1 - y0) || 1));
const bx = (w - k * (x1 + x0)) / 2, by = (h + k * (y1 + y0)) / 2;
const at = P.map(p => [k * p[0] + bx, by - k * p[1]]);
let best = 0, bestGap = -1;
at.forEach((a, i) => {
  const gap = Math.min(...at.filter((_, j) => j !== i).map(b => Math.hypot(a[0] - b[0], a[1] - b[1])));
  if (gap > bestGap) { bestGap = gap; best = i; }
});
return {x: at[best][0], y: at[best][1], path: P[best][3], w: w, h: h, gap: bestGap};
"""


@needs_browser
def test_hovering_a_map_point_shows_its_thumbnail_and_path(served: Served, browser: Any) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.set_window_size(1360, 1400)  # the whole canvas in view: offsets count from its centre
    try:
        browser.get(served.base + "/map?collection=photos")
        canvas = _wait(browser, "#map canvas")[0]
        point = browser.execute_script(ISOLATED_POINT, canvas)
        assert point["gap"] > 10, point  # no other point within the hover radius
        dx, dy = round(point["x"] - point["w"] / 2), round(point["y"] - point["h"] / 2)
        ActionChains(browser).move_to_element_with_offset(canvas, dx, dy).perform()
        tip = browser.find_element(By.CSS_SELECTOR, "#map .lk-tip")
        WebDriverWait(browser, 20).until(lambda d: tip.is_displayed())
        assert tip.find_element(By.CSS_SELECTOR, ".lk-path").text == point["path"]
        image = tip.find_element(By.TAG_NAME, "img")
        assert "/thumb/photos/" in image.get_attribute("src") and image.is_displayed()
        loaded = "return arguments[0].complete && arguments[0].naturalWidth"
        WebDriverWait(browser, 30).until(lambda d: d.execute_script(loaded, image) > 0)
        inside = "const t = arguments[0], c = arguments[1]; return t.offsetTop + t.offsetHeight <= c.clientHeight;"
        WebDriverWait(browser, 5).until(lambda d: d.execute_script(inside, tip, canvas))  # placed again once loaded
        browser.save_screenshot(str(served.shots / "8-map-hover.png"))
    finally:
        browser.set_window_size(1360, 1000)


@needs_browser
def test_compute_now_runs_in_the_background_and_reloads_the_view(served: Served, browser: Any) -> None:
    import json

    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(served.base + "/duplicates?collection=photos")
    _wait(browser, "section.group", count=2)
    browser.execute_script("document.body.dataset.before = 'yes'")  # gone once the page has reloaded
    browser.find_element(By.ID, "compute").click()

    def reloaded(d: Any) -> bool:
        script = "return document.readyState === 'complete' && !document.body.dataset.before"
        return bool(d.execute_script(script))

    WebDriverWait(browser, 120, ignored_exceptions=(WebDriverException,)).until(reloaded)
    assert "2 groups" in _wait(browser, "#run-info")[0].text
    with urllib.request.urlopen(served.base + "/api/duplicates/compute/status", timeout=20) as answer:
        status = json.load(answer)
    assert status["state"] == "done" and status["groups"] == 2, status


@needs_browser
def test_apply_from_the_page_shows_the_manifest_and_undo_puts_it_back(served: Served, browser: Any) -> None:
    """Last in this file: it moves a file (and puts it back)."""
    import shlex

    from selenium.webdriver.common.by import By

    _clear_review(served)
    browser.get(served.base + "/duplicates?collection=photos")
    group = next(g for g in _wait(browser, "section.group", count=2) if "a0_small.jpg" in g.get_attribute("innerHTML"))
    small = next(
        r for r in group.find_elements(By.CSS_SELECTOR, "input[type=radio]") if "a0_small" in r.get_attribute("value")
    )
    small.click()
    browser.execute_script("window.confirm = () => true")  # the page asks before moving
    browser.find_element(By.ID, "apply").click()
    undo = _wait(browser, "#undo")[0].text
    manifest = Path(browser.find_element(By.ID, "manifest").text)
    assert "moved 1" in browser.find_element(By.ID, "outcome").text and manifest.is_file()
    assert not (served.photos / "a" / "a0.png").exists() and (served.photos / "a" / "a0_small.jpg").is_file()
    moved = [
        m for m in group.find_elements(By.CSS_SELECTOR, "label.member.gone") if "a0.png" in m.get_attribute("title")
    ]
    assert len(moved) == 1 and "moved" in moved[0].text
    browser.save_screenshot(str(served.shots / "6-applied.png"))

    assert undo == f"lookalike dedup --undo {shlex.quote(str(manifest))}"
    result = CliRunner(env={"LOOKALIKE_KEY_FILE": str(served.key)}).invoke(cli_app, shlex.split(undo)[1:])
    assert result.exit_code == 0 and "restored 1" in result.output, result.output
    assert (served.photos / "a" / "a0.png").is_file()
