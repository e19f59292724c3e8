"""The course's pages and decks: nbconvert's HTML (lab template) and reveal.js slides, with reveal.js, MathJax and
require.js loaded from a vendored copy next to the pages, so that a build folder works with no network.
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def static_copy(nb):
    """A copy for HTML and slides: widget views dropped where a static fallback (PNG, text) exists.

    The exported page would otherwise fetch a widget renderer from a CDN; offline it would show nothing.
    """
    nb = copy.deepcopy(nb)
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        for output in cell.get("outputs", []):
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
# fonts from Google Fonts). The reveal template also loads jQuery (only to make tall slides scroll, done below without
# it), imports mermaid from a CDN on every page (replaced by the lab template's loader, which fetches it only for a
# page with a mermaid diagram: the course has none), and re-renders MathJax 2 on each slide change (MathJax 3's SVG
# needs no re-rendering, and MathJax.Hub does not exist in MathJax 3).
_REVEAL_TEMPLATE = (
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
      width: {{ reveal_width }},
      height: {{ reveal_height }}
    });
    var scroll = {{ reveal_scroll }};
    // A slide taller than the screen scrolls (as nbconvert's template does, without jQuery).
    function setScrollingSlide() {
      if (scroll !== true) return;
      var h = document.querySelector('.reveal').clientHeight * 0.95;
      document.querySelectorAll('section.present section').forEach(function (s) {
        if (s.offsetHeight > h) {
          s.style.height = 'calc(95vh)';
          s.style.overflowY = 'scroll';
          s.style.marginTop = '20px';
        }
      });
    }
    Reveal.on('ready', setScrollingSlide);
    Reveal.on('slidechanged', setScrollingSlide);
  });
</script>
{% endblock footer_js %}
"""
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


def export_slides(nb, path: Path, reveal_url: str | None = None) -> None:
    """A reveal.js deck, one slide per cell's slideshow metadata (as `jupyter nbconvert --to slides`).

    Tall slides scroll. reveal.js, MathJax and require.js load from path's folder/_static (copied there), so the deck
    works offline; `reveal_url` names another copy of reveal.js instead (a folder or URL, e.g. a CDN).
    """
    from nbconvert import SlidesExporter

    exporter = SlidesExporter(
        reveal_scroll=True,
        reveal_theme=REVEAL_THEME,
        raw_template=_REVEAL_TEMPLATE,
        reveal_url_prefix=reveal_url or REVEAL_PREFIX,
        mathjax_url=MATHJAX_URL,
        require_js_url=REQUIRE_JS_URL,
    )
    body, _ = exporter.from_notebook_node(static_copy(nb))
    path = Path(path)
    path.write_text(body, encoding="utf-8")
    copy_static(path.parent)
