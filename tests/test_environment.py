"""requirements.txt and environment.yml describe the same environment."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _requirements() -> set[str]:
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


def _environment_pip() -> set[str]:
    text = (ROOT / "environment.yml").read_text()
    pip_block = text.split("- pip:", 1)[1]
    return {m.group(1).strip() for m in re.finditer(r"^\s+-\s+(\S.*)$", pip_block, re.M)}


def test_requirements_and_environment_list_the_same_packages():
    assert _requirements() == _environment_pip()


def test_environment_pins_python_311():
    assert re.search(r"^\s+-\s+python=3\.11\s*$", (ROOT / "environment.yml").read_text(), re.M)


def test_the_course_packages_are_declared():
    names = {re.split(r"[<>=!~ ]", r, maxsplit=1)[0].lower() for r in _requirements()}
    assert {"torch", "torchvision", "jupyterlab", "matplotlib", "ipywidgets", "scikit-learn", "nbval",
            "pytest", "tqdm"} <= names
