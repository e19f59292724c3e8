"""Measure reveal.js decks as the lecture hall sees them: every slide at 1280x720, offline, in Chromium.

    .venv/bin/python tests/deck_measure.py build/x/06_variational_autoencoders.slides.html [more decks ...]

opens each static deck (as `python -m course render --slides` writes it) from disk in /usr/bin/chromium at 1280x720
with every request outside the disk blocked, visits every slide (each horizontal slide and each vertical subslide,
all its fragments shown) and prints per slide: its index (h.v), heading, the height of its content in px, and each
code, maths or output element wider than its box (scrollWidth > clientWidth) or reaching past the slide's right
edge; also any solution marker or frozen progress bar on screen. Then a summary line per deck. Exit status 1 if any
slide is taller than 720 px, has something too wide, or shows a solution marker or a progress bar.

tests/test_browser.py imports the measuring functions (`SLIDE_JS`, `measure_deck`, `problems`, ...); the live deck in
JupyterLab is measured there with `ELEMENT_JS`'s rules on the cells deck mode shows.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from urllib.parse import urlparse

WIDTH, HEIGHT = 1280, 720  # the projector, and the slide (course/decks.py: DECK_WIDTH, DECK_HEIGHT)
VIEWPORT = {"width": WIDTH, "height": HEIGHT}
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking"]
# What must never be on screen: nbgrader's solution markers, and a tqdm bar frozen where its widget cannot run.
SOLUTION_MARK = re.compile(r"### (BEGIN|END) SOLUTION|### (BEGIN|END) HIDDEN TESTS")
PROGRESS_BAR = re.compile(r"\d+%\|.*\|\s*\d+/\d+")

# The elements that can be too wide for their box: shown code (<pre> in a static deck, CodeMirror's scroller in
# JupyterLab), text outputs, displayed and inline maths, tables, images, output areas, markdown.
# `(root, left, right, scale) => [...]`: each one with scrollWidth > clientWidth, or whose right edge is past `right`
# (the slide's or the notebook's, in screen px; `scale` turns screen px into slide px).
ELEMENT_JS = r"""(root, left, right, scale) => {
  const what = e => e.matches('mjx-container') ? 'maths'
    : e.matches('pre') ? (e.closest('.jp-OutputArea') ? 'output' : 'code') : e.matches('.cm-scroller') ? 'code'
    : e.matches('img') ? 'image' : e.matches('table') ? 'table'
    : e.matches('.jp-OutputArea-output') ? 'output area' : 'text';
  const text = e => (e.innerText || e.textContent || e.getAttribute('src') || '')
    .trim().replace(/\s+/g, ' ').slice(0, 60);
  const found = [];
  const boxes = 'pre, .cm-scroller, mjx-container, table, img, .jp-OutputArea-output, .jp-RenderedHTMLCommon';
  for (const e of root.querySelectorAll(boxes)) {
    if (e.closest('aside.notes')) continue;
    const box = e.getBoundingClientRect();
    if (!box.width && !box.height) continue;  // not laid out (display: none)
    const inner = e.matches('img') ? 0 : e.scrollWidth - e.clientWidth;
    const past = Math.round((box.right - right) / scale);
    if (inner > 1 || past > 1) {
      found.push({what: what(e), scroll: e.scrollWidth, client: e.clientWidth, past: Math.max(past, 0),
                  text: text(e)});
    }
  }
  // one report per problem: an output area that is too wide because its <pre> is, only once
  return found.filter((f, i) => !found.some((g, j) => j !== i && g.what !== 'output area' && f.what === 'output area'
    && g.text && f.text.startsWith(g.text.slice(0, 20))));
}"""

# The slide on show: heading, content height in slide px (from the slide's top to the lowest bottom of what it
# holds, speaker notes excluded), the elements too wide, and its visible text.
SLIDE_JS = (
    r"""() => {
  const wide = """
    + ELEMENT_JS
    + r""";
  const slide = Reveal.getCurrentSlide();
  const scale = Reveal.getScale();
  const top = slide.getBoundingClientRect().top;
  const slides = document.querySelector('.reveal .slides').getBoundingClientRect();
  let bottom = top;
  for (const e of slide.querySelectorAll(':scope > *:not(aside.notes), .jp-Cell, .jp-OutputArea-output, img, pre')) {
    const box = e.getBoundingClientRect();
    if (box.width || box.height) bottom = Math.max(bottom, box.bottom);
  }
  const heading = [...slide.querySelectorAll('h1, h2, h3, h4, h5, h6')].find(h => !h.closest('aside.notes'));
  const indices = Reveal.getIndices(slide);
  return {
    index: `${indices.h}.${indices.v || 0}`,
    heading: heading ? heading.textContent.replace(/¶$/, '').trim() : '',
    height: Math.round((bottom - top) / scale),
    wide: wide(slide, slides.left, slides.right, scale),
    text: slide.innerText,
  };
}"""
)


# nbconvert's decks load reveal.js with require.js, which keeps it to itself: make it window.Reveal.
EXPOSE_REVEAL = """() => { window.Reveal = window.Reveal || Object.entries(requirejs.s.contexts._.defined)
  .find(([name]) => /dist\\/reveal(\\.min)?(\\.js)?$/.test(name))[1]; }"""


def open_deck(browser, path: Path, seen: dict | None = None):
    """A 1280x720 page showing the deck at `path`, every request outside file:/data:/blob: aborted, reveal.js ready
    and MathJax done. Returns (context, page, blocked): close the context when done. `seen`, a dict: the requests
    that failed and the page's errors are appended to its lists "failed" and "errors" from the first request on."""
    context = browser.new_context(viewport=VIEWPORT)
    blocked: list[str] = []

    def guard(route):
        if urlparse(route.request.url).scheme in ("file", "data", "blob"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    context.route("**/*", guard)
    page = context.new_page()
    if seen is not None:
        page.on("requestfailed", lambda request: seen["failed"].append(request.url))
        page.on("pageerror", lambda error: seen["errors"].append(str(error)))
        page.on("console", lambda message: seen["errors"].append(message.text) if message.type == "error" else None)
    page.goto(Path(path).resolve().as_uri())
    page.wait_for_function("() => document.querySelector('.reveal.ready')", timeout=30_000)
    page.evaluate(EXPOSE_REVEAL)
    page.evaluate("() => Reveal.configure({transition: 'none', backgroundTransition: 'none'})")  # measure at rest
    page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=30_000)
    page.evaluate("() => MathJax.startup.promise")
    page.evaluate("() => document.fonts.ready")
    return context, page, blocked


