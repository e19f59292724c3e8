"""The environment is declared once (pyproject.toml) and pinned once (constraints.txt); the other files derive."""

import ast
import json
import re
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, packages_distributions, requires
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


def _imports(source: str) -> set[str]:
    """The top-level modules that Python source imports (absolute imports only)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _notebook_code(path: Path) -> str:
    """A notebook's code cells as one Python source (IPython's % and ! lines left out)."""
    cells = json.loads(path.read_text())["cells"]
    sources = ("".join(cell["source"]) for cell in cells if cell["cell_type"] == "code")
    return "\n".join(
        line for source in sources for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))
    )


def _third_party(names: set[str]) -> set[str]:
    """The distributions (pip names) that provide the imported modules which are neither the standard library nor
    the course's own (lecturelib, course, and the helper modules beside the tests)."""
    own = {"lecturelib", "course"} | {p.stem for p in (ROOT / "tests").glob("*.py")}
    providers = packages_distributions()
    missing = {n for n in names - own if n not in sys.stdlib_module_names and n not in providers}
    assert not missing, f"imported but installed by no distribution here: {sorted(missing)}"
    return {_name(providers[n][0]) for n in names - own if n not in sys.stdlib_module_names}


def _with_requirements(names: set[str]) -> set[str]:
    """`names` and everything they require, at any depth (what installing them installs)."""
    todo, found = list(names), set()
    while todo:
        name = todo.pop()
        if name in found:
            continue
        found.add(name)
        try:
            todo += [_name(r) for r in requires(name) or () if "extra ==" not in r]
        except PackageNotFoundError:
            pass
    return found


def test_what_the_course_imports_is_declared():
    """Read the imports (ast) and compare them with pyproject.toml: the student package and the notebooks need only
    the dependencies; the course's tools those and the `course` extra; the tests may also use what the extras
    install with them."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = {_name(r) for r in project["dependencies"]}
    extras = {key: {_name(r) for r in reqs} for key, reqs in project["optional-dependencies"].items()}
    code = {
        folder: set().union(*(_imports(p.read_text()) for p in (ROOT / folder).rglob("*.py")))
        for folder in ("lecturelib", "course", "tests")
    }
    code["notebooks"] = set().union(*(_imports(_notebook_code(p)) for p in (ROOT / "notebooks").glob("*.ipynb")))
    allowed = {
        "lecturelib": core,
        "notebooks": core,
        "course": core | extras["course"],
        "tests": _with_requirements(core | extras["course"] | extras["dev"]),
    }
    for folder, names in code.items():
        undeclared = _third_party(names) - allowed[folder]
        assert not undeclared, f"{folder}/ imports {sorted(undeclared)}, not declared for it in pyproject.toml"
    assert _third_party(code["notebooks"] | code["lecturelib"]) >= {"torch", "numpy", "matplotlib"}  # it read them
