"""The course as students get it on a hub, Colab or Binder: `pip install` of a built wheel, a notebook in an empty
folder. The wheel holds lecturelib with its MNIST and no path of this repository; a notebook run from anywhere finds
the data inside the package and caches its models in a per-user folder, never in site-packages.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import nbformat
import pytest

from lecturelib import data

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK = REPO / "notebooks" / "01_linear_autoencoder_pca.ipynb"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(REPO)],
        check=True,
        cwd=out,
    )
    (found,) = out.glob("lecturelib-*.whl")
    return found


def test_the_wheel_holds_the_data_and_no_repository_path(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        blob = archive.read("lecturelib/mnist/mnist.npz")
        assert hashlib.sha256(blob).hexdigest() == data.DATA_SHA256
        assert "lecturelib/mnist/README.md" in names  # the licence and attribution travel with the data
        assert not [n for n in names if n.startswith(("course/", "tests/", "notebooks/"))]
        for name in names:
            if name.endswith((".py", ".txt", ".json", "METADATA", "RECORD")):
                assert str(REPO) not in archive.read(name).decode("utf-8", "replace"), name


@pytest.mark.slow
def test_a_notebook_runs_from_an_empty_folder_on_the_installed_wheel(wheel, tmp_path):
    env_dir = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True)
    python = env_dir / "bin" / "python"
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    # the dependencies are those already installed here (torch, jupyter, ...): a plain path line, so the editable
    # install of this checkout that lives beside them (its own .pth files) is not picked up
    (site / "course_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index", str(wheel)],
        check=True,
    )
    installed = {p for p in (site / "lecturelib").rglob("*") if "__pycache__" not in p.parts}

    folder = tmp_path / "anywhere"
    folder.mkdir()
    shutil.copy(NOTEBOOK, folder / NOTEBOOK.name)
    cache = tmp_path / "cache"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LECTURELIB_", "PYTHONPATH", "JUPYTER", "VIRTUAL"))}
    env.update(
        LECTURELIB_FAST="1",
        XDG_CACHE_HOME=str(cache),
        PATH=f"{env_dir / 'bin'}{os.pathsep}{env['PATH']}",
    )
    env.pop("MPLBACKEND", None)
    run = subprocess.run(
        [
            python,
            "-m",
            "nbconvert",
            "--to",
            "notebook",
            "--execute",
            "--output",
            "executed.ipynb",
            "--ExecutePreprocessor.timeout=1800",
            NOTEBOOK.name,
        ],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    nb = nbformat.read(folder / "executed.ipynb", as_version=4)
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert f"trained models are cached in {cache / 'lecturelib' / 'checkpoints'}" in printed
    assert "MNIST train" in printed and "✗" not in printed
    # the kernel imported the installed package, not this checkout
    assert str(REPO) not in printed
    after = {p for p in (site / "lecturelib").rglob("*") if "__pycache__" not in p.parts}
    assert after == installed, f"written into site-packages: {sorted(map(str, after - installed))}"
    assert {p.name for p in folder.iterdir()} == {"executed.ipynb", NOTEBOOK.name}  # nothing else written here


CODE_PATHS = re.compile(r"""["'][^"']*(\.\./|\bdata/|\bcheckpoints/|\bnotebooks/)[^"']*["']""")


@pytest.mark.parametrize("path", sorted((REPO / "notebooks").glob("[0-9]*.ipynb")), ids=lambda p: p.name[:2])
def test_notebooks_name_no_path_of_the_repository(path):
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    found = [m.group(0) for c in cells if c["cell_type"] == "code" for m in CODE_PATHS.finditer("".join(c["source"]))]
    assert not found, f"{path.name} reads files by a path of the repository: {found}"
