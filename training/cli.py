"""The `cocomix-lens` command: wires library, training and app together.

Each subcommand lives in `training/commands/<name>.py` and exposes
`HELP: str`, `add_arguments(parser)` and `run(args) -> int | None`. Modules are imported
lazily so `cocomix-lens prepare` does not pay for importing the trainer.

Every failure a user can cause ends as one line on stderr, `cocomix-lens CMD: error: ...`,
naming the file or flag and the fix, with exit code 2 (130 on Ctrl-C); `--debug` adds the
traceback.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import re
import sys
from collections.abc import Callable, Iterable

# name -> module; a registry instead of an if/elif chain.
COMMANDS: dict[str, str] = {
    "prepare": "training.commands.prepare",
    "labels": "training.commands.labels",
    "train": "training.commands.train",
    "pipeline": "training.commands.pipeline",
    "catalog": "training.commands.catalog",
    "concepts": "training.commands.concepts",
    "inspect": "training.commands.inspect",
    "generate": "training.commands.generate",
    "steer-eval": "training.commands.steer_eval",
    "steer-bench": "training.commands.steer_bench",
    "study": "training.commands.study",
    "app": "training.commands.app",
}

# errno -> (what happened, the fix) for OSErrors that carry no message of ours.
OS_ERRORS: dict[int, tuple[str, str]] = {
    errno.ENOSPC: ("no space left on the device", "free disk space or choose another --out"),
    errno.EDQUOT: ("disk quota exceeded", "free disk space or choose another --out"),
    errno.EROFS: ("read-only file system", "choose a writable --out"),
    errno.EACCES: ("permission denied", "fix the permissions or choose another path"),
    errno.EPERM: ("operation not permitted", "fix the permissions or choose another path"),
    errno.ENOTDIR: ("a component of the path is not a directory", "check the path"),
    errno.EISDIR: ("is a directory, a file was expected", "pass a file"),
    errno.ENOENT: ("no such file or directory", "check the path"),
    errno.EEXIST: ("already exists", "choose another path"),
    errno.ENAMETOOLONG: ("file name too long", "choose a shorter path"),
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


class OneLineParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line (with the fix), like every other error."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}; fix: see `{self.prog} --help`\n")


def build_parser(commands: Iterable[str] | None = None) -> argparse.ArgumentParser:
    """The `cocomix-lens` parser. Only the subcommands in `commands` (default: all) get their
    arguments; the others get their help line only, so `cocomix-lens --help` and
    `cocomix-lens CMD ...` import no other command's dependencies."""
    import cocomix_lens

    parser = OneLineParser(prog="cocomix-lens", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version",
                        version=f"%(prog)s {cocomix_lens.__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--debug", action="store_true",
                        help="print the traceback of an error (and debug logging)")
    sub = parser.add_subparsers(dest="command", required=True)
    wanted = set(COMMANDS if commands is None else commands)
    for name, mod in _available().items():
        p = sub.add_parser(name, help=getattr(mod, "HELP", None))
        if name in wanted:
            mod.add_arguments(p)
            p.set_defaults(_run=mod.run)
    return parser


def command_of(argv: list[str]) -> str | None:
    """The subcommand named in `argv` (the first word that is one), or None."""
    return next((word for word in argv if word in COMMANDS), None)


# ---- one line per failure -----------------------------------------------------------------
def _os_error(err: OSError, args: argparse.Namespace) -> str:
    if err.strerror and "fix:" in err.strerror:  # a message of ours already names both
        return err.strerror
    what, fix = OS_ERRORS.get(err.errno, (err.strerror or str(err), "check the path"))
    where = err.filename or getattr(args, "out", None) or "a file"
    return f"{where}: {what}; fix: {fix}"


def _yaml_error(err: Exception, args: argparse.Namespace) -> str:
    first = " ".join(str(err).split())[:200]
    return (f"--config {getattr(args, 'config', None)} is not valid YAML ({first}); fix: "
            "correct the file or pass a bundled config name")


def _safetensors_error(err: Exception, args: argparse.Namespace) -> str:
    return (f"a safetensors file is damaged ({err}); fix: re-create the checkpoint or model "
            "it belongs to (see --debug for which)")


def _plain(err: Exception, args: argparse.Namespace) -> str:
    return str(err).replace("\n", " ")


def _unexpected(err: Exception, args: argparse.Namespace) -> str:
    text = " ".join(str(err).split())[:300]
    return (f"unexpected {type(err).__name__}: {text}; fix: check the inputs and flags, rerun "
            "with --debug for the traceback (and report it if the inputs are right)")


# The extra (pyproject [project.optional-dependencies]) that installs a missing module.
EXTRAS = {"streamlit": "app", "plotly": "app,train", "scipy": "train", "kaleido": "train"}


def _missing_module(err: ModuleNotFoundError, args: argparse.Namespace) -> str:
    top = (err.name or "").split(".")[0]
    if top not in EXTRAS:
        return _unexpected(err, args)
    return (f"this command needs {top}, which is not installed; fix: "
            f"pip install 'cocomix-lens[{EXTRAS[top]}]'")


