"""The course where people see it, in Debian's headless Chromium driven by playwright-python (the system browser;
nothing is downloaded). Screenshots go to build/browser/. Skipped where /usr/bin/chromium is absent; CI installs it.

- Live widgets: `jupyter lab` on localhost with a random token runs a notebook; the first slider is moved with the
  keyboard and the screenshots show that the figure under it changed. The same in jupyterlab-slideshow's deck mode
  (the presenting route): → moves to the slide with the widget, and its slider still redraws the figure.
- Offline decks: every course notebook's slide deck (as `render --slides` writes it) opened from disk, and a deck and
  an HTML page served by `python -m http.server`, with every request outside localhost/file blocked: → moves on,
  every formula is typeset by MathJax (no raw `$` or `\\mathbf` left, no TeX error), nothing was fetched from outside.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import secrets
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from course import render

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
SHOTS = REPO / "build" / "browser"
COURSE_NOTEBOOK = "notebooks/01_linear_autoencoder_pca.ipynb"
FIXTURE_NOTEBOOK = "build/browser/fixture_live_figure.ipynb"
DECK_NOTEBOOK = "build/browser/present/fixture_deck.ipynb"  # presented from a copy in build/, as the README says
COURSE = sorted((REPO / "notebooks").glob("*.ipynb"))
DECK_SETTINGS = "jupyterlab-slideshow/plugin.jupyterlab-settings"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
# Lab settings for a test run: never autosave (the course notebooks stay output-free) and never ask about news.
LAB_SETTINGS = {
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": '{"autosave": false}',
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": '{"fetchNews": "false"}',
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": '{"autoStartDefaultKernel": true}',
}

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)"
    ),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server over the repository: (base URL, token, settings folder). Stopped at the end, whatever
    happened."""
    home = tmp_path_factory.mktemp("lab")
    settings = home / "settings"
    for name, text in LAB_SETTINGS.items():
        path = settings / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    token, port = secrets.token_hex(16), _free_port()
    env = {
        **os.environ,
        "LECTURELIB_FAST": "1",
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p),
    }
    env.pop("MPLBACKEND", None)  # the kernel must use its inline backend
    command = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--no-browser",
        f"--ServerApp.token={token}",
        f"--port={port}",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.root_dir={REPO}",
        "--ServerApp.port_retries=0",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")  # CI containers run as root
    log = open(home / "lab.log", "w")
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                raise RuntimeError(
                    f"jupyter lab exited ({server.returncode}): {(home / 'lab.log').read_text()[-2000:]}"
                )
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("jupyter lab did not answer within 60 s") from None
                time.sleep(0.5)
        yield base, token, settings
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
_PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"


def _dismiss_kernel_dialog(page) -> None:
    """Answer "Select Kernel" with the notebook's own kernel (python3), if JupyterLab asks."""
    select = page.locator('.jp-Dialog button:has-text("Select")')
    if select.count():
        select.first.click()


def _open_and_run_all(page, lab, notebook: str, stem: str, timeout_s: float) -> None:
    """Open `notebook` in a workspace of its own and run all its cells; fail on a cell's traceback."""
    base, token, _ = lab
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
            page.wait_for_function(
                f"() => {_PROMPTS}.some(e => /\\[(\\*|\\d+)\\]/.test(e.textContent))", timeout=20_000, polling=250
            )
            break
        except Exception:
            if attempt == 2:
                page.screenshot(path=str(SHOTS / f"{stem}-ran.png"), full_page=True)
                raise
    # Every code cell numbered ([1], [2], ...): the whole notebook ran.
    try:
        page.wait_for_function(
            f"() => {{ const p = {_PROMPTS}; return p.length > 0 && p.every(e => /\\[\\d+\\]/.test(e.textContent)); }}",
            timeout=timeout_s * 1000,
            polling=500,
        )
    finally:
        page.screenshot(path=str(SHOTS / f"{stem}-ran.png"), full_page=True)
    errors = page.locator(
        '[data-mime-type="application/vnd.jupyter.stderr"]:has-text("Traceback"), '
        '.jp-OutputArea-output:has-text("Traceback (most recent call last)")'
    )
    assert errors.count() == 0, f"a cell failed in the browser: {errors.first.inner_text()[:800]}"


