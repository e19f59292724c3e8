"""pytest settings shared by the unit tests and the notebooks (run under nbval)."""

import os

# Tests and notebooks under pytest run CI-sized, whatever the caller's shell says (nothing in the course uses the
# network: all of MNIST ships in data/).
os.environ.setdefault("LECTURELIB_FAST", "1")
