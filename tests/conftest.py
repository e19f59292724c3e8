"""Markers for the test suite: `browser` tests drive JupyterLab in headless Chromium (deselect with -m "not browser")."""


def pytest_configure(config):
    config.addinivalue_line("markers", "browser: drives JupyterLab in headless Chromium (slow; needs /usr/bin/chromium)")
