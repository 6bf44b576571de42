"""The HTML digest in a real browser: Debian's chromium, headless, driven through its own
chromedriver by Selenium (no browser download; `make test` installs both when missing).

A screenshot of the page must not be blank, the chart must have loaded and be on screen with the
series' colours in its box, and every top theme's title must be shown inside the screenshot with
ink under it. Under CI=true a missing browser fails the test; elsewhere it skips, saying why.
"""

import io
import os
import shutil
from pathlib import Path

import pytest
from PIL import Image, ImageStat

from digests.chart import CHART_THEMES, COLOURS
from digests.render import render_html
from tests.test_chart import themed_digest

WIDTH, HEIGHT = 1280, 3200  # tall enough for the whole page: a screenshot is the viewport only


def _find(name: str) -> str | None:
    return shutil.which(name) or next((p for p in (f"/usr/bin/{name}",) if os.access(p, os.X_OK)), None)


def _missing(reason: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}: under CI=true the browser test must run (make test installs chromium)")
    pytest.skip(f"{reason}; install Debian's chromium and chromium-driver (make test does)")


@pytest.fixture(scope="module")
def browser():
    try:
        from selenium import webdriver
    except ImportError:
        _missing("selenium is not installed (the dev extra)")
    chromium, driver_path = _find("chromium"), _find("chromedriver")
    if chromium is None or driver_path is None:
        _missing(f"chromium ({chromium or 'not found'}) or chromedriver ({driver_path or 'not found'}) is missing")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in (
        "--headless=new",
        f"--window-size={WIDTH},{HEIGHT}",
        "--force-device-scale-factor=1",
        "--hide-scrollbars",
        "--disable-gpu",
        "--disable-dev-shm-usage",  # /dev/shm is small in containers
        "--disable-extensions",
        "--no-first-run",
    ):
        options.add_argument(argument)
    if os.geteuid() == 0:
        options.add_argument("--no-sandbox")  # chromium refuses to start as root with its sandbox
    # The Service's path keeps Selenium Manager out: it would look for, or download, a driver.
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _near(pixel: tuple[int, int, int], colour: tuple[int, int, int], tolerance: int = 12) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, colour, strict=True))


def rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))


def test_the_html_digest_in_chromium_shows_the_chart_and_the_top_theme_titles(browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    digest = themed_digest()
    page = tmp_path / "digest.html"
    page.write_text(render_html(digest), encoding="utf-8")
    browser.get(Path(page).as_uri())
    WebDriverWait(browser, 10).until(lambda d: d.execute_script("return document.readyState") == "complete")
    WebDriverWait(browser, 10).until(lambda d: d.execute_script("return document.getElementById('chart').complete"))
    viewport = browser.execute_script("return [window.innerWidth, window.innerHeight]")
    assert browser.execute_script("return document.documentElement.scrollHeight") <= viewport[1], (
        "the page is taller than the window: the screenshot would not hold it all"
    )
    png = browser.get_screenshot_as_png()
    (tmp_path / "screenshot.png").write_bytes(png)  # kept with the test's files, to look at
    shot = Image.open(io.BytesIO(png)).convert("RGB")
    assert shot.size == tuple(viewport)

    # Not blank: many colours, and far from one flat tone.
    assert len(shot.getcolors(maxcolors=1 << 20)) > 200
    assert max(ImageStat.Stat(shot).stddev) > 20

    # The chart: decoded (naturalWidth), shown at full size on screen, and its lines drawn there.
    chart = browser.find_element(By.ID, "chart")
    natural = browser.execute_script("return [arguments[0].naturalWidth, arguments[0].naturalHeight]", chart)
    assert natural == [800, 500] and chart.is_displayed()
    box = chart.rect
    assert box["x"] >= 0 and box["y"] >= 0 and box["x"] + box["width"] <= viewport[0]
    assert box["y"] + box["height"] <= viewport[1] and round(box["width"]) == 800
    assert chart.get_attribute("alt").startswith("Line chart of submissions per week")
    inside = shot.crop(
        (round(box["x"]), round(box["y"]), round(box["x"] + box["width"]), round(box["y"] + box["height"]))
    )
    found = {colour for _, colour in inside.getcolors(maxcolors=1 << 20)}
    for hex_colour in COLOURS[:CHART_THEMES]:
        assert any(_near(pixel, rgb(hex_colour)) for pixel in found), f"no {hex_colour} line in the chart's box"

    # Every top theme's title: shown, inside the screenshot, with dark text pixels in its box.
    titles = browser.find_elements(By.CSS_SELECTOR, ".theme strong")
    shown = {element.text: element for element in titles}
    for line in digest.top:
        assert line.title in shown, f"{line.title!r} is not on the page"
        element = shown[line.title]
        assert element.is_displayed()
        r = element.rect
        assert 0 <= r["y"] and r["y"] + r["height"] <= viewport[1] and r["x"] + r["width"] <= viewport[0]
        ink = shot.crop((round(r["x"]), round(r["y"]), round(r["x"] + r["width"]), round(r["y"] + r["height"])))
        assert min(min(pixel) for pixel in ink.getdata()) < 100, f"no text drawn for {line.title!r}"
