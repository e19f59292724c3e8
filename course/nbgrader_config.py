"""nbgrader's configuration for this course: copy this file into your nbgrader course directory as
`nbgrader_config.py` (next to `source/`), then run nbgrader from there with this repository's environment first on
PATH (nbgrader starts `alembic` and the `python3` kernel from PATH):

    PATH=/path/to/course-repo/.venv/bin:$PATH nbgrader generate_assignment <assignment>

`tests/test_nbgrader.py` runs exactly this workflow on two notebooks in CI (README, "For instructors").

What the course needs beyond nbgrader's defaults:
- A cell timeout that fits the course's training. nbgrader's default is 30 s per cell, and 01's training cell
  alone runs longer even in fast mode on a busy machine; 900 s is `render`'s own limit per cell, which the full-mode
  training cells stay under when no trained model is cached yet.
- The mode. The graded checks test each student function on small cases of their own, so a verdict is the same in
  fast mode (the CI subset of MNIST, a few epochs) and in full mode, and a fast-mode run takes the README's
  fast-mode time per notebook instead of the full one. Set LECTURELIB_FAST=0 in the environment of
  `nbgrader autograde` to grade in full mode. The kernels inherit nbgrader's environment, so the variable set
  here reaches them.
- The speaker notes stay out of the release: cells tagged `instructor` (convention C4) are removed by nbconvert's
  TagRemovePreprocessor before nbgrader's own steps, as in the course's student edition (course/student.py).
  They are text cells outside nbgrader's bookkeeping, so autograding and feedback are unaffected.
- Trained models are cached where lecturelib.runtime.checkpoint_dir() says ($LECTURELIB_CHECKPOINTS, else the
  clone's checkpoints/): the first submission trains, the next ones load the cache.
"""

import os

from nbconvert.preprocessors import TagRemovePreprocessor
from nbgrader.converters import GenerateAssignment

c = get_config()  # noqa: F821 - nbgrader's config loader defines get_config

# seconds one cell may run while autograding (nbgrader's Execute preprocessor); nbgrader's default is 30
c.Execute.timeout = 900
# a cell that times out is interrupted and recorded as an error; the rest of the notebook still runs
c.Execute.interrupt_on_timeout = True
# seconds to wait for a cell's last output after it finished: nbgrader's default (4 s, and then the whole submission
# fails to grade) is too short on a busy grading machine, where a training cell's final lines can arrive late
c.Execute.iopub_timeout = 120

# grade in fast mode unless the environment says otherwise (the verdicts do not depend on the mode)
os.environ.setdefault("LECTURELIB_FAST", "1")

# the release leaves out the instructor's speaker notes (cells tagged `instructor`), first of all other steps
c.TagRemovePreprocessor.enabled = True
c.TagRemovePreprocessor.remove_cell_tags = {"instructor"}
c.GenerateAssignment.preprocessors = [
    TagRemovePreprocessor,
    *GenerateAssignment.class_traits()["preprocessors"].default(),
]
