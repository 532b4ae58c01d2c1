"""The two pages people open, opened as they open them: in a headless Chromium, from disk (file://).

- the trend page (`python -m pytest_energy history --html`), from stored histories with a test id holding
  `<script>`;
- the run's own HTML report (`pytest --energy --energy-html`), from a pytester run on a planted regression.

Each page: no console error (browser log at SEVERE), every <img> decoded with a non-zero natural size, the
hostile test id shown as text and never run, and a screenshot under tmp_path. The run report also shows the
planted REGRESSION. Chromium and chromedriver are Debian's (`apt-get install chromium chromium-driver`),
driven by selenium with explicit paths: Selenium Manager never downloads anything. Without them the tests
skip and say why, except under CI=true, where a missing browser fails.

Screenshot for the docs: `python tests/browser/test_pages.py --docs` draws the trend page of the committed
baselines/ and saves docs/img/trends.png.
"""

from __future__ import annotations

import os
import shutil
import sys
import types
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("PYTEST_ENERGY_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("PYTEST_ENERGY_CHROMEDRIVER", "/usr/bin/chromedriver")
EVIL_ID = "<script>window.__pwned = 1</script>"
WINDOW = (1200, 900)


def _missing() -> str:
    why = [f"{path} is missing" for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    try:
        import selenium  # noqa: F401
    except ImportError:
        why.append("selenium is not installed (pip install selenium)")
    return "; ".join(why)


def start_browser(width: int = WINDOW[0], height: int = WINDOW[1]):
    """A headless Chromium with its console log kept (raises when it cannot start)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={width},{height}", "--force-device-scale-factor=1"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


@pytest.fixture(scope="module")
def browser():
    why = _missing()
    if why:
        message = f"no headless browser: {why} (apt-get install chromium chromium-driver; pip install selenium)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true: {message}", pytrace=False)
        pytest.skip(message)
    driver = start_browser()
    yield driver
    driver.quit()


def open_page(driver, path: Path) -> list[dict]:
    """Load `path` from disk; return the console entries logged while loading (and clear the log)."""
    driver.get(path.resolve().as_uri())
    driver.execute_script("return document.readyState")
    return driver.get_log("browser")


def check_page(driver, path: Path, shot: Path) -> None:
    """What holds for every page: no console error, every image decoded, a screenshot saved."""
    severe = [e for e in open_page(driver, path) if e.get("level") == "SEVERE"]
    assert not severe, severe
    # Collapsed sections still decode their images; naturalWidth is 0 for an image that failed.
    images = driver.execute_script(
        "return Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight, i.alt])")
    broken = [img for img in images if not (img[0] and img[1] > 0 and img[2] > 0)]
    assert not broken, broken
    assert driver.execute_script("return window.__pwned") is None, "a script from the page ran (window.__pwned)"
    assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 1000
    keep = os.environ.get("PYTEST_ENERGY_SCREENSHOT_DIR")
    if keep:  # keep the screenshots of a CI run as artefacts
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / shot.name)
    return images


@pytest.mark.parametrize("body, caught", [
    ('<img src="data:image/png;base64,iVBORw0KGgo=" alt="damaged">', "damaged"),
    ("<script>console.error('boom')</script>", "boom"),
    ("<script>window.__pwned = 1</script>", "__pwned"),
])
def test_the_checks_catch_a_broken_page(browser, tmp_path, body, caught):
    """The checks above are not vacuous: a damaged image, a console error and a script that ran all fail."""
    page = tmp_path / "broken.html"
    page.write_text(f"<!DOCTYPE html><html><head><title>t</title></head><body>{body}</body></html>",
                    encoding="utf-8")
    with pytest.raises(AssertionError) as failure:
        check_page(browser, page, tmp_path / "broken.png")
    assert caught in str(failure.value)


# --- the trend page ---------------------------------------------------------------------------------------

def _stored_histories(folder: Path) -> None:
    from pytest_energy.gate.baselines import BaselineEntry, BaselineStore
    from pytest_energy.gate.history import RunSummary
    from pytest_energy.records import Metric

    machine = {"method": "estimate", "cpu_model": "Test CPU", "estimate_watts_per_core": 10.0, "gpus": []}
    runs = {f"r{i}": {"datetime": f"2026-11-{10 + i:02d}T12:00:00+00:00", "commit": f"{i:040x}", "probe_s": None,
                      "probe_id": None} for i in range(5)}
    entries = []
    for n, nodeid in enumerate(["bench/test_model.py::test_train", f"bench/test_model.py::test_x[{EVIL_ID}]",
                                *(f"bench/test_sweep.py::test_point[{i}]" for i in range(6))]):
        energy = [100.0 + n + d for d in (0.0, 3.0, -2.0, 1.0, 2.0)]
        duration = [1.0 + n / 10 + d for d in (0.0, 0.03, -0.02, 0.01, 0.02)]
        start = 2 if n == 0 else 0  # the first test's energy history restarted at run 2
        entries.append(BaselineEntry(
            nodeid=nodeid, machine=machine, commit={"id": "f" * 40}, datetime=runs["r4"]["datetime"],
            method="estimate", metrics={"energy_j": Metric("energy_j", "J", samples=[energy[-1]]),
                                        "duration_s": Metric("duration_s", "s", samples=[duration[-1]])},
            history={"energy_j": [RunSummary(x, 0.0, 1, f"r{i}") for i, x in enumerate(energy) if i >= start],
                     "duration_s": [RunSummary(x, 0.0, 1, f"r{i}") for i, x in enumerate(duration)]},
            runs=runs))
    BaselineStore(folder).save(entries)


def test_trend_page_in_a_browser(browser, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from pytest_energy.cli import main

    _stored_histories(tmp_path / "baselines")
    page = tmp_path / "trends.html"
    assert main(["history", "--baseline-dir", str(tmp_path / "baselines"), "--html", str(page)]) == 0
    images = check_page(browser, page, tmp_path / "trends.png")
    assert len(images) == 16  # 8 tests x (energy_j, duration_s)

    body = browser.find_element("tag name", "body").text
    assert EVIL_ID in body  # shown as text
    assert "restart" in body
    # The contents link opens the collapsed section of its test.
    link = browser.find_element("link text", "bench/test_model.py::test_train")
    section = browser.find_element("id", link.get_attribute("href").rsplit("#", 1)[1])
    assert not section.get_attribute("open")
    link.click()
    assert section.get_attribute("open") is not None
    # The filter keeps the sections whose node id holds the typed text.
    box = browser.find_element("id", "filter")
    box.send_keys("test_point")
    visible = [d for d in browser.find_elements("css selector", "details.test") if d.is_displayed()]
    assert len(visible) == 6 and browser.find_element("id", "shown").text == "6"
    assert not [e for e in browser.get_log("browser") if e.get("level") == "SEVERE"]


# --- the run's own HTML report ----------------------------------------------------------------------------

PLANTED = f"""
import pytest
import planted_world


@pytest.mark.parametrize("case", ["plain", {EVIL_ID!r}])
def test_work(energy, case):
    energy(planted_world.work, 0.2)
"""


@pytest.fixture
def planted(pytester, monkeypatch):
    """A hand-moved meter: each call of `work` takes `seconds x factor` and 40 W; the test sets the factor."""
    from pytest_energy.meters.fake import ManualClock, manual_meter

    clock = ManualClock()
    meter, _ = manual_meter(clock, method="estimate")
    world = types.ModuleType("planted_world")
    world.factor = 1.0

    def work(seconds: float) -> None:
        clock.advance(seconds * world.factor, 40.0 * seconds * world.factor)

    world.work = work
    monkeypatch.setitem(sys.modules, "planted_world", world)
    monkeypatch.setattr("pytest_energy.session.open_meter", lambda *a, **k: meter)
    pytester.makepyfile(test_planted=PLANTED)
    return world


def test_run_report_in_a_browser(browser, pytester, planted, tmp_path):
    pytest.importorskip("matplotlib")
    args = ("--energy", "--energy-rounds", "3", "--energy-min-round-s", "0", "--energy-probe", "off")
    pytester.runpytest(*args, "--energy-save-baseline").assert_outcomes(passed=2)
    planted.factor = 1.5  # the planted regression: 50 % more time and energy
    result = pytester.runpytest(*args, "--energy-html", "report.html")
    result.assert_outcomes(failed=2)
    page = pytester.path / "report.html"
    images = check_page(browser, page, tmp_path / "run-report.png")
    assert images, "the report of a run with baselines has its baseline-vs-current charts"

    shown = [e for e in browser.find_elements("xpath", "//*[contains(text(), 'REGRESSION')]") if e.is_displayed()]
    assert shown, "the planted REGRESSION is not visible"
    assert EVIL_ID in browser.find_element("tag name", "body").text


# --- the docs' screenshot -----------------------------------------------------------------------------------

DOCS_SELECTION = "finetune or inference"  # three tests: the contents and an opened section fit one picture


def docs_screenshot(root: Path, out: Path) -> Path:
    """The trend page of the committed baselines/, as docs/history.md shows it: the fine-tuning and inference
    benchmarks, the first test's section opened."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "trends.html"
        subprocess.run([sys.executable, "-m", "pytest_energy", "history", "--baseline-dir", "baselines", "--html",
                        str(page), "-k", DOCS_SELECTION], cwd=root, check=True, stdout=subprocess.DEVNULL)
        driver = start_browser(1100, 1180)
        try:
            open_page(driver, page)
            driver.execute_script("var d = document.querySelector('details.test'); d.open = true;"
                                  "window.scrollTo(0, 0);")
            out.parent.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(out))
        finally:
            driver.quit()
    return out


if __name__ == "__main__":
    if sys.argv[1:] != ["--docs"]:
        sys.exit("usage: python tests/browser/test_pages.py --docs  (saves docs/img/trends.png)")
    repo = Path(__file__).resolve().parents[2]
    print(docs_screenshot(repo, repo / "docs" / "img" / "trends.png"))