def measure_deck(page, shots: Path | None = None, every: bool = True) -> list[dict]:
    """Visit every slide of the deck on `page` (each horizontal slide, each of its vertical subslides, all fragments
    shown) and measure it with SLIDE_JS; one dict per slide: index, heading, height, wide, text. `shots`: a folder
    for a screenshot (<h>.<v>.png) of each slide, or (`every=False`) of each slide with a problem (a shot costs
    about as much as measuring the slide)."""
    positions = page.evaluate(
        "() => Reveal.getSlides().map(s => { const i = Reveal.getIndices(s); "
        "return [i.h, i.v || 0, s.querySelectorAll('.fragment').length]; })"
    )
    slides = []
    for h, v, fragments in positions:
        page.evaluate(f"() => Reveal.slide({h}, {v}, {fragments - 1 if fragments else -1})")
        page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        slides.append(page.evaluate(SLIDE_JS))
        if shots and (every or problems(slides[-1])):
            page.screenshot(path=str(Path(shots) / f"{h}.{v}.png"))
    return slides


def problems(slide: dict, height: int = HEIGHT) -> list[str]:
    """What is wrong with one measured slide (SLIDE_JS's dict, or the live walk's): each as a short phrase."""
    found = []
    if slide["height"] > height:
        found.append(f"{slide['height']} px tall")
    for w in slide["wide"]:
        past = f", {w['past']} px past the edge" if w["past"] else ""
        found.append(f"{w['what']} {w['scroll']} px in {w['client']} px{past}: {w['text']!r}")
    for pattern, what in ((SOLUTION_MARK, "solution marker"), (PROGRESS_BAR, "progress bar")):
        match = pattern.search(slide["text"])
        if match:
            found.append(f"{what} on screen: {match.group(0)!r}")
    return found


def describe(slide: dict) -> str:
    """One line for a slide: index, heading, height, and its problems."""
    trouble = problems(slide)
    heading = (slide["heading"] or "(no heading)")[:50]
    line = f"{slide['index']:>6}  {slide['height']:>5} px  {heading}"
    return line + ("\n" + "\n".join(f"{'':>16}✗ {p}" for p in trouble) if trouble else "")


def summary(name: str, slides: list[dict]) -> str:
    tallest = max(slides, key=lambda s: s["height"]) if slides else {"height": 0, "index": "-"}
    over = sum(s["height"] > HEIGHT for s in slides)
    wide = sum(bool(s["wide"]) for s in slides)
    bad = sum(bool(problems(s)) for s in slides)
    return (
        f"{name}: {len(slides)} slides, tallest {tallest['height']} px (slide {tallest['index']}), "
        f"{over} over {HEIGHT} px, {wide} with something too wide, {bad} with a problem"
    )


def launch(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("decks", nargs="+", type=Path, help="*.slides.html files")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only the slides with a problem")
    parser.add_argument("--shots", type=Path, help="save a screenshot of every slide in SHOTS/<deck>/<h>.<v>.png")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    failed = False
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            for path in args.decks:
                context, page, blocked = open_deck(browser, path)
                try:
                    shots = args.shots / path.name.split(".")[0] if args.shots else None
                    if shots:
                        shots.mkdir(parents=True, exist_ok=True)
                    slides = measure_deck(page, shots)
                finally:
                    context.close()
                print(f"== {path}")
                for slide in slides:
                    if problems(slide) or not args.quiet:
                        print(describe(slide))
                if blocked:
                    print(f"✗ the deck tried the network: {blocked[:3]}")
                print(summary(path.name, slides))
                failed |= bool(blocked) or any(problems(s) for s in slides)
        finally:
            browser.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
