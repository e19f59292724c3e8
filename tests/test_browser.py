"""The widgets where people see them: JupyterLab in headless Chromium runs a course notebook and moves its slider.

Starts `jupyter lab` on localhost with a random token, opens the notebook in Debian's Chromium driven by
playwright-python (the system browser; nothing is downloaded), runs all cells, moves the first slider with the
keyboard and asserts from screenshots that the figure under it changed. Screenshots go to build/browser/.
Skipped where /usr/bin/chromium is absent; CI installs it (.ci/run).
"""
from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
SHOTS = REPO / "build" / "browser"
COURSE_NOTEBOOK = "notebooks/01_linear_autoencoder_pca.ipynb"
FIXTURE_NOTEBOOK = "build/browser/fixture_live_figure.ipynb"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
# Lab settings for a test run: never autosave (the course notebooks stay output-free) and never ask about news.
LAB_SETTINGS = {
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": '{"autosave": false}',
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": '{"fetchNews": "false"}',
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": '{"autoStartDefaultKernel": true}',
}

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server over the repository: (base URL, token). Stopped at the end, whatever happened."""
    home = tmp_path_factory.mktemp("lab")
    settings = home / "settings"
    for name, text in LAB_SETTINGS.items():
        path = settings / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    token, port = secrets.token_hex(16), _free_port()
    env = {**os.environ, "LECTURELIB_FAST": "1", "JUPYTERLAB_SETTINGS_DIR": str(settings),
           "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"), "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
           "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)}
    env.pop("MPLBACKEND", None)  # the kernel must use its inline backend
    command = [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--ServerApp.token={token}", f"--port={port}",
               "--ServerApp.ip=127.0.0.1", f"--ServerApp.root_dir={REPO}", "--ServerApp.port_retries=0"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")  # CI containers run as root
    log = open(home / "lab.log", "w")
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"jupyter lab exited ({server.returncode}): {(home / 'lab.log').read_text()[-2000:]}")
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("jupyter lab did not answer within 60 s") from None
                time.sleep(0.5)
        yield base, token
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright-python")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def _png_differs(a: bytes, b: bytes) -> bool:
    from io import BytesIO

    import numpy as np
    from PIL import Image

    pa, pb = (np.asarray(Image.open(BytesIO(x)).convert("L"), dtype=np.int16) for x in (a, b))
    if pa.shape != pb.shape:
        return True
    return int((np.abs(pa - pb) > 16).sum()) > 50  # more than a few anti-aliased pixels


# The code cells' prompts of the notebook on show.
_PROMPTS = "[...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputArea-prompt')]"


def _dismiss_kernel_dialog(page) -> None:
    """Answer "Select Kernel" with the notebook's own kernel (python3), if JupyterLab asks."""
    select = page.locator('.jp-Dialog button:has-text("Select")')
    if select.count():
        select.first.click()


