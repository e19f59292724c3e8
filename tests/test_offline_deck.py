"""The HTML pages and slide decks need no network: every script, stylesheet and font they load is vendored in
course/static (with its licence), copied into <out>/_static and referenced by a relative URL.

What a browser makes of them (slides move, formulas typeset, nothing fetched from outside) is tests/test_browser.py.
"""

import re
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from course import decks, render

REPO = Path(__file__).resolve().parent.parent
# What the pages load: <script src>, <link href>, CSS @import and url(...).
LOADS = re.compile(
    r"""<script[^>]*\ssrc="([^"]+)"|<link[^>]*\shref="([^"]+)"|@import\s+url\(["']?([^"')]+)|"""
    r"""url\(["']?([^"')]+)["']?\)"""
)


def _notebook() -> nbformat.NotebookNode:
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
    cells = [
        new_markdown_cell("# Title $\\mathbf{x}$", metadata={"slideshow": {"slide_type": "slide"}}),
        new_markdown_cell(
            "$$\\log p_\\theta(\\mathbf{x}) \\geq \\mathcal{L}$$", metadata={"slideshow": {"slide_type": "slide"}}
        ),
        new_code_cell(
            "1 + 1",
            metadata={"slideshow": {"slide_type": "-"}},
            outputs=[new_output("display_data", {"image/png": png, "text/plain": "<Figure>"})],
        ),
    ]
    return new_notebook(
        cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    )


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    out = tmp_path_factory.mktemp("build")
    nb = _notebook()
    decks.export_html(nb, out / "01_x.html")
    decks.export_slides(nb, out / "01_x.slides.html")
    return out


def _loads(html: str) -> list[str]:
    return [next(g for g in m.groups() if g) for m in LOADS.finditer(html)]


@pytest.mark.parametrize("name", ["01_x.html", "01_x.slides.html"])
def test_every_asset_a_page_loads_is_in_the_build_folder(pages, name):
    html = (pages / name).read_text(encoding="utf-8")
    loads = [u for u in _loads(html) if not u.startswith(("data:", "#"))]
    assert loads, "the page loads no asset at all?"
    for url in loads:
        assert not re.match(r"^[a-z]+:|^//", url), f"{name} loads {url} from the network"
        assert url.startswith(decks.STATIC_DIR + "/"), f"{name} loads {url} from outside {decks.STATIC_DIR}/"
        assert (pages / url.split("?")[0]).is_file(), f"{name} loads {url}, which is not in the build folder"
    assert any("mathjax" in u for u in loads)
    if name.endswith(".slides.html"):
        assert {
            decks.REQUIRE_JS_URL,
            f"{decks.REVEAL_PREFIX}/dist/reveal.css",
            f"{decks.REVEAL_PREFIX}/dist/theme/{decks.REVEAL_THEME}.css",
        } <= set(loads)
        for module in ("dist/reveal.js", "plugin/notes/notes.js"):  # what require.js loads
            assert f'"{decks.REVEAL_PREFIX}/{module}"' in html and (pages / decks.REVEAL_PREFIX / module).is_file()


@pytest.mark.parametrize("name", ["01_x.html", "01_x.slides.html"])
def test_pages_configure_mathjax_3_and_fetch_nothing_from_a_cdn_on_load(pages, name):
    html = (pages / name).read_text(encoding="utf-8")
    assert "window.MathJax = {" in html and "inlineMath: [['$', '$']" in html
    assert "MathJax.Hub" not in html, "a MathJax 2 call or configuration is left (MathJax 3 has no Hub)"
    # The only absolute URLs left are mermaid's, imported by a loader that returns first when a page has no diagram.
    for url in set(re.findall(r"""(?:import\s*\(|from\s+)["'](https?://[^"']+)""", html)):
        assert "mermaid" in url, f"{name} imports {url}"
    lazy = html.index("if (!diagrams.length)")
    assert all(m.start() > lazy for m in re.finditer(r"await import\(", html))


