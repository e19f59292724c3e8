"""The course where people see it, in Debian's headless Chromium driven by playwright-python (the system browser;
nothing is downloaded). Screenshots go to build/browser/. Skipped where /usr/bin/chromium is absent; CI installs it.

- Live widgets: `jupyter lab` on localhost with a random token runs a fixture notebook; the first slider is moved with
  the keyboard and the screenshots show that the figure under it changed. The same in jupyterlab-slideshow's deck
  mode (the presenting route): → moves to the slide with the widget, and its slider still redraws the figure.
- Every control of every course notebook: one lab server for the module; each notebook (its presenter copy in
  build/browser/notebooks/, made as `make present` makes it: course.student.presenter_edition; autosave off) runs
  all its cells in fast mode (LECTURELIB_FAST=1 in the kernel's environment; models cached where
  LECTURELIB_CHECKPOINTS, else checkpoints/, says) at 1280×720 with the file browser open. Every LiveFigure's sliders
  (arrow keys), menus (another entry) and toggle buttons (another button) are found in the rendered outputs and
  moved; the figure under them must change and show no traceback. A control greyed out by `enable_when` must not
  move, then is enabled through the control it depends on and moved. A fixture notebook proves that a control that
  raises or does nothing fails the check.
- The student's run: that Run All is the student edition's code (the presenter copy adds only markdown notes), so
  what its cells printed is read as an executed notebook is (course.render.judge): fast mode, every claim holds,
  every exercise and question "not done".
- Every slide of every notebook, live: the same run is then presented in deck mode and stepped with Space from the
  first slide to the last: every cell that is not `skip` or `notes` is shown on some slide, every slide is at most
  720 px tall with no code, maths or output wider than its box (tests/deck_measure.py's rules), every LiveFigure is
  reached on its slide and moved there, and no slide shows a solution marker or a line of the instructor's solutions.
  Screenshots and a report.json (each move, each figure's width, each slide measured) in build/browser/<notebook>/.
  A slide is shot when its measurement finds a problem; BROWSER_SHOTS=all shoots every slide, live and static.
- Every slide of every notebook, static: the deck `render --slides` writes, from the test session's one fast render of
  the course (tests/course_build.py, build/ci/; screenshots in build/browser/static/), opened offline at 1280×720 and
  measured slide by slide (tests/deck_measure.py): every slide and subslide at most 720 px tall, nothing too wide, no
  solution and no frozen "0%|" progress bar.
- Offline decks: the same decks opened from disk, and a deck and an HTML page served by `python -m http.server`,
  with every request outside localhost/file blocked: → moves on, every formula is typeset by MathJax (no raw `$` or
  `\\mathbf` left, no TeX error), nothing was fetched from outside.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import course_build
import deck_measure
import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from course import render, student

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
SHOTS = REPO / "build" / "browser"
EVERY_SLIDE_SHOT = os.environ.get("BROWSER_SHOTS") == "all"  # else only the slides with a problem are shot
FIXTURE_NOTEBOOK = "build/browser/fixture_live_figure.ipynb"
DECK_NOTEBOOK = "build/browser/present/fixture_deck.ipynb"  # presented from a copy in build/, as the README says
COURSE = sorted((REPO / "notebooks").glob("*.ipynb"))
COPIES = REPO / "build" / "browser" / "notebooks"  # the lab opens copies of the course notebooks, never the files
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


LAB_START_S = 180  # a busy machine starts JupyterLab in well over a minute


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def lab_server(home: Path):
    """A JupyterLab server over the repository, its settings and runtime files in `home`: (base URL, token, settings
    folder). Stopped at the end, whatever happened."""
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
        command.append("--allow-root")  # CI containers run as root (and `make present` adds it there too)
    log = open(home / "lab.log", "w")
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + LAB_START_S
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
                    raise RuntimeError(f"jupyter lab did not answer within {LAB_START_S} s") from None
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
def lab(tmp_path_factory):
    """A JupyterLab server over the repository (lab_server), for the module."""
    with lab_server(tmp_path_factory.mktemp("lab")) as server:
        yield server


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
# Outputs under `root` that hold a traceback: a cell's, or a LiveFigure's (its Output widget shows the draw's error).
_TRACEBACKS = "root => [...root.querySelectorAll('.jp-OutputArea-output')].filter(e => /Traceback/.test(e.textContent))"
# What the cells printed (their stdout outputs, in order; a LiveFigure's Output widget is not a cell's output), as
# lines: what course.render reads from an executed notebook (course.render.judge).
_PRINTED = """panel => [...panel.querySelectorAll(
  '.jp-Notebook .jp-Cell .jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stdout"]')]
  .filter(e => !e.closest('.jupyter-widgets')).flatMap(e => e.textContent.split('\\n'))"""


IDLE_S = 3
_IDLE_FOR = """ms => {
  const idle = [...document.querySelectorAll('.jp-StatusBar-Widget')].some(e => /\\|\\s*Idle/.test(e.textContent));
  if (!idle) { window.__idleSince = null; return false; }
  window.__idleSince = window.__idleSince || Date.now();
  return Date.now() - window.__idleSince >= ms;
}"""


def _dismiss_kernel_dialog(page) -> None:
    """Answer "Select Kernel" with the notebook's own kernel (python3), if JupyterLab asks."""
    select = page.locator('.jp-Dialog button:has-text("Select")')
    if select.count():
        select.first.click()


def _open_and_run_all(page, lab, notebook: str, stem: str, timeout_s: float, shot: Path | None = None) -> None:
    """Open `notebook` in a workspace of its own and run all its cells; fail on a cell's traceback (at once: Run All
    stops at a failing cell). The whole page is kept in `shot` (default build/browser/<stem>-ran.png)."""
    shot = shot or SHOTS / f"{stem}-ran.png"
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
                page.screenshot(path=str(shot), full_page=True)
                raise
    # Every code cell numbered ([1], [2], ...): the whole notebook ran; or a traceback and nothing running: it stopped.
    failed = f"({_TRACEBACKS})(document).length && !p.some(e => /\\[\\*\\]/.test(e.textContent))"
    try:
        page.wait_for_function(
            f"() => {{ const p = {_PROMPTS}; return p.length > 0 && "
            f"(p.every(e => /\\[\\d+\\]/.test(e.textContent)) || {failed}); }}",
            timeout=timeout_s * 1000,
            polling=500,
        )
        # A collapsed input (jupyter.source_hidden) has no prompt in the page: its cell may still be queued. The run
        # is over when the kernel has also stayed idle for IDLE_S (it is idle for an instant between queued cells).
        page.wait_for_function(_IDLE_FOR, arg=IDLE_S * 1000, timeout=timeout_s * 1000, polling=250)
    finally:
        page.screenshot(path=str(shot), full_page=True)
    errors = page.locator(_PANEL).first.evaluate(
        f"panel => ({_TRACEBACKS})(panel).map(e => "
        "`cell ${[...panel.querySelectorAll('.jp-Notebook .jp-Cell')].indexOf(e.closest('.jp-Cell'))}: "
        "${e.textContent.slice(-1500)}`)"
    )
    assert not errors, f"a cell failed in the browser, {errors[0]}"


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


