#!/usr/bin/env bash
# Re-vendor the browser assets of the HTML pages and slide decks from the npm registry (development time only:
# building or presenting the course never touches the network). Usage: bash course/static/update.sh
# Versions match what nbconvert's templates were written for (reveal.js 4), except MathJax, which is MathJax 3 with
# the configuration in course/render.py (the templates' own configuration is MathJax 2's).
set -euo pipefail
REVEAL=4.0.2 MATHJAX=3.2.2 REQUIREJS=2.3.8
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
npm pack --silent "reveal.js@$REVEAL" "mathjax@$MATHJAX" "requirejs@$REQUIREJS" >/dev/null
for pkg in "reveal.js-$REVEAL" "mathjax-$MATHJAX" "requirejs-$REQUIREJS"; do
  mkdir "$pkg" && tar xzf "$pkg.tgz" -C "$pkg" && sha256sum "$pkg.tgz"
done
rm -rf "$here/reveal.js" "$here/mathjax" "$here/requirejs"

# reveal.js: the UMD build that require.js loads, its CSS, the white theme (nbconvert's default) with the woff files
# of its font, and the speaker-notes plugin the template loads.
r="reveal.js-$REVEAL/package"
fonts=dist/theme/fonts/source-sans-pro
mkdir -p "$here/reveal.js/dist/theme" "$here/reveal.js/$fonts" "$here/reveal.js/plugin/notes"
cp "$r/LICENSE" "$here/reveal.js/LICENSE"
cp "$r/dist/reveal.js" "$r/dist/reveal.css" "$here/reveal.js/dist/"
cp "$r/dist/theme/white.css" "$here/reveal.js/dist/theme/"
cp "$r/$fonts/LICENSE" "$r/$fonts/source-sans-pro.css" "$r/$fonts/"*.woff "$here/reveal.js/$fonts/"
cp "$r/plugin/notes/notes.js" "$here/reveal.js/plugin/notes/"

# MathJax 3: one file with the TeX input (all extensions: \boldsymbol and friends) and SVG output (no web fonts).
mkdir -p "$here/mathjax"
cp "mathjax-$MATHJAX/package/LICENSE" "mathjax-$MATHJAX/package/es5/tex-svg-full.js" "$here/mathjax/"

# require.js, which the reveal template loads reveal.js with (MIT; its npm package ships no licence file, the
# header of require.js names the licence: LICENSE beside it is the MIT text with that header's copyright line).
mkdir -p "$here/requirejs"
cp "requirejs-$REQUIREJS/package/require.js" "$here/requirejs/"
cat > "$here/requirejs/LICENSE" <<'MIT'
RequireJS (require.js), https://github.com/requirejs/requirejs
The header of require.js reads: "@license RequireJS Copyright jQuery Foundation and other contributors.
Released under MIT license, https://github.com/requirejs/requirejs/blob/master/LICENSE". That licence:

MIT License

Copyright jQuery Foundation and other contributors

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in
all copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN
THE SOFTWARE.
MIT
du -sh "$here/reveal.js" "$here/mathjax" "$here/requirejs"
