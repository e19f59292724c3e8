"""Markers and settings for the test suite.

`slow` tests start kernels, subprocesses or train for many steps; `browser` tests drive JupyterLab in headless
Chromium. The quick suite (`make quick`, under a minute) is `pytest -m "not slow and not browser" tests`; CI runs all.
Hypothesis runs derandomized: the same examples on every run, so a statistical test cannot fail by chance in CI.
"""

import os
import re
import sys
import uuid
from pathlib import Path

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
    config.addinivalue_line("markers", "course_build: reads the session's shared fast render (tests/course_build.py)")


def pytest_unconfigure(config):
    if not hasattr(config, "workerinput"):
        import course_build

        course_build.stop()


def pytest_collection_finish(session):
    """Start the shared fast render of the course (tests/course_build.py) as soon as the selected tests need it, so
    that it runs while the others do (every process of the session may ask: it starts once)."""
    if any(item.get_closest_marker("course_build") for item in session.items):
        import course_build

        course_build.start()


def worker_group(nodeid: str) -> str:
    """Which tests one pytest-xdist worker runs together (`make test`: `-n 2`): the tests of a module, so that its
    fixtures (a graded nbgrader course, a built wheel, a lab server) are made once; but the browser and notebook tests
    by course notebook (`[06_...]` in their id), so that a notebook's Run All and deck walk are made once and its tests
    from both modules run in one worker."""
    module = nodeid.split("::")[0]
    notebook = re.search(r"\[(\d\d)_[a-z_]+\]$", nodeid)
    if Path(module).stem in PER_NOTEBOOK and notebook:
        return f"notebook-{notebook[1]}"
    student_run = re.search(r"::test_student_edition_runs_end_to_end\w*\[(\d\d)\]$", nodeid)
    if student_run:  # each notebook's student run alone: the two workers share them
        return f"student-{student_run[1]}"
    return module


# modules whose tests are grouped by the course notebook they are about, not by module
PER_NOTEBOOK = {"test_browser", "test_notebooks"}


def pytest_collection_modifyitems(config, items):
    """The modules that execute notebooks after the shared render (the student edition, nbgrader's submissions) go
    last, so that the render has trained the models they load by the time they run; the order is otherwise kept."""
    items.sort(key=lambda item: Path(str(item.path)).stem in RUN_LAST)  # a stable sort


RUN_LAST = {"test_student_edition", "test_nbgrader", "test_wheel"}


def pytest_xdist_make_scheduler(config, log):
    """xdist's scope scheduler with the groups of worker_group (its own `loadgroup` marks do not reach pytest 9's node
    ids in xdist 3.8, so the group is read off the id)."""
    from xdist.scheduler import LoadScopeScheduling

    class ByGroup(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return worker_group(nodeid)

    return ByGroup(config, log)
