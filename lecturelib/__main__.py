"""`python -m lecturelib render ...`: the course's command line (see lecturelib.render)."""
from __future__ import annotations

import sys

COMMANDS = {"render": "execute every notebook into build/ as notebooks, HTML and slides (--student: the student edition), and print a summary"}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        print("usage: python -m lecturelib <command> [options]\n\ncommands:", file=sys.stderr)
        for name, what in COMMANDS.items():
            print(f"  {name:<8} {what}", file=sys.stderr)
        return 0 if argv[:1] in (["-h"], ["--help"]) else 2
    from lecturelib import render

    return render.main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
