"""The `cocomix-lens` command: wires library, training and app together.

Each subcommand lives in `training/commands/<name>.py` and exposes
`HELP: str`, `add_arguments(parser)` and `run(args) -> int | None`. Modules are imported
lazily so `cocomix-lens prepare` does not pay for importing the trainer.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# name -> module; a registry instead of an if/elif chain.
COMMANDS: dict[str, str] = {
    "prepare": "training.commands.prepare",
    "labels": "training.commands.labels",
    "train": "training.commands.train",
    "pipeline": "training.commands.pipeline",
    "steer-eval": "training.commands.steer_eval",
}


def _available() -> dict[str, object]:
    mods = {}
    for name, path in COMMANDS.items():
        try:
            mods[name] = importlib.import_module(path)
        except ModuleNotFoundError as err:
            if err.name != path:  # a real missing dependency: surface it
                raise
    return mods


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cocomix-lens", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, mod in _available().items():
        p = sub.add_parser(name, help=getattr(mod, "HELP", None))
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    level = logging.DEBUG if args.verbose else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args._extra = extra  # dotted overrides (e.g. --optim.lr 3e-4) for commands that take them
    if extra and not getattr(args, "_accepts_overrides", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return int(args._run(args) or 0)
    except (ValueError, FileNotFoundError, FileExistsError, RuntimeError) as err:
        # Errors from the library are written to be read: one line, no traceback.
        logging.getLogger("cocomix_lens").debug("traceback", exc_info=True)
        print(f"cocomix-lens {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