def run_and_move_slider(browser, lab, notebook: str, stem: str, timeout_s: float = 300) -> dict:
    """Open `notebook` in JupyterLab, run all cells, move the first slider; return what was seen. `timeout_s` bounds
    the whole run."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        _open_and_run_all(page, lab, notebook, stem, timeout_s)
        return _move_first_slider(page, stem)
    finally:
        page.close()
        _shut_down_kernel(lab, notebook)


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


def test_live_figure_slider_changes_the_figure_in_jupyterlab(lab, browser):
    """The same on a one-cell LiveFigure notebook, so the widget machinery is proven whatever the course holds."""
    _write_fixture(FIXTURE_NOTEBOOK, [new_markdown_cell("# A LiveFigure"), _live_figure_cell()])
    seen = run_and_move_slider(browser, lab, FIXTURE_NOTEBOOK, "fixture_live_figure")
    _check_moved(seen)
    assert seen["after_value"] == "3"


# --- every control of every course notebook, and the figures' widths with the file browser open -----------------
# The lecture hall's screen: 1280×720 with JupyterLab's file browser open beside the notebook.
HALL = {"width": 1280, "height": 720}
# Fast mode runs a notebook in well under a minute on a quiet machine; CI boxes are not quiet (a crowded machine may
# ask for more: BROWSER_RUN_ALL_S).
RUN_ALL_S = float(os.environ.get("BROWSER_RUN_ALL_S", 600))
REDRAW_S = 120  # one redraw (04 fits a new mixture when k moves); only a control that fails waits this long
SHRUNK = 0.9  # a figure shown narrower than this fraction of its natural width is shrunk past reading
_DRIVEN: dict[str, dict] = {}  # notebook stem -> what `_drive_every_control` saw, shared by the tests below

# Tags every LiveFigure of the notebook on show (a VBox of a row of controls over an Output widget: the structure
# lecturelib.controls.LiveFigure builds) with data-live-figure="i", and each of its controls with data-control="j";
# returns the figures' cells and controls, and the controls found outside any LiveFigure.
_TAG_LIVE_FIGURES = """panel => {
  const cells = [...panel.querySelectorAll('.jp-Notebook .jp-Cell')];
  const child = (e, name) => [...e.children].find(c => c.classList.contains(name));
  const figures = [...panel.querySelectorAll('.widget-vbox')]
    .filter(v => child(v, 'widget-hbox') && child(v, 'widget-output'));
  const found = figures.map((figure, i) => {
    figure.dataset.liveFigure = i;
    const controls = [...child(figure, 'widget-hbox').children];
    controls.forEach((c, j) => { c.dataset.control = j; });
    return {figure: i, cell: cells.indexOf(figure.closest('.jp-Cell')), controls: controls.length};
  });
  const stray = [...panel.querySelectorAll(
    '.widget-slider, .widget-dropdown, .widget-toggle-buttons, .widget-checkbox, .widget-text, .jupyter-button')]
    .filter(e => !e.closest('[data-live-figure]'))
    .map(e => `cell ${cells.indexOf(e.closest('.jp-Cell'))}: ${e.className} ${e.textContent.trim().slice(0, 40)}`);
  return {figures: found, stray};
}"""

# What a control shows: its kind, label, value, options, whether it is disabled.
_CONTROL_STATE = """el => {
  const label = (el.querySelector('.widget-label') || {textContent: ''}).textContent.trim();
  if (el.classList.contains('widget-slider')) {
    const handle = el.querySelector('.noUi-handle');
    return {kind: 'slider', label, value: el.querySelector('.widget-readout').textContent.trim(), options: [],
            disabled: el.querySelector('.noUi-target').hasAttribute('disabled'),
            at_max: Number(handle.getAttribute('aria-valuenow')) >= Number(handle.getAttribute('aria-valuemax'))};
  }
  if (el.classList.contains('widget-dropdown')) {
    const select = el.querySelector('select');
    return {kind: 'menu', label, value: select.value, options: [...select.options].map(o => o.value),
            disabled: select.disabled, at_max: false};
  }
  if (el.classList.contains('widget-toggle-buttons')) {
    const buttons = [...el.querySelectorAll('button')];
    const active = buttons.find(b => b.classList.contains('mod-active'));
    return {kind: 'buttons', label, value: active ? active.textContent.trim() : null,
            options: buttons.map(b => b.textContent.trim()), disabled: buttons.every(b => b.disabled), at_max: false};
  }
  return {kind: 'unknown', label, value: el.className, options: [], disabled: false, at_max: false};
}"""

# What the figure under the controls shows: a fingerprint of its image (the PNG's data URL) and any traceback.
_FIGURE_STATE = f"""figure => {{
  const output = [...figure.children].find(c => c.classList.contains('widget-output'));
  const img = output.querySelector('img');
  let hash = 0;
  const src = img ? img.src : '';
  for (let i = 0; i < src.length; i++) hash = (hash * 31 + src.charCodeAt(i)) | 0;
  const errors = ({_TRACEBACKS})(output).map(e => e.textContent);
  return {{image: img ? `${{src.length}}:${{hash}}` : null, error: errors.length ? errors.join('\\n') : null}};
}}"""

# Every image in the notebook's outputs, its cell scrolled into view: natural width (the PNG's own, or the width
# its metadata asks for) and the width shown.
_FIGURE_WIDTHS = """panel => {
  const cells = [...panel.querySelectorAll('.jp-Notebook .jp-Cell')];
  return [...panel.querySelectorAll('.jp-Cell .jp-OutputArea img')].map(img => {
    img.scrollIntoView({block: 'center'});
    const natural = img.hasAttribute('width') ? Number(img.getAttribute('width')) : img.naturalWidth;
    return {cell: cells.indexOf(img.closest('.jp-Cell')), natural, shown: img.getBoundingClientRect().width,
            live: !!img.closest('[data-live-figure]')};
  });
}"""


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")[:24] or "control"


def _figure_state(figure) -> dict:
    return figure.evaluate(_FIGURE_STATE)


def _wait_for_redraw(page, figure, before: dict, timeout_s: float) -> dict:
    """Wait until the figure's image differs from `before` or a traceback shows; return the last state seen."""
    state, deadline = _figure_state(figure), time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if state["error"] or (state["image"] and state["image"] != before["image"]):
            break
        page.wait_for_timeout(250)
        state = _figure_state(figure)
    return state


