"""The course's pages and decks: nbconvert's HTML (lab template) and reveal.js slides, with reveal.js, MathJax and
require.js loaded from a vendored copy next to the pages, so that a build folder works with no network.
"""

from __future__ import annotations

import copy
import re
import shutil
from pathlib import Path

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


# A tqdm progress bar's text form, as a static export would show it: "06-gauss-free:   0%|          | 0/5 [...]".
PROGRESS_BAR = re.compile(r"\d+%\|.*\|\s*\d+/\d+")


def is_progress_bar(output) -> bool:
    """Whether an output is a tqdm progress bar (a widget, or its text): frozen wherever the widget cannot run."""
    data = output.get("data", {})
    text = data.get("text/plain", "") if WIDGET_VIEW in data else ""
    return bool(PROGRESS_BAR.search("".join(text) if isinstance(text, list) else text))


def static_copy(nb):
    """A copy for HTML and slides: widget views dropped where a static fallback (PNG, text) exists.

    The exported page would otherwise fetch a widget renderer from a CDN; offline it would show nothing. Progress
    bars are dropped whole: their fallback is the bar as it was when the cell started ("0%|"), and the training loop
    prints a finished line of its own.
    """
    nb = copy.deepcopy(nb)
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        if "outputs" not in cell:
            continue
        cell.outputs = [output for output in cell.outputs if not is_progress_bar(output)]
        for output in cell.outputs:
            data = output.get("data", {})
            if WIDGET_VIEW in data and len(data) > 1:
                del data[WIDGET_VIEW]
    return nb


# The pages' browser assets ship with the course (course/static: reveal.js, MathJax, require.js, each with its
# licence; course/static/update.sh re-vendors them from npm) and are copied next to the pages, so that a build
# folder works with no network: opened from disk, zipped, or served by `python -m http.server`.
STATIC = Path(__file__).resolve().parent / "static"
STATIC_DIR = "_static"  # out/_static, next to the pages
REVEAL_PREFIX = f"{STATIC_DIR}/reveal.js"  # reveal.js 4.0.2, the version nbconvert's template names
REVEAL_THEME = "white"  # its font (Source Sans Pro) ships with it
MATHJAX_URL = f"{STATIC_DIR}/mathjax/tex-svg-full.js"  # MathJax 3.2.2: TeX in, SVG out, one file, no web fonts
REQUIRE_JS_URL = f"{STATIC_DIR}/requirejs/require.js"  # require.js 2.3.8, which loads reveal.js in the deck
# A slide is the projector's 1280 x 720 px (16:9): reveal.js lays every slide out at this size and scales the whole
# slide to the window, so on a 1280 x 720 screen one px of the slide is one px of the screen.
DECK_WIDTH, DECK_HEIGHT = 1280, 720
CODE_FONT_PX = 18  # shown code on a slide: about 110 monospace characters fit a line (1,255 px)
OUTPUT_FONT_PX = 16  # printed output on a slide: about 125 characters a line; longer lines wrap
HIDE_INPUT_TAG = "hide-input"  # a code cell whose output is shown on slides without its code (convention C3)