def _move_first_slider(page, stem: str, scope: str = _PANEL) -> dict:
    """Move the first slider under `scope` one step with the keyboard; return what was seen before and after."""
    area = page.locator(f"{scope} .jp-OutputArea-output:has(.widget-slider)").first
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
    return {
        "before": before,
        "after": after,
        "before_value": before_value,
        "after_value": readout.inner_text(),
        "images": figure.locator("img").count(),
    }


def run_and_move_slider(browser, lab, notebook: str, stem: str, timeout_s: float = 300, present: bool = False) -> dict:
    """Open `notebook` in JupyterLab, run all cells, move the first slider; return what was seen.

    `present`: then also start deck mode, step through the slides to the first slider and move it again there
    (what was seen then is under "deck"). `timeout_s` bounds the whole run (fast mode takes well under a minute on an
    idle machine; CI boxes are not idle).
    """
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        _open_and_run_all(page, lab, notebook, stem, timeout_s)
        seen = _move_first_slider(page, stem)
        if present:
            seen["deck"] = _present_to_first_slider(page, f"{stem}-deck")
        return seen
    finally:
        page.close()
        if present:
            _leave_deck_mode(lab)


def _check_moved(seen: dict) -> None:
    assert seen["before_value"] != seen["after_value"], "the slider did not move"
    assert seen["images"] >= 1, "the widget's output shows no <img> after the move"
    assert _png_differs(seen["before"], seen["after"]), (
        f"the figure did not change when the slider went {seen['before_value']} -> {seen['after_value']}"
    )


def _live_figure_cell() -> nbformat.NotebookNode:
    return new_code_cell(
        "import matplotlib.pyplot as plt\n"
        "from lecturelib import controls\n\n"
        "def draw(height):\n"
        "    fig, ax = plt.subplots(figsize=(3, 2))\n"
        "    ax.bar([0], [height], color='black')\n"
        "    ax.set_ylim(0, 10)\n"
        "    return fig\n\n"
        "controls.LiveFigure(draw, height=controls.choice_slider('height', [1, 3, 5, 7, 9], value=1))"
    )


def _write_fixture(path: str, cells: list) -> None:
    nb = new_notebook(
        cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    )
    (REPO / path).parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, REPO / path)


@pytest.mark.skipif(not (REPO / COURSE_NOTEBOOK).exists(), reason=f"{COURSE_NOTEBOOK} is not in this checkout")
def test_course_notebook_slider_changes_the_figure_in_jupyterlab(lab, browser):
    """...and again in deck mode, once the deck has stepped to the slider's slide (presenting live)."""
    committed = (REPO / COURSE_NOTEBOOK).read_bytes()
    seen = run_and_move_slider(browser, lab, COURSE_NOTEBOOK, "01_linear_autoencoder_pca", present=True)
    _check_moved(seen)
    _check_moved(seen["deck"])
    assert (REPO / COURSE_NOTEBOOK).read_bytes() == committed, "the browser run must not save into the notebook"


def test_live_figure_slider_changes_the_figure_in_jupyterlab(lab, browser):
    """The same on a one-cell LiveFigure notebook, so the widget machinery is proven whatever the course holds."""
    _write_fixture(FIXTURE_NOTEBOOK, [new_markdown_cell("# A LiveFigure"), _live_figure_cell()])
    seen = run_and_move_slider(browser, lab, FIXTURE_NOTEBOOK, "fixture_live_figure")
    _check_moved(seen)
    assert seen["after_value"] == "3"


# --- presenting live: jupyterlab-slideshow's deck mode ----------------------------------------------------------
_ON_SCREEN = f"{_PANEL} .jp-Cell.jp-deck-mod-onscreen"


def _on_screen(page) -> list[int]:
    """The indices of the cells the deck shows now."""
    return page.evaluate(
        f"() => [...document.querySelectorAll('{_PANEL} .jp-Notebook .jp-Cell')]"
        ".flatMap((c, i) => c.classList.contains('jp-deck-mod-onscreen') ? [i] : [])"
    )


