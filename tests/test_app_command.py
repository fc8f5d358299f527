"""`cocomix-lens app`: checks the run before starting Streamlit, binds to localhost by default."""

from __future__ import annotations

import pytest

from training import cli
from training.commands.app import app_environment, streamlit_command


def _run_dir(path):
    (path / "stages").mkdir(parents=True)
    (path / "pipeline.json").write_text("{}")
    return path


def _args(*argv):
    return cli.build_parser().parse_args(["app", *argv])


def test_defaults_bind_localhost_8501_and_the_root_is_the_runs_parent(tmp_path):
    run = _run_dir(tmp_path / "runs" / "demo")
    args = _args("--run", str(run))
    assert (args.host, args.port) == ("127.0.0.1", 8501)
    env = app_environment(args)
    assert env["COCOMIX_LENS_APP_ROOT"] == str((tmp_path / "runs").resolve())
    assert env["COCOMIX_LENS_APP_RUN"] == "demo"
    cmd = streamlit_command(args.host, args.port)
    assert cmd[1:4] == ["-m", "streamlit", "run"] and cmd[4].endswith("app/main.py")
    assert cmd[cmd.index("--server.address") + 1] == "127.0.0.1"
    assert cmd[cmd.index("--server.port") + 1] == "8501"


@pytest.mark.parametrize("argv, message", [
    ([], "give --run DIR"),
    (["--run", "{tmp}/missing"], "is not a run directory"),
    (["--root", "{tmp}/nowhere"], "is not a directory"),
    (["--run", "{tmp}/runs/demo", "--root", "{tmp}/other"], "is not inside --root"),
])
def test_bad_arguments_are_one_line_errors_before_streamlit_starts(tmp_path, capsys, argv,
                                                                    message):
    _run_dir(tmp_path / "runs" / "demo")
    (tmp_path / "other").mkdir()
    code = cli.main(["app", *[a.format(tmp=tmp_path) for a in argv]])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and message in err, err
