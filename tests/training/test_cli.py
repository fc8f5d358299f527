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


def test_no_library_error_names_a_bare_cli_flag():
    """Library messages name API arguments; a flag may appear only inside a whole
    `cocomix-lens CMD ...` command the message quotes."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "cocomix_lens"
    bad = []
    for path in root.rglob("*.py"):
        lines = path.read_text().splitlines()
        for n, line in enumerate(lines, 1):
            quoted_command = "cocomix-lens " in line + lines[n - 2] or "{MAKE" in line
            if line.strip().startswith("#") or quoted_command:
                continue
            for lit in re.findall(r'"([^"]*)"', line):
                if re.search(r"(?<![\w-])--[a-z][a-z_-]*", lit) and "cocomix-lens" not in lit:
                    bad.append(f"{path.relative_to(root)}:{n}: {lit}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("module,extra", [("scipy", "train"), ("streamlit", "app"),
                                          ("kaleido.scopes", "train")])
def test_a_missing_optional_dependency_names_the_extra_that_installs_it(module, extra):
    err = ModuleNotFoundError(f"No module named {module!r}", name=module)
    message = cli.describe_error(err, argparse.Namespace(command="study"))
    assert f"pip install 'cocomix-lens[{extra}]'" in message and "\n" not in message