def _next_option(state: dict) -> str:
    """The option after the current one, round the list: repeated moves visit every option."""
    options = state["options"]
    return options[(options.index(state["value"]) + 1) % len(options)]


def _operate(page, control, state: dict) -> str:
    """Move a control through the UI, the way a presenter would: a slider one step with the arrow keys (← at its
    maximum), a menu to another entry, a toggle button to another option. Returns what was done."""
    if state["kind"] == "slider":
        key = "ArrowLeft" if state["at_max"] else "ArrowRight"
        control.locator(".noUi-handle").first.focus()
        page.keyboard.press(key)
        return key
    if state["kind"] == "menu":
        other = _next_option(state)
        control.locator("select").first.select_option(value=other)
        return f"select {other!r}"
    if state["kind"] == "buttons":
        other = _next_option(state)
        control.locator("button").nth(state["options"].index(other)).click()
        return f"click {other!r}"
    raise AssertionError(f"a control the test cannot drive: {state}")


def _move_and_watch(page, figure, control, shots: Path, name: str, timeout_s: float) -> dict:
    """Move one control, wait for the figure to redraw; screenshots of the figure before and after."""
    output = figure.locator(":scope > .widget-output")
    control.scroll_into_view_if_needed()
    state, before = control.evaluate(_CONTROL_STATE), _figure_state(figure)
    output.screenshot(path=str(shots / f"{name}-before.png"))
    action = _operate(page, control, state)
    after = _wait_for_redraw(page, figure, before, timeout_s)
    output.screenshot(path=str(shots / f"{name}-after.png"))
    moved = control.evaluate(_CONTROL_STATE)
    return {
        "label": state["label"],
        "kind": state["kind"],
        "action": action,
        "value": [state["value"], moved["value"]],
        "changed": bool(after["image"] and after["image"] != before["image"]),
        "error": after["error"],
    }


def _check_stays_disabled(page, figure, control, state: dict) -> bool:
    """A disabled control must not move: press its key (or pick another entry) and see value and figure stay."""
    before = _figure_state(figure)
    if state["kind"] == "slider":
        control.locator(".noUi-handle").first.focus()
        page.keyboard.press("ArrowLeft" if state["at_max"] else "ArrowRight")
    elif state["kind"] == "buttons":
        other = state["options"].index(_next_option(state))
        control.locator("button").nth(other).click(force=True, timeout=5_000)
    else:
        assert control.locator("select").first.is_disabled()
    page.wait_for_timeout(1_000)
    return control.evaluate(_CONTROL_STATE)["value"] == state["value"] and _figure_state(figure) == before


def _enable(page, figure, controls: list, target, shots: Path, name: str, timeout_s: float) -> list[dict]:
    """Enable a disabled control by trying the other options of the figure's menus and buttons, as a presenter
    would (04: k, the mixture's number of components, is live only while q is the mixture). Returns the moves."""
    moves = []
    for other in controls:
        state = other.evaluate(_CONTROL_STATE)
        if other is target or state["disabled"] or state["kind"] not in ("menu", "buttons"):
            continue
        for _ in state["options"][1:]:
            moves.append(_move_and_watch(page, figure, other, shots, f"{name}-enable{len(moves)}", timeout_s))
            if not target.evaluate(_CONTROL_STATE)["disabled"]:
                return moves
    return moves


def _drive_every_control(page, panel, figures: list[dict], shots: Path, timeout_s: float = REDRAW_S) -> list[dict]:
    """Move every control of every LiveFigure (as tagged by _TAG_LIVE_FIGURES) once; one record per move."""
    moves = []
    for found in figures:
        figure = panel.locator(f'[data-live-figure="{found["figure"]}"]')
        controls = [figure.locator(f'[data-control="{j}"]') for j in range(found["controls"])]
        where = {"figure": found["figure"], "cell": found["cell"]}
        for j, control in enumerate(controls):
            state = control.evaluate(_CONTROL_STATE)
            name = f"cell{found['cell']:02d}-{j}-{_slug(state['label'])}"
            if state["disabled"]:
                stays = _check_stays_disabled(page, figure, control, state)
                enabling = _enable(page, figure, controls, control, shots, name, timeout_s)
                moves += [{**where, **move, "enables": state["label"]} for move in enabling]
                if not stays or control.evaluate(_CONTROL_STATE)["disabled"]:
                    error = "it moved while disabled" if not stays else "no other control of its figure enables it"
                    value = [state["value"], control.evaluate(_CONTROL_STATE)["value"]]
                    moves.append(
                        {**where, **state, "action": "enable", "value": value, "changed": False, "error": error}
                    )
                    continue
            moves.append({**where, **_move_and_watch(page, figure, control, shots, name, timeout_s)})
    return moves


def _shut_down_kernel(lab, notebook: str) -> None:
    """Shut the notebook's kernel down (its session), so that the next notebook has the CPU and memory to itself.
    Best effort: called in `finally` blocks, it must not hide the test's own error (the lab fixture's end stops every
    kernel anyway)."""
    base, token, _ = lab
    headers = {"Authorization": f"token {token}"}
    try:
        with urllib.request.urlopen(urllib.request.Request(f"{base}/api/sessions", headers=headers), timeout=30) as r:
            sessions = json.load(r)
        for session in sessions:
            if session.get("path") == notebook:
                url = f"{base}/api/sessions/{session['id']}"
                urllib.request.urlopen(
                    urllib.request.Request(url, method="DELETE", headers=headers), timeout=60
                ).close()
    except OSError as error:
        print(f"could not shut down the kernel of {notebook}: {error}")


def _show_file_browser(page) -> None:
    """Open the left sidebar's file browser, as a student has it, if it is not open already."""
    if not page.locator(".jp-FileBrowser").first.is_visible():
        page.locator('.jp-SideBar.jp-mod-left [data-id="filebrowser"]').first.click()
    page.locator(".jp-FileBrowser").first.wait_for(state="visible", timeout=10_000)


def presenter_copy(path: Path, folder: Path = COPIES, edition: bool = True) -> Path:
    """The copy of a course notebook that the lab opens, in `folder` (the lab never touches the committed file): made
    the way `make present` makes it, the presenter edition (solutions cleared, speaker notes kept) once
    course.student has one, else the notebook as committed (`edition=False`: always that)."""
    nb = nbformat.read(path, as_version=4)
    make = getattr(student, "presenter_edition", None) if edition else None
    if make is not None:
        nb = make(nb)
    copy = folder / path.name
    copy.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, copy)
    return copy