def run_and_move_slider(browser, lab, notebook: str, stem: str, timeout_s: float = 300) -> dict:
    """Open `notebook` in JupyterLab, run all cells, move the first slider; return what was seen.

    `timeout_s` bounds the whole run (fast mode takes well under a minute on an idle machine; CI boxes are not idle).
    """
    base, token = lab
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        # A workspace of its own, reset: only this notebook open, whatever an earlier test left in the lab.
        page.goto(f"{base}/lab/workspaces/{stem}/tree/{notebook}?reset&token={token}")
        page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=60_000)
        _dismiss_kernel_dialog(page)
        page.locator(".jp-StatusBar-Widget", has_text=re.compile(r"\|\s*Idle")).first.wait_for(timeout=60_000)
        for attempt in range(3):  # a Run All sent while the kernel still connects can be lost: send it again
            _dismiss_kernel_dialog(page)
            page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).first.click()
            page.locator('.lm-Menu-item:has(.lm-Menu-itemLabel:text-is("Run All Cells"))').first.click()
            try:
                page.wait_for_function(f"() => {_PROMPTS}.some(e => /\\[(\\*|\\d+)\\]/.test(e.textContent))",
                                       timeout=20_000, polling=250)
                break
            except Exception:
                if attempt == 2:
                    page.screenshot(path=str(SHOTS / f"{stem}-ran.png"), full_page=True)
                    raise
        # Every code cell numbered ([1], [2], ...): the whole notebook ran.
        try:
            page.wait_for_function(f"() => {{ const p = {_PROMPTS}; return p.length > 0 && "
                                   "p.every(e => /\\[\\d+\\]/.test(e.textContent)); }",
                                   timeout=timeout_s * 1000, polling=500)
        finally:
            page.screenshot(path=str(SHOTS / f"{stem}-ran.png"), full_page=True)
        errors = page.locator('[data-mime-type="application/vnd.jupyter.stderr"]:has-text("Traceback"), '
                              '.jp-OutputArea-output:has-text("Traceback (most recent call last)")')
        assert errors.count() == 0, f"a cell failed in the browser: {errors.first.inner_text()[:800]}"

        area = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output:has(.widget-slider)").first
        area.wait_for(timeout=30_000)
        figure = area.locator(".widget-output").first
        figure.locator("img").first.wait_for(timeout=30_000)
        readout = area.locator(".widget-slider .widget-readout").first
        handle = area.locator(".widget-slider .noUi-handle").first
        area.scroll_into_view_if_needed()
        before_value = readout.inner_text()
        before = figure.screenshot(path=str(SHOTS / f"{stem}-before.png"))

        at_max = handle.get_attribute("aria-valuenow") == handle.get_attribute("aria-valuemax")
        handle.focus()
        page.keyboard.press("ArrowLeft" if at_max else "ArrowRight")
        after, deadline = before, time.monotonic() + 60
        while time.monotonic() < deadline:  # the kernel redraws; the new PNG arrives through the output widget
            page.wait_for_timeout(500)
            if figure.locator("img").count():
                after = figure.screenshot()
                if _png_differs(before, after):
                    break
        page.wait_for_timeout(300)
        after = figure.screenshot(path=str(SHOTS / f"{stem}-after.png"))
        page.screenshot(path=str(SHOTS / f"{stem}-page.png"))
        return {"before": before, "after": after, "before_value": before_value, "after_value": readout.inner_text(),
                "images": figure.locator("img").count()}
    finally:
        page.close()


def _check_moved(seen: dict) -> None:
    assert seen["before_value"] != seen["after_value"], "the slider did not move"
    assert seen["images"] >= 1, "the widget's output shows no <img> after the move"
    assert _png_differs(seen["before"], seen["after"]), (
        f"the figure did not change when the slider went {seen['before_value']} -> {seen['after_value']}")


@pytest.mark.skipif(not (REPO / COURSE_NOTEBOOK).exists(), reason=f"{COURSE_NOTEBOOK} is not in this checkout")
def test_course_notebook_slider_changes_the_figure_in_jupyterlab(lab, browser):
    committed = (REPO / COURSE_NOTEBOOK).read_bytes()
    seen = run_and_move_slider(browser, lab, COURSE_NOTEBOOK, "01_linear_autoencoder_pca")
    _check_moved(seen)
    assert (REPO / COURSE_NOTEBOOK).read_bytes() == committed, "the browser run must not save into the notebook"


def test_live_figure_slider_changes_the_figure_in_jupyterlab(lab, browser):
    """The same on a one-cell LiveFigure notebook, so the widget machinery is proven whatever the course holds."""
    cells = [new_markdown_cell("# A LiveFigure"), new_code_cell(
        "import matplotlib.pyplot as plt\n"
        "from lecturelib import widgets\n\n"
        "def draw(height):\n"
        "    fig, ax = plt.subplots(figsize=(3, 2))\n"
        "    ax.bar([0], [height], color='black')\n"
        "    ax.set_ylim(0, 10)\n"
        "    return fig\n\n"
        "widgets.LiveFigure(draw, height=widgets.choice_slider('height', [1, 3, 5, 7, 9], value=1))")]
    nb = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                            "language": "python"}})
    (REPO / FIXTURE_NOTEBOOK).parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, REPO / FIXTURE_NOTEBOOK)
    seen = run_and_move_slider(browser, lab, FIXTURE_NOTEBOOK, "fixture_live_figure")
    _check_moved(seen)
    assert seen["after_value"] == "3"
