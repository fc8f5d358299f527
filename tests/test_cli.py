"""The `cocomix-lens` command: subcommand registry and one-line errors."""

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
