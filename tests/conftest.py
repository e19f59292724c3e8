"""Markers and settings for the test suite.

`slow` tests start kernels, subprocesses or train for many steps; `browser` tests drive JupyterLab in headless
Chromium. The quick suite (`make quick`, under a minute) is `pytest -m "not slow and not browser" tests`; CI runs all.
Hypothesis runs derandomized: the same examples on every run, so a statistical test cannot fail by chance in CI.
"""

import os
import sys
import uuid
from pathlib import Path

import pytest
from hypothesis import settings

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests' own helpers (notebook_source)
settings.register_profile("course", derandomize=True, deadline=None, print_blob=True)
settings.load_profile("course")


def pytest_configure(config):
    if not hasattr(config, "workerinput"):  # the controller (or the only process): names the session for its workers
        os.environ.setdefault("COURSE_BUILD_SESSION", uuid.uuid4().hex)
    config.addinivalue_line(
        "markers", "browser: drives JupyterLab in headless Chromium (slow; needs /usr/bin/chromium)"
    )
    config.addinivalue_line(
        "markers", "slow: starts kernels or subprocesses, or trains for many steps (not in the quick suite)"
    )


def pytest_unconfigure(config):
    if not hasattr(config, "workerinput"):
        import course_build

        course_build.stop()


def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (`make test`: `-n 2 --dist loadgroup`), the tests of a module run in one worker, so that a
    module's fixtures (a graded nbgrader course, a built wheel, a lab server) are made once; the browser tests of one
    course notebook run together (their Run All and deck walk are made once per notebook), and each notebook's tests
    of different modules in one worker too, so that the browser's copy and the shared build's do not both train."""
    for item in items:
        if item.get_closest_marker("xdist_group"):
            continue
        path = getattr(item, "callspec", None) and item.callspec.params.get("path")
        module = item.module.__name__ if item.module else item.nodeid.split("::")[0]
        if module in PER_NOTEBOOK and isinstance(path, Path):
            group = f"notebook-{path.stem[:2]}"
        else:
            group = module
        item.add_marker(pytest.mark.xdist_group(group))


# modules whose tests are grouped by the course notebook they are about (their `path` parameter), not by module
PER_NOTEBOOK = {"test_browser", "test_notebooks"}