# nbconvert's lab and reveal templates configure MathJax 2 (MathJax.Hub); this is the same configuration for
# MathJax 3: $...$ and \(...\) inline, $$...$$ and \[...\] displayed, \$ for a dollar, AMS equation numbers.
_MATHJAX3 = r"""
<script>
window.MathJax = {
  tex: {
    inlineMath: [['$', '$'], ['\\(', '\\)']],
    displayMath: [['$$', '$$'], ['\\[', '\\]']],
    processEscapes: true,
    processEnvironments: true,
    tags: 'ams'
  },
  svg: {fontCache: 'global'}
};
</script>
<script id="MathJax-script" src="{{ resources.mathjax_url }}"></script>
"""
_LAB_TEMPLATE = (
    r"""{%- extends 'index.html.j2' -%}
{%- block html_head_js_mathjax -%}"""
    + _MATHJAX3
    + r"""{%- endblock html_head_js_mathjax -%}
"""
)
# The deck uses reveal.js's white theme, whose font ships with reveal.js (nbconvert's default, "simple", imports its
# fonts from Google Fonts). The reveal template also loads jQuery (only to make tall slides scroll: here a slide is
# DECK_WIDTH x DECK_HEIGHT and never scrolls; tests/deck_measure.py finds what does not fit), imports mermaid from a
# CDN on every page (replaced by the lab template's loader, which fetches it only for a page with a mermaid diagram:
# the course has none), and re-renders MathJax 2 on each slide change (MathJax 3's SVG needs no re-rendering, and
# MathJax.Hub does not exist in MathJax 3).
_REVEAL_TEMPLATE = (
    (
        r"""{%- extends 'index.html.j2' -%}
{% from 'mermaidjs.html.j2' import mermaid_js %}
{%- block html_head_js_jquery -%}{%- endblock html_head_js_jquery -%}
{%- block html_head_js_mermaidjs -%}
{{ mermaid_js(resources.mermaid_js_url, resources.mermaid_layout_elk_js_url) }}
{%- endblock html_head_js_mermaidjs -%}
{%- block html_head_js_mathjax -%}"""
        + _MATHJAX3
        + r"""{%- endblock html_head_js_mathjax -%}
{%- block html_head_css -%}
<style type="text/css">
/* the white theme capitalises headings, which would change their symbols (x, X); keep them as written */
.reveal .slides h1, .reveal .slides h2, .reveal .slides h3, .reveal .slides h4, .reveal .slides h5, .reveal .slides h6 {
  text-transform: none;
}
/* A slide is DECK_WIDTH x DECK_HEIGHT px and never scrolls. Prompts are hidden (as in JupyterLab's deck mode), so code
   has the slide's width; its font fits about 90 characters a line (the notebooks' limit is 88). Code and displayed
   maths wider than their box scroll sideways inside it (tests/deck_measure.py reports them); printed output wraps. */
.reveal .jp-InputPrompt, .reveal .jp-OutputPrompt { display: none; }
:root { --jp-code-font-size: CODE_FONT_PXpx; }
.reveal div.highlight > pre {
  width: auto; font-size: var(--jp-code-font-size); line-height: 1.3; overflow-x: auto; white-space: pre;
}
.reveal div.jp-OutputArea-output > pre {
  width: auto; font-size: OUTPUT_FONT_PXpx; line-height: 1.3; white-space: pre-wrap; overflow-wrap: anywhere;
}
.reveal mjx-container[display="true"] { overflow-x: auto; overflow-y: hidden; max-width: 100%; }
</style>
{%- endblock html_head_css -%}
{% block footer_js %}
<script>
require({waitSeconds: 15}, ["{{ reveal_url_prefix }}/dist/reveal.js", "{{ reveal_url_prefix }}/plugin/notes/notes.js"],
  function (Reveal, RevealNotes) {
    Reveal.initialize({
      controls: true,
      progress: true,
      history: true,
      transition: "{{ reveal_transition }}",
      slideNumber: "{{ reveal_number }}",
      plugins: [RevealNotes],
      // the projector's 16:9 at 1:1 on a 1280x720 screen (margin 0: reveal scales by exactly window / slide size)
      width: {{ reveal_width }},
      height: {{ reveal_height }},
      margin: 0,
      center: false
    });
  });
</script>
{% endblock footer_js %}
"""
    )
    .replace("DECK_WIDTH x DECK_HEIGHT", f"{DECK_WIDTH} x {DECK_HEIGHT}")
    .replace("CODE_FONT_PX", str(CODE_FONT_PX))
    .replace("OUTPUT_FONT_PX", str(OUTPUT_FONT_PX))
)


def copy_static(out: Path) -> Path:
    """Copy the vendored browser assets (with their licences) into out/_static, where the pages in `out` load them
    from by relative URLs; files already there and unchanged are left alone. Returns out/_static."""
    target = Path(out) / STATIC_DIR
    for source in sorted(STATIC.rglob("*")):
        if not source.is_file() or source.suffix in (".sh", ".pyc"):
            continue
        dest = target / source.relative_to(STATIC)
        stat = source.stat()
        if dest.is_file() and dest.stat().st_size == stat.st_size and dest.stat().st_mtime == stat.st_mtime:
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, dest)
    return target


def export_html(nb, path: Path) -> None:
    """The notebook as one HTML page (nbconvert's lab template) at `path`, with MathJax from path's folder/_static."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(
        template_name="lab", raw_template=_LAB_TEMPLATE, mathjax_url=MATHJAX_URL, require_js_url=REQUIRE_JS_URL
    )
    body, _ = exporter.from_notebook_node(static_copy(nb))
    path = Path(path)
    path.write_text(body, encoding="utf-8")
    copy_static(path.parent)


def deck_copy(nb):
    """A copy for the deck: static_copy's, and the code of the cells tagged `hide-input` removed (their outputs stay).

    JupyterLab's deck mode hides the same cells' code, which the notebooks also mark `jupyter.source_hidden`."""
    from nbconvert.preprocessors import TagRemovePreprocessor

    nb, _ = TagRemovePreprocessor(remove_input_tags={HIDE_INPUT_TAG}, enabled=True).preprocess(static_copy(nb), {})
    return nb


def export_slides(nb, path: Path, reveal_url: str | None = None) -> None:
    """A reveal.js deck, one slide per cell's slideshow metadata (as `jupyter nbconvert --to slides`).

    Each slide is DECK_WIDTH x DECK_HEIGHT px, laid out from its top, and never scrolls: what does not fit is cut off
    (tests/deck_measure.py measures every slide). The code of cells tagged `hide-input` is left out. reveal.js, MathJax
    and require.js load from path's folder/_static (copied there), so the deck works offline; `reveal_url` names
    another copy of reveal.js instead (a folder or URL, e.g. a CDN).
    """
    from nbconvert import SlidesExporter

    exporter = SlidesExporter(
        reveal_scroll=False,
        reveal_width=str(DECK_WIDTH),
        reveal_height=str(DECK_HEIGHT),
        reveal_theme=REVEAL_THEME,
        raw_template=_REVEAL_TEMPLATE,
        reveal_url_prefix=reveal_url or REVEAL_PREFIX,
        mathjax_url=MATHJAX_URL,
        require_js_url=REQUIRE_JS_URL,
    )
    body, _ = exporter.from_notebook_node(deck_copy(nb))
    path = Path(path)
    path.write_text(body, encoding="utf-8")
    copy_static(path.parent)