def _drive_notebook(browser, lab, path: Path, folder: Path = COPIES, edition: bool = True) -> dict:
    """Open the presenter copy of a course notebook (presenter_copy, in build/browser/notebooks/) at 1280×720 with the
    file browser open, run all its cells in fast mode, measure every figure's width, move every control of every
    LiveFigure; then present it in deck mode and walk the deck from the first slide to the last (_walk_deck: every
    slide measured, every LiveFigure moved again on its slide). Screenshots and a report.json in
    build/browser/<notebook>/. Done once per notebook for the tests below."""
    if path.stem in _DRIVEN:
        return _DRIVEN[path.stem]
    shots = SHOTS / path.stem
    shutil.rmtree(shots, ignore_errors=True)
    shots.mkdir(parents=True)
    copy = presenter_copy(path, folder, edition)
    written = copy.read_bytes()
    notebook = copy.relative_to(REPO).as_posix()
    seen = _DRIVEN[path.stem] = {
        "error": None,
        "printed": None,
        "figures": [],
        "stray": [],
        "widths": [],
        "moves": [],
        "deck": None,
    }
    started = time.monotonic()
    page = browser.new_page(viewport=HALL)
    try:
        _open_and_run_all(page, lab, notebook, f"drive-{path.stem}", RUN_ALL_S, shot=shots / "ran.png")
        seen["ran_s"] = round(time.monotonic() - started, 1)
        _show_file_browser(page)
        panel = page.locator(_PANEL).first
        seen["printed"] = panel.evaluate(_PRINTED)
        tagged = panel.evaluate(_TAG_LIVE_FIGURES)
        seen["figures"], seen["stray"] = tagged["figures"], tagged["stray"]
        seen["widths"] = panel.evaluate(_FIGURE_WIDTHS)
        page.screenshot(path=str(shots / "hall.png"))
        moves = _drive_every_control(page, panel, tagged["figures"], shots)
        seen["moves"] = [{"notebook": path.stem, **move} for move in moves]
        seen["controls_s"] = round(time.monotonic() - started - seen["ran_s"], 1)
        seen["deck"] = _walk_deck(page, panel, copy, shots / "deck")
        seen["deck_s"] = round(time.monotonic() - started - seen["ran_s"] - seen["controls_s"], 1)
    except Exception as error:  # reported by each test that needs this run
        seen["error"] = f"{type(error).__name__}: {error}"
        page.screenshot(path=str(shots / "failed.png"), full_page=True)
    finally:
        page.close()
        _shut_down_kernel(lab, notebook)
        _leave_deck_mode(lab)
        seen["total_s"] = round(time.monotonic() - started, 1)
        seen["saved"] = copy.read_bytes() != written or _has_outputs(path)
        (shots / "report.json").write_text(json.dumps(seen, indent=1, ensure_ascii=False))
    return seen


def _has_outputs(path: Path) -> bool:
    """Whether a notebook holds outputs or execution counts (the course's are committed without)."""
    nb = nbformat.read(path, as_version=4)
    return any(cell.get("outputs") or cell.get("execution_count") for cell in nb.cells if cell.cell_type == "code")


def _live_figure_calls(path: Path) -> int:
    """How many LiveFigures the notebook's code builds (uncommented `LiveFigure(` calls)."""
    nb = nbformat.read(path, as_version=4)
    lines = [line for cell in nb.cells if cell.cell_type == "code" for line in cell.source.splitlines()]
    return sum(len(re.findall(r"\bLiveFigure\(", line.split("#")[0])) for line in lines)


def _describe(move: dict) -> str:
    what = f"{move['notebook']} cell {move['cell']}, control {move['label']!r} ({move['kind']}, {move['action']}, "
    what += f"{move['value'][0]} -> {move['value'][1]})"
    if move["error"]:
        return f"{what}: {move['error'].strip()[-600:]}"
    return f"{what}: the figure did not change"


@pytest.mark.parametrize("path", COURSE, ids=[p.stem for p in COURSE])
def test_every_control_redraws_its_figure(lab, browser, path):
    """Every control of every LiveFigure moved through the UI redraws its figure, without a traceback; a disabled
    control does not move until the control it depends on enables it."""
    seen = _drive_notebook(browser, lab, path)
    assert not seen["saved"], f"JupyterLab saved {path.name} (or its copy): the course notebooks stay output-free"
    assert seen["error"] is None, f"{path.stem}: {seen['error']}"
    calls = _live_figure_calls(path)
    assert len(seen["figures"]) == calls, (
        f"{path.stem}: the code builds {calls} LiveFigures, the browser shows {len(seen['figures'])} live ones "
        "(a widget that did not render shows only its static image)"
    )
    assert not seen["stray"], f"{path.stem}: controls outside a LiveFigure, not driven: {seen['stray']}"
    failed = [m for m in seen["moves"] if m["error"] or not m["changed"]]
    assert not failed, "\n".join(map(_describe, failed))
    moved = {(m["figure"], m["label"]) for m in seen["moves"] if "enables" not in m}
    assert len(moved) == sum(f["controls"] for f in seen["figures"]), f"{path.stem}: not every control was moved"


def _exercise_numbers(path: Path) -> set[str]:
    """A notebook's exercises and questions as their verdict lines number them: "6.3" for grade ids "06-ex3-…"."""
    ids = (cell.metadata.get("nbgrader", {}).get("grade_id", "") for cell in nbformat.read(path, as_version=4).cells)
    return {f"{int(m[1])}.{m[2]}" for m in map(re.compile(r"^(\d\d)-(?:ex|q)(\d+)-").match, ids) if m}


@pytest.mark.parametrize("path", COURSE, ids=[p.stem for p in COURSE])
def test_student_code_runs_to_the_end_in_jupyterlab_with_every_exercise_not_done(lab, browser, path):
    """What students get, run the way they run it: Run All in JupyterLab with every exercise as handed out. The copy
    the lab runs is the presenter edition, whose code cells are the student edition's (tests/test_student_edition.py
    checks that). It runs to the end (each exercise goes on with the reference solution), in fast mode; every claim
    it prints holds, and every exercise and question reports "not done" (course.render.judge reads the lines the
    cells printed, as it reads an executed notebook)."""
    seen = _drive_notebook(browser, lab, path)
    assert seen["printed"] is not None, f"{path.stem} did not run to the end in JupyterLab: {seen['error']}"
    result = render.judge(path.name, seen["printed"], fast=True)
    assert result.mode == "fast", f"{path.stem}: no device line naming fast mode: {result.device!r}"
    assert result.claims, f"{path.stem} printed no claim"
    failed = [line for line in result.claims if line.startswith("✗")]
    assert not failed, f"{path.stem}: claims that failed on the student's code:\n" + "\n".join(failed)
    assert result.exercises == dict.fromkeys(sorted(_exercise_numbers(path)), "not done"), result.exercises


