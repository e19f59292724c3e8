"""Every claim keeps the lecture's direction in fast mode too: a CI bound may loosen the margin, never flip the meaning.

The test reads every `claims.claim(...)` call in the notebooks whose bound is `runtime.by_mode(full=..., fast=...)`.
Each such claim must be listed in LECTURE_THRESHOLD below with the value that separates the lecture's statement from
its opposite (1 for "A beats B" as a ratio A/B, 0 for "a gain/difference is positive", chance level for an
accuracy, ...), or None for a closeness claim ("reaches PCA's error to within 1%"), which has no opposite side.
Both bounds must then lie on the lecture's side of that value. A new by_mode claim that is not listed fails here.
"""

import ast
import json
import operator
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("[0-9]*.ipynb"))

# claim text (start of the string; f-string parts cut at the first placeholder) -> the lecture's threshold
LECTURE_THRESHOLD = {
    # 01: closeness to PCA (PCA is optimal, so the ratio cannot go below 1): no opposite side
    "‖U − V_d R‖ / ‖U‖": None,
    "largest principal angle between span(U) and span(V_d)": None,
    "d=": None,
    # 02: deep AEs beat PCA
    "best deep AE MSE / PCA MSE at d = 2": 1.0,
    # 03: denoising improves PSNR; the MSE denoiser's output is greyer (blurrier) than on clean input
    "mean PSNR gain of h(x̃) over x̃, dB": 0.0,
    "smallest PSNR gain": 0.0,
    "mid-grey share of h(x̃) / of h(x)": 1.0,
    "share of occluded digits where h(x̃) is nearer the candidates' mean than the hidden digit x": 0.5,
    "occluded: h(x̃) nearer the candidates' mean than x, share": 0.5,
    # 04: the classifier is a good judge (chance is 0.1); Gaussian samples are worse than reconstructions
    "quality classifier test accuracy": 0.1,
    "fd(diagonal Gaussian samples) / fd(reconstructions)": 1.0,
    "fd(mixture samples) / fd(diagonal Gaussian samples)": 1.0,
    # 05: more importance samples shrink the gap
    "gap at k = ": 1.0,
    "reparameterized ascent: shortfall from the best diagonal-q ELBO": None,  # closeness to the optimum
    "reparameterized, last 10% of steps: below the best diagonal q": None,  # closeness to the optimum
    # 07: the conditional VAE draws the asked digit (chance 0.1); anomalies score worse than normal digits (AUC 0.5)
    "P(classifier says y | CVAE asked for y)": 0.1,
    "smallest ROC AUC of -ELBO": 0.5,
}

SIDE = {"<": operator.le, "<=": operator.lt, ">": operator.ge, ">=": operator.gt}


def _number(node):
    value = ast.literal_eval(node)
    if not isinstance(value, (int, float)):
        raise TypeError(value)
    return float(value)


def _text(node) -> str:
    if isinstance(node, ast.Constant):
        return str(node.value)
    if isinstance(node, ast.JoinedStr):
        out = []
        for part in node.values:
            if not isinstance(part, ast.Constant):
                break
            out.append(str(part.value))
        return "".join(out)
    return ""


def by_mode_claims():
    """(notebook, claim text, op, full bound, fast bound, check_at_ci_size) for each claim with a by_mode bound."""
    found = []
    for path in NOTEBOOKS:
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] != "code":
                continue
            source = "".join(cell["source"])
            tree = ast.parse(
                "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
            )
            for node in ast.walk(tree):
                if not (
                    isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "claim"
                ):
                    continue
                args = node.args
                if len(args) < 4:
                    continue
                bound = args[3]
                if not (isinstance(bound, ast.Call) and getattr(bound.func, "attr", "") == "by_mode"):
                    continue
                kw = {k.arg: k.value for k in bound.keywords}
                checked = next((ast.literal_eval(k.value) for k in node.keywords if k.arg == "check_at_ci_size"), True)
                found.append(
                    (
                        path.name,
                        _text(args[0]),
                        ast.literal_eval(args[2]),
                        _number(kw["full"]),
                        _number(kw["fast"]),
                        checked,
                    )
                )
    return found


CLAIMS = by_mode_claims()


def test_the_notebooks_have_by_mode_claims():
    assert len(CLAIMS) >= 10


@pytest.mark.parametrize(
    "notebook, what, op, full, fast, checked", CLAIMS, ids=[f"{c[0][:2]}:{c[1][:40]}" for c in CLAIMS]
)
def test_fast_bound_keeps_the_lecture_direction(notebook, what, op, full, fast, checked):
    keys = [k for k in LECTURE_THRESHOLD if what.startswith(k)]
    assert keys, f"{notebook}: claim {what!r} has a by_mode bound but no lecture threshold in LECTURE_THRESHOLD"
    threshold = LECTURE_THRESHOLD[max(keys, key=len)]
    if threshold is None:
        return
    on_lecture_side = SIDE[op]
    assert on_lecture_side(full, threshold), f"{notebook}: full bound {op} {full} admits the opposite of {what!r}"
    if checked:
        assert on_lecture_side(fast, threshold), (
            f"{notebook}: fast bound {op} {fast} admits the opposite of {what!r} (threshold {threshold}); "
            f"grow the CI size or pass check_at_ci_size=False"
        )
