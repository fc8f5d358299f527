"""`cocomix-lens app`: the Streamlit app (browse concepts, inspect text, steer, watch training).

    cocomix-lens app --run runs/demo                 # http://127.0.0.1:8501
    cocomix-lens app --root runs --port 8600         # pick any run under runs/ in the sidebar

The run directory is checked before the server starts; the app itself only reads runs through
`cocomix_lens.rundir.Run`, and never opens a path outside the root (default: the run's parent).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path

from training.flags import number

HELP = "open the Streamlit app on a run (concepts, inspect, steer, training)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", help="run directory opened first (a pipeline or train run)")
    p.add_argument("--root", help="directory whose runs the sidebar offers "
                                  "(default: the parent of --run)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=number(1, 65535), default=8501, help="port (default 8501)")
    p.add_argument("--device", default="cpu", help="torch device for the models (default cpu)")


def app_environment(args: argparse.Namespace) -> dict[str, str]:
    """The variables the app reads (app/config.py): root, first run, device."""
    from cocomix_lens.rundir import Run

    if not args.run and not args.root:
        raise ValueError("give --run DIR (a run directory) or --root DIR (a folder of runs)")
    root = Path(args.root or Path(args.run).resolve().parent).resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"--root {root} is not a directory: pass a folder of runs")
    env = {"COCOMIX_LENS_APP_ROOT": str(root), "COCOMIX_LENS_APP_DEVICE": args.device}
    if args.run:
        run = Path(args.run).resolve()
        Run.open(run)  # a one-line error now rather than in the browser
        if not run.is_relative_to(root):
            raise ValueError(f"--run {run} is not inside --root {root}: pass a run under the "
                             "root, or leave --root out")
        env["COCOMIX_LENS_APP_RUN"] = run.relative_to(root).as_posix()
    return env


def streamlit_command(host: str, port: int) -> list[str]:
    import app

    script = Path(app.__file__).parent / "main.py"
    return [sys.executable, "-m", "streamlit", "run", str(script),
            "--server.address", host, "--server.port", str(port),
            "--server.headless", "true", "--browser.gatherUsageStats", "false",
            "--server.maxUploadSize", str(MAX_UPLOAD_MB),
            "--server.fileWatcherType", "none", "--global.developmentMode", "false",
            "--client.toolbarMode", "viewer"]


LOOPBACK = ("127.0.0.1", "localhost", "::1")
MAX_UPLOAD_MB = 1  # the only upload is a steering spec (MAX_SPEC_BYTES); Streamlit's 200 MB
# default lets one request cost the server far more than any valid spec


def host_warning(host: str) -> str | None:
    """The warning for a non-loopback --host (the app has no login), else None."""
    if host in LOOPBACK or host.startswith("127."):
        return None
    return (f"cocomix-lens app: warning: --host {host} serves the app to every machine that "
            "can reach this one, and the app has no login; use --host 127.0.0.1 (the "
            "default) unless that is what you want")


def run(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("streamlit") is None:  # the `app` extra is not installed
        raise ModuleNotFoundError("No module named 'streamlit'", name="streamlit")
    env = {**os.environ, **app_environment(args)}
    warning = host_warning(args.host)
    if warning:
        print(warning, file=sys.stderr, flush=True)
    # The repo root first, so a source checkout's app/ and library win over any installed copy.
    repo = str(Path(__file__).absolute().parents[2])
    env["PYTHONPATH"] = os.pathsep.join([repo, *filter(None, [env.get("PYTHONPATH")])])
    print(f"cocomix-lens app: http://{args.host}:{args.port} (Ctrl-C stops it)", flush=True)
    # Become the Streamlit server (no wrapper process): a signal to this PID stops the server
    # itself, so no server outlives the command that started it.
    cmd = streamlit_command(args.host, args.port)
    os.execve(cmd[0], cmd, env)
    return 0  # not reached