def _shrunk(seen: dict) -> list[dict]:
    return [w for w in seen["widths"] if w["shown"] < SHRUNK * w["natural"]]


# Figures shown below 90 % of their natural width, measured on 2026-11-26 on the committed notebooks (the output area
# is 848 px wide at 1280×720 with the file browser open; cell = index in the notebook's cells). Drop an entry once its
# notebook is fixed (an XPASS says so).
SHRUNK_NOW: dict[str, str] = {}  # 07's anomaly figure (83 % at 10 in) fits since it is 8 in wide: XPASS in CI


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(p, marks=pytest.mark.xfail(reason=SHRUNK_NOW[p.stem], strict=False)) if p.stem in SHRUNK_NOW else p
        for p in COURSE
    ],
    ids=[p.stem for p in COURSE],
)
def test_no_figure_is_shrunk_with_the_file_browser_open(lab, browser, path):
    """At 1280×720 with the file browser open, every figure is shown at ≥ 90 % of its natural width (JupyterLab
    scales an image down to the output area's width: a shrunk figure's text is smaller than the figure asked)."""
    seen = _drive_notebook(browser, lab, path)
    assert seen["error"] is None, f"{path.stem}: {seen['error']}"
    assert seen["widths"], f"{path.stem}: no figure found"
    shrunk = [f"cell {w['cell']}: {w['shown']:.0f} of {w['natural']} px" for w in _shrunk(seen)]
    assert not shrunk, f"{path.stem}: figures shrunk below {SHRUNK:.0%} with the file browser open: {shrunk}"


DRIVER_FIXTURE = "build/browser/fixture_driver.ipynb"


def test_the_driver_reports_a_control_that_raises_or_does_nothing(lab, browser):
    """The check above can fail: on a fixture notebook, a control whose redraw raises is reported with the
    LiveFigure's traceback, a control that changes nothing is reported as such, and a control greyed out by
    enable_when is found not to move, then enabled through the control it depends on and moved."""
    bar = (
        "import matplotlib.pyplot as plt\n"
        "from lecturelib import controls\n\n"
        "def bar(height, colour='black'):\n"
        "    fig, ax = plt.subplots(figsize=(3, 2))\n"
        "    ax.bar([0], [height], color=colour)\n"
        "    ax.set(ylim=(0, 10), title='a bar', ylabel='height')\n"
        "    return fig\n\n"
        "def breaks_at_3(n):\n"
        "    if n == 3:\n"
        "        raise ValueError('n = 3 breaks the figure')\n"
        "    return bar(n)\n\n"
        "controls.LiveFigure(breaks_at_3, n=controls.choice_slider('n', [1, 3, 5], value=1))"
    )
    greyed = (
        "q = controls.buttons('q', ['grey', 'black'], value='black')\n"
        "k = controls.slider('k (black only)', 1, 9, value=2)\n"
        "controls.enable_when(k, q, lambda q: q == 'black')\n"
        "unused = controls.menu('unused', ['a', 'b'])\n"
        "controls.LiveFigure(lambda q, k, unused: bar(k, q), q=q, k=k, unused=unused)"
    )
    _write_fixture(DRIVER_FIXTURE, [new_code_cell(bar), new_code_cell(greyed)])
    shots = SHOTS / "fixture_driver"
    shutil.rmtree(shots, ignore_errors=True)
    shots.mkdir(parents=True)
    page = browser.new_page(viewport=HALL)
    try:
        _open_and_run_all(page, lab, DRIVER_FIXTURE, "fixture_driver", 180, shot=shots / "ran.png")
        panel = page.locator(_PANEL).first
        tagged = panel.evaluate(_TAG_LIVE_FIGURES)
        assert [(f["cell"], f["controls"]) for f in tagged["figures"]] == [(0, 1), (1, 3)] and not tagged["stray"]
        moves = _drive_every_control(page, panel, tagged["figures"], shots, timeout_s=10)
    finally:
        page.close()
        _shut_down_kernel(lab, DRIVER_FIXTURE)
    seen = [(m["label"], m["value"], m["changed"], bool(m["error"]), m.get("enables")) for m in moves]
    assert seen == [
        ("n", ["1", "3"], False, True, None),  # its redraw raised
        ("q", ["black", "grey"], True, False, None),  # greys k out
        ("q", ["grey", "black"], True, False, "k (black only)"),  # k was found not to move, then enabled
        ("k (black only)", ["2", "3"], True, False, None),
        ("unused", ["a", "b"], False, False, None),  # draws the same figure
    ], seen
    assert "n = 3 breaks the figure" in moves[0]["error"]
    assert "did not change" in _describe({"notebook": "fixture", **moves[-1]})


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
    assert _on_screen(page)[:1] == [0], f"the deck should open on the first slide, shows cells {_on_screen(page)}"


def _leave_deck_mode(lab) -> None:
    """Deck mode is a lab setting that outlives the page: turn it off for the next tests."""
    settings = lab[2] / DECK_SETTINGS
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text('{"active": false}')


