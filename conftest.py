"""pytest settings shared by the unit tests and the notebooks (run under nbval)."""
import os

# Tests and notebooks under pytest run CI-sized and never use the network, whatever the caller's shell says.
os.environ.setdefault("LECTURELIB_FAST", "1")
os.environ.setdefault("LECTURELIB_OFFLINE", "1")
