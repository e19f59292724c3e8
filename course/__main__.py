"""`python -m course <command> [options]`: the course's one command line."""

from __future__ import annotations

import sys

COMMANDS = {
    "render": "execute every notebook into build/ as notebooks, HTML and slides (--student: the student edition)",
    "present": "write the presenter edition (no solutions, speaker notes kept) into build/present for `make present`",
    "bench": "time the course's training path against the pytorch/examples VAE (docs/benchmarks.md)",
    "data": "check data/mnist.npz, export the official IDX files from it, or build it from them",
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        print("usage: python -m course <command> [options]\n\ncommands:", file=sys.stderr)
        for name, what in COMMANDS.items():
            print(f"  {name:<7} {what}", file=sys.stderr)
        return 0 if argv[:1] in (["-h"], ["--help"]) else 2
    command, rest = argv[0], argv[1:]
    if command == "render":
        from course import render

        return render.main(rest)
    if command == "present":
        from course import render

        return render.present_main(rest)
    if command == "bench":
        from course import bench

        bench.main(rest)
        return 0
    from course import build_data

    return build_data.main(rest)


if __name__ == "__main__":
    sys.exit(main())
