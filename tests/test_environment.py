"""The environment is declared once (pyproject.toml) and pinned once (constraints.txt); the other files derive."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~ \[;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _declared() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]


def _pins() -> dict[str, str]:
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    pins = [line.split("==") for line in lines if line.strip() and not line.startswith("#")]
    return {name.lower().replace("_", "-"): version for name, version in pins}


def test_requirements_install_the_package_with_its_extras_under_the_constraints():
    lines = [
        line.strip()
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines == ["-c constraints.txt", "-e .[course,dev]"]


def test_environment_pins_python_311_and_installs_requirements():
    text = (ROOT / "environment.yml").read_text()
    assert re.search(r"^\s+-\s+python=3\.11\s*$", text, re.M)
    assert re.search(r"^\s+-\s+-r requirements\.txt\s*$", text, re.M)


def test_every_declared_dependency_is_pinned_within_its_range():
    pins = _pins()
    for requirement in _declared():
        name = _name(requirement)
        assert name in pins, f"{name} is declared in pyproject.toml but not pinned in constraints.txt"
        minimum = re.search(r">=\s*([\d.]+)", requirement)
        if minimum:
            have = tuple(int(p) for p in re.findall(r"\d+", pins[name].split("+")[0])[:3])
            want = tuple(int(p) for p in re.findall(r"\d+", minimum.group(1))[:3])
            assert have >= want, f"{name}: pinned {pins[name]} is below the declared {requirement}"


def test_what_the_course_imports_is_declared():
    names = {_name(r) for r in _declared()}
    assert {
        "torch",
        "torchvision",
        "numpy",
        "matplotlib",
        "scikit-learn",
        "ipywidgets",
        "traitlets",
        "pillow",
        "tqdm",
        "nbformat",
        "nbclient",
        "nbconvert",
        "jupyterlab",
        "pytest",
        "nbval",
        "ruff",
    } <= names
