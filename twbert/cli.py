"""The `twbert` command line: one subcommand per job, each defined in its own module.

Each command module exposes `register(subparsers)`, which adds its parser and sets `func` to the
function that runs it. Command modules import heavy libraries (torch, datatrove) inside `func`
only, so `twbert --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from twbert.errors import UsageError

# Order here is the order in `twbert --help`: the data flow, front to back.
COMMANDS = [
    "twbert.commands.sample",
    "twbert.commands.build",
    "twbert.commands.variant",
    "twbert.commands.dedup",
    "twbert.commands.tokenizer",
    "twbert.commands.inspect",
    "twbert.commands.train",
    "twbert.commands.export",
    "twbert.commands.eval",
    "twbert.commands.finetune",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="twbert",
        description="Turn Chinese web and Wikipedia dumps into clean Taiwan-form MDS shards, "
        "inspect them, and pretrain a ModernBERT-style encoder on them by streaming.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:  # command not built yet
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args) or 0
    except UsageError as e:
        print(f"twbert {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a data error raised inside a task: one line, the traceback on request
        if os.environ.get("TWBERT_TRACEBACK"):
            raise
        # Only commands that run datatrove tasks set `task_logs` (where their per-task logs are).
        logs = getattr(args, "task_logs", None)
        where = f"; datatrove task logs are under {logs}" if logs else ""
        print(f"twbert {args.command}: error: {type(e).__name__}: {e}\n"
              f"(set TWBERT_TRACEBACK=1 for the traceback{where})", file=sys.stderr)
        return 1


if __name__ == "__main__":
    # Run through the imported module, so that UsageError here is the class commands raise.
    from twbert.cli import main as _main

    sys.exit(_main())
