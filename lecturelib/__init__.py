"""lecturelib: the plumbing behind the auto-encoder and VAE notebooks.

The notebooks teach; this package carries the data, device, models, objectives, training loop (with its checkpoint
store and the course's training recipes), sample scores and image measurements, plots, controls and the exercises'
checkers. The course's tools (render, bench) live beside it in `course/`.
Import the modules you need explicitly (``from lecturelib import data, train``); importing has no side effects.
"""

__version__ = "0.1.0"
__all__ = [
    "runtime",
    "data",
    "models",
    "objectives",
    "train",
    "checkpoints",
    "recipes",
    "metrics",
    "plots",
    "controls",
    "claims",
    "lvm",
    "quality",
    "measures",
    "checks",
    "exercises",
]