# --- every slide of every notebook, as the lecture hall sees it --------------------------------------------------
# What deck mode shows after each step (jupyterlab-slideshow 0.3.4: the cells of the current slide are
# .jp-deck-mod-onscreen, stacked from the top, those not yet reached, later fragments, at opacity 0; it does not scale
# a slide, a tall one scrolls with the active cell): the cells on screen and shown, the height from the top of the first
# to the bottom of the last, what is too wide (deck_measure.ELEMENT_JS, against the notebook's right edge), the
# heading, which shown cells have their input collapsed (jupyter.source_hidden), and the text of their markdown and
# outputs (code is read from the notebook: CodeMirror renders only the lines near the screen).
_DECK_STEP = (
    """panel => {
  const wide = """
    + deck_measure.ELEMENT_JS
    + """;
  const cells = [...panel.querySelectorAll('.jp-Notebook .jp-Cell')];
  const on = cells.filter(c => c.classList.contains('jp-deck-mod-onscreen'));
  const shown = on.filter(c => c.classList.contains('jp-deck-mod-visible'));
  const active = cells.findIndex(c => c.classList.contains('jp-mod-active'));
  const notebook = panel.querySelector('.jp-Notebook').getBoundingClientRect();
  const boxes = on.map(c => c.getBoundingClientRect());
  const heading = on.map(c => c.querySelector('.jp-MarkdownOutput :is(h1, h2, h3, h4, h5, h6)')).find(Boolean);
  return {
    active,
    on: on.map(c => cells.indexOf(c)),
    shown: shown.map(c => cells.indexOf(c)),
    collapsed: shown.filter(c => c.querySelector('.jp-InputPlaceholder')).map(c => cells.indexOf(c)),
    height: boxes.length ? Math.round(Math.max(...boxes.map(b => b.bottom)) - Math.min(...boxes.map(b => b.top))) : 0,
    heading: heading ? heading.textContent.replace(/¶$/, '').trim() : '',
    wide: on.flatMap(c => wide(c, notebook.left, notebook.right, 1)),
    text: shown.map(c => [...c.querySelectorAll('.jp-MarkdownOutput, .jp-OutputArea')].map(e => e.innerText)
      .join('\\n')).join('\\n'),
  };
}"""
)
_TWO_FRAMES = "() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))"
STEP_S = 5  # a step of the deck that moves nothing within this long is the last one


def solution_lines(path: Path) -> set[str]:
    """The instructor's solution lines of a notebook: each line between `### BEGIN SOLUTION` and `### END SOLUTION`
    (stripped; code and markdown cells) that occurs nowhere outside the solution regions."""
    inside, outside = set(), set()
    for cell in nbformat.read(path, as_version=4).cells:
        region = False
        for line in cell.source.splitlines():
            stripped = line.strip()
            if stripped in (student.SOLUTION_BEGIN, student.SOLUTION_END):
                region = stripped == student.SOLUTION_BEGIN
            elif stripped:
                (inside if region else outside).add(stripped)
    return inside - outside


def _shown_text(nb, state: dict) -> str:
    """What a deck step shows: the code of its shown code cells (the first line of a collapsed one: JupyterLab shows
    it in the placeholder), then the rendered markdown and outputs."""
    code = []
    for i in state["shown"]:
        cell = nb.cells[i]
        if cell.cell_type == "code":
            lines = cell.source.splitlines()
            code += lines[:1] if i in state["collapsed"] else lines
    return "\n".join(code) + "\n" + state["text"]


def solutions_on_screen(text: str, solutions: set[str]) -> list[str]:
    """The instructor's solution lines (solution_lines) in a slide's text: a line of it equal to a solution line, or a
    solution line of 16 characters or more anywhere in it."""
    lines = {line.strip() for line in text.splitlines()}
    return sorted(s for s in solutions if s in lines or (len(s) >= 16 and s in text))


def _where(slide: dict) -> str:
    index = slide.get("index") or f"{slide['number']} (cells {slide['on'][0]}–{slide['on'][-1]})"
    return f"slide {index} {(slide['heading'] or '(no heading)')[:50]!r}"


def _should_show(cell) -> bool:
    """Whether a cell belongs on a slide: anything but `skip` and `notes` (and empty cells)."""
    kind = cell.get("metadata", {}).get("slideshow", {}).get("slide_type")
    return kind not in ("skip", "notes") and bool(cell.source.strip() or cell.get("outputs"))


# Whether the deck's remote (its arrows, bottom right) offers a next step: → or ↓ not greyed out.
_CAN_GO_ON = """() => [...document.querySelectorAll('.jp-Deck-Remote button')].some(b =>
  /jp-deck-mod-direction-(forward|down)/.test(b.className) && !b.classList.contains('jp-mod-disabled'))"""


