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


@pytest.mark.parametrize("host, warns", [("127.0.0.1", False), ("localhost", False),
                                         ("::1", False), ("0.0.0.0", True), ("::", True),
                                         ("192.168.1.5", True)])
def test_a_non_loopback_host_is_warned_about_in_one_line(host, warns):
    from training.commands.app import host_warning

    text = host_warning(host)
    assert (text is not None) == warns
    if warns:
        assert f"--host {host}" in text and "no login" in text and "\n" not in text


def test_uploads_are_capped_at_the_server_and_the_port_is_bounded(capsys):
    from cocomix_lens.steering.spec import MAX_SPEC_BYTES
    from training.commands.app import MAX_UPLOAD_MB

    cmd = streamlit_command("127.0.0.1", 8501)
    assert cmd[cmd.index("--server.maxUploadSize") + 1] == str(MAX_UPLOAD_MB)
    assert MAX_SPEC_BYTES <= MAX_UPLOAD_MB << 20
    for port in ("0", "99999", "-1", "http"):
        with pytest.raises(SystemExit):
            cli.main(["app", "--run", "r", "--port", port])
        err = capsys.readouterr().err.strip()
        assert "--port" in err and len(err.splitlines()) == 1