def _start_deck(page, stem: str) -> None:
    """Start deck mode on the first slide: select the first cell, then the deck button of the notebook's toolbar."""
    page.locator(f"{_PANEL} .jp-Cell").first.locator(".jp-InputPrompt").first.click()
    page.keyboard.press("Escape")  # command mode: the deck's keys act on the notebook
    button = page.locator(f'{_PANEL} .jp-Toolbar [data-jp-item-name="deck"]').first
    assert button.count(), "no deck button in the notebook's toolbar: is jupyterlab-slideshow installed?"
    button.click()
    page.wait_for_function("() => document.body.dataset.jpDeckMode === 'presenting'", timeout=20_000)
    page.wait_for_function(f"() => document.querySelector('{_ON_SCREEN}')", timeout=20_000)
    page.screenshot(path=str(SHOTS / f"{stem}-start.png"))
    assert _on_screen(page) == [0], f"the deck should open on the first slide, shows cells {_on_screen(page)}"


def _present_to_first_slider(page, stem: str) -> dict:
    """Start the deck, step through it with Space (next fragment, subslide or slide) to the first slide with a
    slider, and move that slider."""
    _start_deck(page, stem)
    for _ in range(page.locator(f"{_PANEL} .jp-Cell").count()):
        if page.locator(f"{_ON_SCREEN} .widget-slider").count():
            break
        page.keyboard.press("Space")
        page.wait_for_timeout(300)
    else:
        raise AssertionError(f"no slide with a slider in the deck (last shown: cells {_on_screen(page)})")
    shown = _on_screen(page)
    seen = _move_first_slider(page, stem, scope=_ON_SCREEN)
    assert _on_screen(page) == shown, "moving the slider with the arrow keys must not turn the slide"
    return seen


def _leave_deck_mode(lab) -> None:
    """Deck mode is a lab setting that outlives the page: turn it off for the next tests."""
    settings = lab[2] / DECK_SETTINGS
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text('{"active": false}')


def test_live_slide_slider_changes_the_figure_in_deck_mode(lab, browser):
    """Deck mode shows one slide at a time (→ moves on) and the widget on a slide stays live: its slider redraws."""
    slide = {"slideshow": {"slide_type": "slide"}}
    cells = [
        new_markdown_cell("# Presenting live\n\nThe bar's height is $h$.", metadata=slide),
        _live_figure_cell(),
        new_markdown_cell("## The end", metadata=slide),
    ]
    cells[1].metadata.update(slide)
    _write_fixture(DECK_NOTEBOOK, cells)
    written = (REPO / DECK_NOTEBOOK).read_bytes()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        _open_and_run_all(page, lab, DECK_NOTEBOOK, "deck", timeout_s=180)
        _start_deck(page, "deck")
        page.keyboard.press("ArrowRight")
        page.wait_for_function(f"() => document.querySelector('{_ON_SCREEN} .widget-slider')", timeout=20_000)
        assert _on_screen(page) == [1], f"→ should show the widget's slide, shows cells {_on_screen(page)}"
        seen = _move_first_slider(page, "deck-live-figure", scope=_ON_SCREEN)
        _check_moved(seen)
        assert seen["after_value"] == "3"
        assert _on_screen(page) == [1], "moving the slider with → must not turn the slide"
    finally:
        page.close()
        _leave_deck_mode(lab)
    assert (REPO / DECK_NOTEBOOK).read_bytes() == written, "presenting must not save into the notebook"


# --- offline decks: reveal.js and MathJax from the build folder, every outside request blocked -------------------
@pytest.fixture(scope="module")
def offline_build(tmp_path_factory):
    """A build folder with every course notebook's deck, and the first one's HTML page (unexecuted: the markdown
    holds all the maths)."""
    out = tmp_path_factory.mktemp("build")
    for path in COURSE:
        nb = nbformat.read(path, as_version=4)
        render.export_slides(nb, out / f"{path.stem}.slides.html")
        if path == COURSE[0]:
            render.export_html(nb, out / f"{path.stem}.html")
    return out


@pytest.fixture(scope="module")
def http_server(offline_build):
    """`python -m http.server` over the build folder, on localhost: its base URL."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(offline_build))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _offline_page(browser):
    """A page whose every request outside file:, data:, blob: and localhost is aborted (and recorded)."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    seen = {"blocked": [], "failed": [], "errors": []}

    def guard(route):
        url = urlparse(route.request.url)
        if url.scheme in ("file", "data", "blob") or url.hostname in ("localhost", "127.0.0.1", "::1"):
            route.continue_()
        else:
            seen["blocked"].append(route.request.url)
            route.abort()

    context.route("**/*", guard)
    page = context.new_page()
    page.on("requestfailed", lambda request: seen["failed"].append(request.url))
    page.on("pageerror", lambda error: seen["errors"].append(str(error)))
    page.on("console", lambda message: seen["errors"].append(message.text) if message.type == "error" else None)
    return context, page, seen


