"""The ``handbench`` command line. Each subcommand lives in ``handbench/commands/<name>.py``.

A command module defines ``register(subparsers)``, which adds its parser and sets ``func`` to a
function taking the parsed arguments and returning an exit code. User errors
(:class:`HandbenchError`) are printed as one line, without a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from typing import NoReturn

from handbench.errors import HandbenchError

RESUMABLE = ("eval", "generate-demos")  # their finished episodes are on disk: a rerun resumes


class OneLineParser(argparse.ArgumentParser):
    """An argparse parser whose usage errors are one line naming the bad option and where help is."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def interrupted_message(command: str, exc: KeyboardInterrupt) -> str:
    """What Ctrl-C leaves behind: the command's own account if it gave one, else the general rule."""
    if str(exc):
        return f"interrupted; {exc}"
    if command in RESUMABLE:
        return "interrupted; finished episodes are kept, rerun the same command to resume"
    return "interrupted; outputs are written atomically, so nothing half-written is left"


def build_parser() -> argparse.ArgumentParser:
    import handbench.commands as commands
    from handbench.version import __version__

    parser = OneLineParser(
        prog="handbench", description="Imitation-learning benchmark for dexterous robot hands in MuJoCo."
    )
    parser.add_argument("--version", action="version", version=f"handbench {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{module_info.name}")
        if hasattr(module, "register"):
            module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # usage error (one line, printed) or --help/--version: an exit code, in-process too
        return exc.code if isinstance(exc.code, int) else 2
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from handbench.rendering import gl_setting_problem

    problem = gl_setting_problem()
    if problem and args.command != "doctor":  # doctor reports it among its checks
        print(f"handbench {args.command}: error: {problem}", file=sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except HandbenchError as exc:
        print(f"handbench {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print(f"handbench {args.command}: {interrupted_message(args.command, exc)}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