def _step(page, active: int) -> bool:
    """Press Space (next fragment, subslide or slide) and wait for the deck to move the active cell; False on the last
    slide (nothing moves and the remote offers neither → nor ↓). A step that a busy machine is slow to take is waited
    for (REDRAW_S); a deck that offers a next step and never takes it fails."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    moved = (
        f"a => [...document.querySelectorAll('{_PANEL} .jp-Notebook .jp-Cell')]"
        ".findIndex(c => c.classList.contains('jp-mod-active')) !== a"
    )
    page.keyboard.press("Space")
    try:
        page.wait_for_function(moved, arg=active, timeout=STEP_S * 1000)
        return True
    except PlaywrightTimeout:
        if not page.evaluate(_CAN_GO_ON):
            return False
    page.wait_for_function(moved, arg=active, timeout=REDRAW_S * 1000)  # raises if the deck is stuck
    return True


def _walk_deck(page, panel, copy: Path, shots: Path, drive: bool = True) -> dict:
    """Present the notebook on `page` (run already) in deck mode and step with Space from the first slide to the last.
    Each slide (a distinct set of cells on screen) is measured at every step on it (its tallest kept) and shot once;
    each LiveFigure (found in deck mode, _TAG_LIVE_FIGURES) is moved (_drive_every_control) at the first step that
    shows it (`drive=False`: not). Returns the slides, the cells ever shown, the LiveFigures, the moves and the steps
    taken."""
    shots.mkdir(parents=True, exist_ok=True)
    nb = nbformat.read(copy, as_version=4)
    slides: dict[tuple, dict] = {}
    shown, driven, moves, steps = set(), set(), [], 0
    expected = {i for i, cell in enumerate(nb.cells) if _should_show(cell)}  # the cells some slide must show
    _start_deck(page, f"{copy.stem}-deck")
    figures = panel.evaluate(_TAG_LIVE_FIGURES)["figures"] if drive else []
    while steps <= len(nb.cells) + 1:
        state = panel.evaluate(_DECK_STEP)
        steps += 1
        shown.update(state["shown"])
        slide = slides.setdefault(tuple(state["on"]), {**state, "number": len(slides), "text": ""})
        slide["height"] = max(slide["height"], state["height"])
        slide["wide"] += [w for w in state["wide"] if w not in slide["wide"]]
        slide["text"] += "\n" + _shown_text(nb, state)
        if "shot" not in slide and (EVERY_SLIDE_SHOT or deck_measure.problems({**slide, "text": ""})):
            slide["shot"] = f"{slide['number']:02d}.png"
            # the deck's fade (a 0.1 s CSS transition; the sizes do not fade) fast-forwarded to its end for the picture
            page.screenshot(path=str(shots / slide["shot"]), animations="disabled")
        here = [f for f in figures if f["cell"] in state["shown"] and f["figure"] not in driven]
        if here:
            driven.update(f["figure"] for f in here)
            moves += _drive_every_control(page, panel, here, shots)
            slide["height"] = max(slide["height"], panel.evaluate(_DECK_STEP)["height"])  # redrawn: measure again
            panel.evaluate("panel => panel.querySelector('.jp-Cell.jp-mod-active').focus()")  # the deck's keys
        if expected <= shown and not page.evaluate(_CAN_GO_ON):
            break  # the last slide: every cell has shown and the remote offers neither → nor ↓
        if not _step(page, state["active"]):
            break  # the last slide
        page.evaluate(_TWO_FRAMES)  # what the step changed is laid out and painted before it is measured
    return {
        "slides": [{k: v for k, v in slide.items()} for slide in slides.values()],
        "shown": sorted(shown),
        "missing": sorted(expected - shown),
        "figures": figures,
        "moves": moves,
        "steps": steps,
    }


def _deck_walked(browser, lab, path: Path) -> dict:
    seen = _drive_notebook(browser, lab, path)
    assert seen["error"] is None, f"{path.stem}: {seen['error']}"
    return seen["deck"]


def _cell_kinds(path: Path, cells: list[int]) -> str:
    nb = nbformat.read(path, as_version=4)
    kind = [c.get("metadata", {}).get("slideshow", {}).get("slide_type", "(none)") for c in nb.cells]
    return ", ".join(f"{i} ({kind[i]!r}: {nb.cells[i].source.strip()[:30]!r})" for i in cells)


@pytest.mark.parametrize("path", COURSE, ids=[p.stem for p in COURSE])
def test_live_deck_shows_every_cell_and_moves_every_widget_on_its_slide(lab, browser, path):
    """Presenting the notebook in deck mode (`make present`), Space from the first slide to the last shows every cell
    that is not `skip` or `notes`, and reaches every LiveFigure, whose every control redraws its figure there."""
    deck = _deck_walked(browser, lab, path)
    assert not deck["missing"], (
        f"{path.stem}: deck mode never shows cells {_cell_kinds(COPIES / path.name, deck['missing'])} "
        f"({len(deck['slides'])} slides, {deck['steps']} steps)"
    )
    calls = _live_figure_calls(path)
    assert len(deck["figures"]) == calls, (
        f"{path.stem}: the code builds {calls} LiveFigures, deck mode shows {len(deck['figures'])} live ones"
    )
    reached = {move["figure"] for move in deck["moves"]}
    unreached = [f["cell"] for f in deck["figures"] if f["figure"] not in reached]
    assert not unreached, f"{path.stem}: the LiveFigures of cells {unreached} are on no slide"
    failed = [{"notebook": path.stem, **m} for m in deck["moves"] if m["error"] or not m["changed"]]
    assert not failed, "in deck mode: " + "\n".join(map(_describe, failed))


@pytest.mark.parametrize("path", COURSE, ids=[p.stem for p in COURSE])
def test_live_deck_every_slide_fits_the_projector(lab, browser, path):
    """In deck mode at 1280×720, every slide's cells take at most 720 px from the top of the first to the bottom of
    the last (deck mode does not scale: a taller slide scrolls), and no code, maths or output is wider than its box."""
    deck = _deck_walked(browser, lab, path)
    bad = [
        f"{_where(slide)}: {'; '.join(trouble)}"
        for slide in deck["slides"]
        if (trouble := deck_measure.problems({**slide, "text": ""}))
    ]
    assert not bad, f"{path.stem}, {len(bad)} of {len(deck['slides'])} slides do not fit:\n" + "\n".join(bad)


@pytest.mark.parametrize("path", COURSE, ids=[p.stem for p in COURSE])
def test_live_deck_shows_no_solution(lab, browser, path):
    """No slide in deck mode shows a solution marker or a line of the instructor's solutions."""
    deck = _deck_walked(browser, lab, path)
    solutions = solution_lines(path)
    bad = []
    for slide in deck["slides"]:
        found = [m.group(0) for m in deck_measure.SOLUTION_MARK.finditer(slide["text"])]
        found += solutions_on_screen(slide["text"], solutions)
        if found:
            bad.append(f"{_where(slide)}: {sorted(set(found))[:6]}")
    assert not bad, f"{path.stem}: answers on the projector:\n" + "\n".join(bad)


WALK_FIXTURE = "build/browser/present/fixture_walk.ipynb"


def test_the_deck_walk_reports_what_does_not_fit_or_never_shows(lab, browser):
    """The live deck walk can fail: on a fixture notebook it moves the widget on its slide, and reports a cell marked
    "-" that deck mode never shows, a slide taller than 720 px, a code line wider than its box and a solution line;
    the two slides that do not fit are shot."""
    slide, sub = {"slideshow": {"slide_type": "slide"}}, {"slideshow": {"slide_type": "subslide"}}
    cells = [
        new_markdown_cell("# A deck\n\nThe bar's height is $h$.", metadata=slide),
        _live_figure_cell(),
        new_markdown_cell("## A tall slide", metadata=slide),
        new_code_cell("for i in range(60):\n    print(i)"),
        new_markdown_cell("## A wide line", metadata=sub),
        new_code_cell("wide = 1  # " + "x" * 200),
        new_markdown_cell("never shown", metadata={"slideshow": {"slide_type": "-"}}),
        new_code_cell(
            "def answer():\n    ### BEGIN SOLUTION\n    return 'forty-two'\n    ### END SOLUTION", metadata=slide
        ),
        new_markdown_cell("a speaker note", metadata={"slideshow": {"slide_type": "notes"}}),
    ]
    _write_fixture(WALK_FIXTURE, cells)
    path = REPO / WALK_FIXTURE
    shots = SHOTS / "fixture_walk"
    page = browser.new_page(viewport=HALL)
    try:
        _open_and_run_all(page, lab, WALK_FIXTURE, "fixture_walk", 180, shot=shots / "ran.png")
        deck = _walk_deck(page, page.locator(_PANEL).first, path, shots)
    finally:
        page.close()
        _shut_down_kernel(lab, WALK_FIXTURE)
        _leave_deck_mode(lab)
    assert deck["missing"] == [6], deck["missing"]
    assert [(m["cell"], m["changed"], m["error"]) for m in deck["moves"]] == [(1, True, None)], deck["moves"]
    by_cell = {slide["on"][0]: slide for slide in deck["slides"]}
    assert sorted(by_cell) == [0, 2, 4, 7], sorted(by_cell)
    assert not deck_measure.problems({**by_cell[0], "text": ""}), by_cell[0]
    assert by_cell[2]["height"] > 720 and any("px tall" in p for p in deck_measure.problems(by_cell[2]))
    assert [w["what"] for w in by_cell[4]["wide"]][:1] == ["code"], by_cell[4]["wide"]
    if not EVERY_SLIDE_SHOT:  # the slides with a problem are shot, the others not
        assert [cell for cell, slide in sorted(by_cell.items()) if "shot" in slide] == [2, 4]
        assert all((shots / by_cell[cell]["shot"]).is_file() for cell in (2, 4))
    assert solutions_on_screen(by_cell[7]["text"], solution_lines(path)) == ["return 'forty-two'"]
    assert "a speaker note" not in "".join(slide["text"] for slide in deck["slides"])


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
        _shut_down_kernel(lab, DECK_NOTEBOOK)
        _leave_deck_mode(lab)
    assert (REPO / DECK_NOTEBOOK).read_bytes() == written, "presenting must not save into the notebook"


