"""The study's PNG export (training/study/plots.py): a kaleido that never answers is stopped
after PNG_TIMEOUT_S, with its child processes, and the study writes its HTML figures only."""

import subprocess

import pytest

from training.study import plots


class HungScope:
    """A kaleido scope whose process (a launcher with a child holding the pipe, as kaleido's
    script and chromium do) never answers: `transform` reads until the pipe closes."""

    def __init__(self, **kwargs):
        self._proc = subprocess.Popen(["bash", "-c", "sleep 300 && true"], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE)

    @staticmethod
    def default_chromium_args():
        return ()

    def transform(self, figure, **kwargs):
        if not self._proc.stdout.readline():
            raise ValueError("Transform failed. Error stream:")  # kaleido's own wording


def test_a_hung_kaleido_is_stopped_and_the_study_writes_its_html(tmp_path, monkeypatch):
    pytest.importorskip("kaleido")
    import kaleido.scopes.plotly

    scopes = []

    class Recorded(HungScope):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            scopes.append(self)

    monkeypatch.setattr(kaleido.scopes.plotly, "PlotlyScope", Recorded)
    monkeypatch.setattr(plots, "PNG_TIMEOUT_S", 1.0)
    done = plots.write_figures(tmp_path, {}, [], [])
    assert done["png"] is False and "within 1 s" in done["note"]
    assert done["files"] and all(name.endswith(".html") for name in done["files"])
    assert all((tmp_path / name).is_file() for name in done["files"])
    launcher = scopes[0]._proc
    launcher.wait(timeout=10)  # killed, and its child (which held the pipe) with it
    # Stopped, not finished: after 300 s of sleep it would exit 0; killed, its sleep or itself
    # ends by SIGKILL (137 from bash, or -9).
    assert launcher.returncode in (137, -9)
    assert not plots._children().get(launcher.pid)


def test_a_hung_kaleido_is_reported_as_stopped_while_the_kill_is_still_walking(
        tmp_path, monkeypatch):
    # The read ends at the first SIGKILL; the rest of the tree walk may still be running on the
    # timer's thread then (it did under load), and the study must still say why PNGs are missing.
    pytest.importorskip("kaleido")
    import threading

    import kaleido.scopes.plotly

    monkeypatch.setattr(kaleido.scopes.plotly, "PlotlyScope", HungScope)
    monkeypatch.setattr(plots, "PNG_TIMEOUT_S", 1.0)
    walked = threading.Event()
    kill_tree = plots._kill_tree

    def slow_kill(scope):
        kill_tree(scope)
        walked.wait(10)  # still "walking" until the study has reported

    monkeypatch.setattr(plots, "_kill_tree", slow_kill)
    try:
        done = plots.write_figures(tmp_path, {}, [], [])
    finally:
        walked.set()
    assert done["png"] is False and "within 1 s" in done["note"]