def test_the_vendored_stylesheets_load_nothing_from_the_network():
    for css in decks.STATIC.rglob("*.css"):
        for url in _loads(css.read_text(encoding="utf-8")):
            if url.startswith("data:"):
                continue
            assert not re.match(r"^[a-z]+:|^//", url), f"{css} loads {url}"
            file = url.split("?")[0].split("#")[0]
            if not file.endswith((".eot", ".ttf")):  # listed after the woff, which Chromium, Firefox and Safari take
                assert (css.parent / file).is_file(), f"{css} loads {url}, which is not vendored"


def test_each_vendored_package_carries_its_licence_and_all_stay_small():
    packages = [p for p in decks.STATIC.iterdir() if p.is_dir()]
    assert {p.name for p in packages} == {"reveal.js", "mathjax", "requirejs"}
    for package in packages:
        assert (package / "LICENSE").is_file(), f"{package.name} has no LICENSE beside it"
    fonts = decks.STATIC / "reveal.js" / "dist" / "theme" / "fonts" / "source-sans-pro"
    assert (fonts / "LICENSE").is_file() and "Open Font License" in (fonts / "LICENSE").read_text(encoding="utf-8")
    size = sum(f.stat().st_size for f in decks.STATIC.rglob("*") if f.is_file())
    assert size < 4_000_000, f"course/static holds {size / 1e6:.1f} MB"


def test_the_vendored_versions_are_the_ones_the_templates_were_written_for():
    head = (decks.STATIC / "reveal.js" / "dist" / "reveal.js").read_text(encoding="utf-8")[:200]
    assert re.search(r"reveal\.js 4\.", head), "nbconvert's reveal template is written for reveal.js 4"
    mathjax = (decks.STATIC / "mathjax" / "tex-svg-full.js").read_text(encoding="utf-8")
    assert re.search(r'VERSION="3\.', mathjax), "the MathJax configuration in lecturelib/render.py is MathJax 3's"
    assert "version = '2.3." in (decks.STATIC / "requirejs" / "require.js").read_text(encoding="utf-8")[:2000]
    from jupyter_core.paths import jupyter_path

    templates = [Path(p) / "nbconvert" / "templates" / "reveal" / "index.html.j2" for p in jupyter_path()]
    template = next(t for t in templates if t.is_file())  # its default URL says which reveal.js it expects
    assert re.search(r"reveal\.js@4\.", template.read_text(encoding="utf-8"))


def test_copy_static_copies_once_and_leaves_the_update_script_behind(tmp_path):
    target = decks.copy_static(tmp_path)
    copied = sorted(p.relative_to(target) for p in target.rglob("*") if p.is_file())
    assert Path("mathjax/tex-svg-full.js") in copied and Path("reveal.js/LICENSE") in copied
    assert not any(p.suffix == ".sh" for p in copied)
    stamp = (target / "mathjax" / "tex-svg-full.js").stat().st_mtime_ns
    (target / "requirejs" / "require.js").write_text("changed")
    decks.copy_static(tmp_path)
    assert (target / "mathjax" / "tex-svg-full.js").stat().st_mtime_ns == stamp
    original = (decks.STATIC / "requirejs" / "require.js").read_bytes()
    assert (target / "requirejs" / "require.js").read_bytes() == original, "a changed copy is copied again"


def test_decks_can_still_take_reveal_js_from_elsewhere(tmp_path):
    decks.export_slides(_notebook(), tmp_path / "deck.slides.html", reveal_url="https://unpkg.com/reveal.js@4.0.2")
    html = (tmp_path / "deck.slides.html").read_text(encoding="utf-8")
    assert 'href="https://unpkg.com/reveal.js@4.0.2/dist/reveal.css"' in html
    assert f'src="{decks.MATHJAX_URL}"' in html and (tmp_path / decks.MATHJAX_URL).is_file()


def test_render_writes_the_assets_next_to_the_pages(tmp_path):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    nb = _notebook()
    nb.cells[2].outputs = []
    nbformat.write(nb, notebooks / "01_x.ipynb")
    results = render.render(notebooks, tmp_path / "build", fast=True, slides=True, timeout=60, echo=lambda _: None)
    assert results[0].ok, results[0].error
    build = tmp_path / "build"
    assert {"01_x.html", "01_x.slides.html", decks.STATIC_DIR} <= {p.name for p in build.iterdir()}
    assert (build / decks.MATHJAX_URL).is_file() and (build / decks.REVEAL_PREFIX / "dist" / "reveal.js").is_file()
