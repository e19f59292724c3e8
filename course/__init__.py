"""The course's tools, beside the package the notebooks import: render (notebooks into build/, HTML, slide decks,
the student edition), bench (training speed against the pytorch/examples VAE) and data (the shipped MNIST file).

One command line: `python -m course render | bench | data` (see `python -m course --help`). Notebooks never import
this package; it imports lecturelib.
"""