def _formatters() -> list[tuple[type[BaseException], Callable]]:
    """(exception type, formatter) in lookup order: most specific first."""
    table: list[tuple[type[BaseException], Callable]] = []
    try:
        import yaml

        table.append((yaml.YAMLError, _yaml_error))
    except ImportError:  # pragma: no cover
        pass
    try:
        from safetensors import SafetensorError

        table.append((SafetensorError, _safetensors_error))
    except ImportError:  # pragma: no cover
        pass
    table += [(ModuleNotFoundError, _missing_module), (FileNotFoundError, _plain),
              (FileExistsError, _plain),
              (OSError, _os_error), (ValueError, _plain), (RuntimeError, _plain),
              (Exception, _unexpected)]
    return table


def describe_error(err: BaseException, args: argparse.Namespace) -> str:
    """The one-line message for `err` (no newline inside), in CLI words: each remedy the
    library attached (`cocomix_lens.remedy`) as the command to type, and API argument names
    (`window=64`) as the command's flags (`--window 64`)."""
    from cocomix_lens.remedy import remedies_of

    for tp, fmt in _formatters():
        if isinstance(err, tp):
            if tp in (FileNotFoundError, FileExistsError) and err.filename:
                return _os_error(err, args)  # raised by the OS, not by us: name the file
            text = fmt(err, args)
            for remedy in remedies_of(err):
                text = text.replace(str(remedy), as_command(remedy))
            return as_flags(" ".join(text.split()), getattr(args, "command", None))
    return _unexpected(err, args)  # pragma: no cover


def as_command(remedy) -> str:
    """A library Remedy in CLI words: its verb and the command line of its step, each API
    argument as that command's flag (`force=True` -> `--force`)."""
    import shlex

    names = flag_names(remedy.step)
    words = ["cocomix-lens", remedy.step]
    for name, value in remedy.args.items():
        flag = names.get(name, "--" + name.replace("_", "-"))
        if value is True:
            words.append(flag)
        elif value is not None and value is not False:
            words += [flag, str(value)]
    command = shlex.join(words) + (" ..." if remedy.more and remedy.args else "")
    same = " with the same flags" if remedy.more and not remedy.args else ""
    return f"{remedy.verb} `{command}`{same}"


# Library argument names that a command's flag of another name sets (LabelCache.build(root)
# is labels --out).
API_ALIASES = {"root": "out", "out_dir": "out", "n_samples": "samples"}


def flag_names(command: str | None) -> dict[str, str]:
    """{API argument name: flag} of a command: its options' dests (`max_new_tokens` ->
    `--max-new-tokens`), the one mapping from library wording to CLI wording."""
    mod = _available().get(command) if command else None
    if mod is None:
        return {}
    parser = argparse.ArgumentParser(add_help=False)
    mod.add_arguments(parser)
    flags = {a.dest: a.option_strings[0] for a in parser._actions if a.option_strings}
    return {**{api: flags[dest] for api, dest in API_ALIASES.items() if dest in flags}, **flags}


def as_flags(text: str, command: str | None) -> str:
    """`text` with each `name=value` of an API argument the command has as a flag written
    `--flag value` (`name=` inside dotted or quoted words is left alone)."""
    names = flag_names(command)
    if not names:
        return text
    pattern = re.compile(r"(?<![\w.\-'\"])(" + "|".join(map(re.escape, names)) + r")=")
    return pattern.sub(lambda m: f"{names[m.group(1)]} ", text)


def retyped(argv: list[str], flags: dict[str, tuple[list[str], str | None]]) -> str:
    """The command line `cocomix-lens argv` with each setting retyped: {name: (the spellings a
    user may have typed it with, the first the one to write; its value, or None to drop it)};
    the one place that turns "these settings" into the whole command to type."""
    import shlex

    spelled = {s: name for name, (spellings, _) in flags.items() for s in spellings}
    kept, i = [], 0
    while i < len(argv):
        word = argv[i]
        head, eq, _ = word.partition("=")
        if head in spelled:  # dropped with its value; written again below
            i += 1 if eq or i + 1 >= len(argv) else 2
            continue
        kept.append(word)
        i += 1
    for spellings, value in flags.values():
        if value is not None:
            kept += [spellings[0], value]
    return shlex.join(["cocomix-lens", *kept])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    name = command_of(argv)
    parser = build_parser([name] if name else [])
    args, extra = parser.parse_known_args(argv)
    level = logging.DEBUG if args.verbose or args.debug else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args._argv = argv  # what was typed: an error's fix may be the whole command, retyped
    args._extra = extra  # dotted overrides (e.g. --optim.lr 3e-4) for commands that take them
    if extra and not getattr(args, "_accepts_overrides", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print(f"cocomix-lens {args.command}: interrupted; fix: re-run the same command to "
              "resume", file=sys.stderr)
        return 130
    except Exception as err:
        if args.debug:
            import traceback

            traceback.print_exc()
        print(f"cocomix-lens {args.command}: error: {describe_error(err, args)}",
              file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
