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

from handbench.errors import HandbenchError


def build_parser() -> argparse.ArgumentParser:
    import handbench
    import handbench.commands as commands

    parser = argparse.ArgumentParser(
        prog="handbench", description="Imitation-learning benchmark for dexterous robot hands in MuJoCo."
    )
    parser.add_argument("--version", action="version", version=f"handbench {handbench.__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{module_info.name}")
        if hasattr(module, "register"):
            module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except HandbenchError as exc:
        print(f"handbench {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"handbench {args.command}: interrupted; finished work is kept, rerun to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
