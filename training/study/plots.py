"""The study's figures as files: HTML (plotly.js from its CDN, so the files stay small) and PNG.

The figures themselves are `report/study.py`'s, which the app draws
too. PNG goes through kaleido 0.2.1's own PlotlyScope with plotly's bundled plotly.js: it
ships its own chromium, so it needs no browser and no network. (Plotly >= 6.1's
`fig.write_image` asks for kaleido >= 1, which drives a Chrome installed on the machine.)
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import signal
import threading
from pathlib import Path
from typing import Any

from report.study import FIGURES, figures

__all__ = ["FIGURES", "png_available", "write_figures", "write_png"]
log = logging.getLogger(__name__)
PNG_SIZE = (900, 520)
NO_KALEIDO = "PNG not written: kaleido is not installed (pip install kaleido==0.2.1)"
PNG_TIMEOUT_S = 120.0
"""Seconds for every figure together: the bundled chromium still hangs now and then (here once
under load, reading forever for 19 minutes); after this it is killed and only HTML written."""


def png_available() -> bool:
    return importlib.util.find_spec("kaleido") is not None


def write_png(figs: dict[str, Any], out: Path) -> list[str]:
    """Each figure as out/<name>.png (one headless chromium for all); the names written."""
    from importlib.resources import files

    from kaleido.scopes.plotly import PlotlyScope

    # The local plotly.js: without it the scope loads plotly.js from a CDN and fails offline.
    # No MathJax: the figures use no LaTeX. --single-process: without it the bundled
    # chromium hung on its first figure in 5 of 7 fresh processes here (10/10 fine with it).
    scope = PlotlyScope(plotlyjs=str(files("plotly") / "package_data" / "plotly.min.js"),
                        mathjax=False, chromium_args=(*PlotlyScope.default_chromium_args(),
                                                      "--single-process"))
    width, height = PNG_SIZE
    written = []
    # Set before the kill, not read from the timer's thread: the blocked read ends while that
    # thread may still be killing the rest of the tree (is_alive() was True then, under load).
    fired = threading.Event()

    def stop() -> None:
        fired.set()
        _kill_tree(scope)

    watchdog = threading.Timer(PNG_TIMEOUT_S, stop)
    watchdog.start()
    try:
        for name, fig in figs.items():
            png = scope.transform(json.loads(fig.to_json()), format="png", width=width,
                                  height=height)
            (out / f"{name}.png").write_bytes(png)
            written.append(f"{name}.png")
    except ValueError:  # kaleido's own error for a closed pipe
        if not fired.is_set():
            raise
        raise RuntimeError(f"kaleido gave no figure within {PNG_TIMEOUT_S:.0f} s and was "
                           "stopped") from None
    finally:
        watchdog.cancel()
    return written


def _kill_tree(scope: Any) -> None:
    """SIGKILL kaleido's process and its descendants (its launcher script runs the chromium
    binary as a child, which would keep the pipe open): the blocked read then ends."""
    proc = getattr(scope, "_proc", None)
    if proc is None:
        return
    doomed, children = [proc.pid], _children()
    for pid in doomed:  # grows while walking: breadth first
        doomed += children.get(pid, [])
    for pid in reversed(doomed):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:  # gone already
            pass


def _children() -> dict[int, list[int]]:
    """{pid: child pids} of every process, from /proc (empty where there is none)."""
    tree: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        tree.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    return tree


def write_figures(out: Path, curves: dict, claims: list[dict], table: list[dict]
                  ) -> dict[str, Any]:
    """Write every figure as HTML (and PNG when kaleido is there); what was written."""
    out.mkdir(parents=True, exist_ok=True)
    figs = figures({"curves": curves, "claims": claims, "ablations": table})
    files = []
    for name, fig in figs.items():
        fig.write_html(out / f"{name}.html", include_plotlyjs="cdn")
        files.append(f"{name}.html")
    if not png_available():
        return {"files": files, "png": False, "note": NO_KALEIDO}
    try:
        files += write_png(figs, out)
    except (OSError, RuntimeError, ValueError) as err:
        # the HTML is written; a study that trained for hours must not fail on a picture
        why = (str(err).strip().splitlines() or [type(err).__name__])[0]
        log.warning("study figures: PNG failed (%s); the HTML files are written", why)
        return {"files": files, "png": False, "note": f"PNG not written: kaleido failed: {why}"}
    return {"files": files, "png": True, "note": None}
