"""The `cocomix-lens` command: subcommand registry and one-line errors."""

import argparse

import pytest

from training import cli


def test_every_registered_subcommand_is_available():
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert sorted(sub.choices) == sorted(cli.COMMANDS)


def test_library_errors_are_one_line_without_traceback(tmp_path, capsys):
    code = cli.main(["train", "--objective", "ntp", "--data", str(tmp_path / "missing"),
                     "--out", str(tmp_path / "out"), "--max-steps", "1"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("cocomix-lens train: error:") and "\n" not in err
    assert "Traceback" not in err


def test_unknown_arguments_are_refused():
    with pytest.raises(SystemExit):
        cli.main(["prepare", "--no-such-flag"])


def test_library_argument_names_are_spelled_as_the_commands_flags():
    from training.cli import as_flags

    text = ("window=64 exceeds the teacher's context; fix: pass window=32; "
            "CoCoMixConfig.d_model=3 stays; --optim.lr=nan stays; another root=DIR")
    assert as_flags(text, "labels") == (
        "--window 64 exceeds the teacher's context; fix: pass --window 32; "
        "CoCoMixConfig.d_model=3 stays; --optim.lr=nan stays; another --out DIR")
    assert as_flags("max_new_tokens=9 must", "generate") == "--max-new-tokens 9 must"
    assert as_flags("window=64", None) == "window=64"


def test_no_library_message_quotes_a_cli_command_or_flag():
    """Library messages name steps and API arguments (cocomix_lens.remedy); the CLI spells
    them as the commands and flags to type (describe_error)."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "cocomix_lens"
    command = re.compile(r"cocomix-lens (?:" + "|".join(map(re.escape, cli.COMMANDS)) + r")\b")
    flag = re.compile(r"(?<![\w-])--[a-z][a-z_-]*")
    bad = []
    for path in root.rglob("*.py"):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if line.strip().startswith("#"):
                continue
            for lit in re.findall(r'(?<!")"([^"]+)"(?!")', line):  # not docstrings
                if flag.search(lit) or command.search(lit):
                    bad.append(f"{path.relative_to(root)}:{n}: {lit}")
    assert not bad, "\n".join(bad)


def test_a_library_remedy_is_spelled_as_the_command_to_type(tmp_path):
    """The library words a fix as a step and its API arguments; the CLI's one formatter
    (describe_error) rewrites it as the command line, wherever the error was raised from."""
    from cocomix_lens.remedy import Remedy, attach

    fix = Remedy("prepare", {"out": tmp_path / "d", "force": True})
    err = attach(ValueError(f"{tmp_path}/d/train.bin is damaged; fix: {fix}"), fix)
    assert str(err).endswith(f"fix: re-run the prepare step (out='{tmp_path}/d', force=True)")
    train = argparse.Namespace(command="train")
    assert cli.describe_error(err, train).endswith(
        f"fix: re-run `cocomix-lens prepare --out {tmp_path}/d --force`")
    try:  # wrapped by a caller: the remedy travels with the cause
        raise ValueError(f"stage failed: {err}") from err
    except ValueError as outer:
        assert cli.describe_error(outer, train).endswith("--force`")
    resume = Remedy("labels", more=True)
    assert cli.describe_error(attach(ValueError(f"fix: {resume} to resume"), resume), train) \
        == "fix: re-run `cocomix-lens labels` with the same flags to resume"
    dense = Remedy("steer-eval", {"run": "r", "densest": 10, "n_samples": 4}, verb="run")
    assert cli.as_command(dense) == "run `cocomix-lens steer-eval --run r --densest 10 " \
                                    "--n-samples 4`"


def test_a_directory_that_is_no_run_names_the_commands_that_make_one(tmp_path, capsys):
    assert cli.main(["concepts", "--run", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith(f"fix: run `cocomix-lens pipeline --out {tmp_path}` or run "
                        f"`cocomix-lens train --out {tmp_path}`"), err


@pytest.mark.parametrize("module,extra", [("scipy", "train"), ("streamlit", "app"),
                                          ("kaleido.scopes", "train")])
def test_a_missing_optional_dependency_names_the_extra_that_installs_it(module, extra):
    err = ModuleNotFoundError(f"No module named {module!r}", name=module)
    message = cli.describe_error(err, argparse.Namespace(command="study"))
    assert f"pip install 'cocomix-lens[{extra}]'" in message and "\n" not in message