def _wait(page, name: str, seen: dict, what: str, function: str) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(function, timeout=20_000)
    except PlaywrightTimeout:
        raise AssertionError(
            f"{name}: {what} never started; blocked: {seen['blocked']}, failed requests: "
            f"{seen['failed']}, page errors: {seen['errors'][:3]}"
        ) from None


def _check_typeset(page, name: str, seen: dict) -> None:
    """MathJax 3 has typeset the page: formulas are MathJax elements, no TeX error, no raw TeX left in the text."""
    _wait(page, name, seen, "MathJax", "() => window.MathJax && MathJax.startup && MathJax.startup.promise")
    page.evaluate("() => MathJax.startup.promise")
    formulas = page.locator("mjx-container").count()
    assert formulas > 0, f"{name}: no formula typeset (no <mjx-container>)"
    errors = page.locator('[data-mjx-error], [data-mml-node="merror"]')
    assert errors.count() == 0, f"{name}: TeX errors: {errors.first.get_attribute('data-mjx-error')}"
    text = page.evaluate(
        "() => [...document.querySelectorAll('.jp-MarkdownCell .jp-RenderedMarkdown')]"
        ".map(e => e.textContent).join('\\n')"
    )
    raw = re.findall(r".{0,30}(?:\$|\\[A-Za-z]+).{0,30}", text)
    assert not raw, f"{name}: raw TeX left in the text ({formulas} formulas typeset): {raw[:5]}"


def _present_index(page) -> int:
    return page.evaluate(
        "() => [...document.querySelectorAll('.reveal .slides > section')]"
        ".indexOf(document.querySelector('.reveal .slides > section.present'))"
    )


def _check_deck(page, name: str, seen: dict) -> None:
    _wait(page, name, seen, "reveal.js", "() => document.querySelector('.reveal.ready')")  # loaded by require.js
    _check_typeset(page, name, seen)
    slides = page.locator(".reveal .slides > section").count()
    assert slides >= 2 and _present_index(page) == 0, f"{name}: {slides} slides, on slide {_present_index(page)}"
    page.screenshot(path=str(SHOTS / f"offline-{name}-1.png"))
    page.keyboard.press("ArrowRight")
    page.wait_for_function("() => location.hash.startsWith('#/1')", timeout=10_000)
    assert _present_index(page) == 1, f"{name}: → did not move to the next slide"
    page.wait_for_timeout(800)  # the transition
    page.screenshot(path=str(SHOTS / f"offline-{name}-2.png"))


def _check_offline(seen: dict, name: str) -> None:
    assert not seen["blocked"], f"{name} tried the network: {seen['blocked']}"
    assert not seen["failed"], f"{name}: requests failed: {seen['failed']}"
    assert not seen["errors"], f"{name}: errors in the page: {seen['errors'][:5]}"


@pytest.mark.parametrize("path", COURSE, ids=[p.stem for p in COURSE])
def test_offline_deck_opened_from_disk_moves_and_typesets(browser, offline_build, path):
    SHOTS.mkdir(parents=True, exist_ok=True)
    context, page, seen = _offline_page(browser)
    try:
        page.goto((offline_build / f"{path.stem}.slides.html").as_uri())
        _check_deck(page, path.stem[:2], seen)
    finally:
        context.close()
    _check_offline(seen, f"{path.stem}.slides.html")


def test_offline_deck_and_page_served_by_http_server(browser, http_server):
    SHOTS.mkdir(parents=True, exist_ok=True)
    stem = COURSE[0].stem
    context, page, seen = _offline_page(browser)
    try:
        page.goto(f"{http_server}/{stem}.slides.html")
        _check_deck(page, "http", seen)
        page.goto(f"{http_server}/{stem}.html")
        _check_typeset(page, f"{stem}.html", seen)
        page.screenshot(path=str(SHOTS / "offline-http-page.png"))
    finally:
        context.close()
    _check_offline(seen, f"{stem} over http")