# --- offline decks: reveal.js and MathJax from the build folder, every outside request blocked -------------------
STATIC_BUILD = SHOTS / "static"  # build/browser/static/<notebook>: the static decks' screenshots
_OPENED: dict[str, dict] = {}  # notebook stem -> its static deck as opened once: checked offline, then measured


def _rendered(path: Path) -> Path:
    """The build folder of the test session's shared fast render (tests/course_build.py: `python -m course render
    --fast --slides`, each notebook executed once per session), once it holds this notebook."""
    row = course_build.result(path)
    assert not row["error"], f"{path.name} did not render: {row['error']}"
    return course_build.BUILD


def _opened_deck(browser, path: Path) -> dict:
    """The rendered deck of a notebook opened from disk at 1280×720, every request outside file:, data: and blob:
    blocked (deck_measure.open_deck), once per notebook for the tests below: first used as the lecture hall uses it
    (_check_deck: typeset, → moves on; its failure kept in "offline"), then measured slide by slide (deck_measure;
    shots in build/browser/static/<notebook>/). Failed requests and page errors are kept in "seen"."""
    if path.stem not in _OPENED:
        deck = _rendered(path) / f"{path.stem}.slides.html"
        shots = STATIC_BUILD / path.stem
        shots.mkdir(parents=True, exist_ok=True)
        SHOTS.mkdir(parents=True, exist_ok=True)
        seen = {"blocked": [], "failed": [], "errors": []}
        context, page, seen["blocked"] = deck_measure.open_deck(browser, deck, seen)
        opened = {"seen": seen, "offline": None}
        try:
            try:
                _check_deck(page, path.stem[:2], seen)
            except Exception as error:  # noqa: BLE001 - reported by the offline test, not by the first caller
                opened["offline"] = f"{type(error).__name__}: {error}"
            opened["slides"] = deck_measure.measure_deck(page, shots, every=EVERY_SLIDE_SHOT)
        finally:
            context.close()
        _OPENED[path.stem] = opened
    return _OPENED[path.stem]


def _static_deck(browser, path: Path) -> list[dict]:
    """The rendered deck of a notebook, measured slide by slide (_opened_deck); it must not have tried the network."""
    opened = _opened_deck(browser, path)
    blocked = opened["seen"]["blocked"]
    assert not blocked, f"{path.stem}.slides.html tried the network: {blocked[:3]}"
    return opened["slides"]


@pytest.mark.course_build
@pytest.mark.parametrize("path", COURSE, ids=[p.stem for p in COURSE])
def test_static_deck_every_slide_fits_the_projector(browser, path):
    """The deck `render --slides` writes (executed in fast mode), opened offline at 1280×720: every slide and subslide,
    all fragments shown, is at most 720 px tall and nothing is wider than its box or cut off at the right."""
    slides = _static_deck(browser, path)
    bad = [
        f"{_where(slide)}: {'; '.join(trouble)}"
        for slide in slides
        if (trouble := deck_measure.problems({**slide, "text": ""}))
    ]
    assert not bad, f"{path.stem}, {len(bad)} of {len(slides)} slides do not fit:\n" + "\n".join(bad)


@pytest.mark.course_build
@pytest.mark.parametrize("path", COURSE, ids=[p.stem for p in COURSE])
def test_static_deck_shows_no_solution_and_no_frozen_progress_bar(browser, path):
    """No slide of the rendered deck shows a solution marker, a line of the instructor's solutions, or a progress bar
    (a static export shows a tqdm bar as it was when the cell started: "0%|")."""
    slides = _static_deck(browser, path)
    solutions = solution_lines(path)
    bad = []
    for slide in slides:
        found = [p for p in deck_measure.problems(slide) if "on screen" in p]
        found += [f"solution line on screen: {line!r}" for line in solutions_on_screen(slide["text"], solutions)]
        if found:
            bad.append(f"{_where(slide)}: {'; '.join(found[:6])}")
    assert not bad, f"{path.stem}: on the projector:\n" + "\n".join(bad)


@pytest.mark.course_build
@pytest.mark.parametrize("path", COURSE, ids=[p.stem for p in COURSE])
def test_live_and_static_decks_show_the_same_slides(lab, browser, path):
    """The live deck (deck mode) and the static one (`render --slides`) are the same sequence: as many slides and
    subslides, under the same headings."""
    live = [slide["heading"] for slide in _deck_walked(browser, lab, path)["slides"]]
    static = [slide["heading"] for slide in _static_deck(browser, path)]
    assert live == static, f"{path.stem}: live deck {len(live)} slides, static deck {len(static)}:\n{live}\n{static}"


@pytest.fixture(scope="module")
def http_server():
    """`python -m http.server` over the rendered build folder (the first notebook's deck and page), on localhost: its
    base URL."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(_rendered(COURSE[0])))
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
    page.screenshot(path=str(SHOTS / f"offline-{name}-2.png"), animations="disabled")  # the transition at its end


def _check_offline(seen: dict, name: str) -> None:
    assert not seen["blocked"], f"{name} tried the network: {seen['blocked']}"
    assert not seen["failed"], f"{name}: requests failed: {seen['failed']}"
    assert not seen["errors"], f"{name}: errors in the page: {seen['errors'][:5]}"


@pytest.mark.course_build
@pytest.mark.parametrize("path", COURSE, ids=[p.stem for p in COURSE])
def test_offline_deck_opened_from_disk_moves_and_typesets(browser, path):
    """The deck `render --slides` writes, opened from disk with the network blocked (_opened_deck): reveal.js starts
    on the first slide, → moves on, MathJax typesets every formula, nothing fails and nothing is fetched."""
    opened = _opened_deck(browser, path)
    assert opened["offline"] is None, opened["offline"]
    _check_offline(opened["seen"], f"{path.stem}.slides.html")


@pytest.mark.course_build
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
