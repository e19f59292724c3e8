"""Markers and settings for the test suite.

`slow` tests start kernels, subprocesses or train for many steps; `browser` tests drive JupyterLab in headless
Chromium. The quick suite (`make quick`, under a minute) is `pytest -m "not slow and not browser" tests`; CI runs all.
Hypothesis runs derandomized: the same examples on every run, so a statistical test cannot fail by chance in CI.
"""

import sys
from pathlib import Path

from hypothesis import settings

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests' own helpers (notebook_source)
settings.register_profile("course", derandomize=True, deadline=None, print_blob=True)
settings.load_profile("course")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "browser: drives JupyterLab in headless Chromium (slow; needs /usr/bin/chromium)"
    )
    config.addinivalue_line(
        "markers", "slow: starts kernels or subprocesses, or trains for many steps (not in the quick suite)"
    )
