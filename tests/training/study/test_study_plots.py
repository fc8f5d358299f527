"""The study's PNG export (training/study/plots.py): a kaleido that never answers is stopped
after PNG_TIMEOUT_S, with its child processes, and the study writes its HTML figures only."""

import subprocess
import time

import pytest

from training.study import plots


class HungScope:
    """A kaleido scope whose process (a launcher with a child holding the pipe, as kaleido's
    script and chromium do) never answers: `transform` reads until the pipe closes."""

    def __init__(self, **kwargs):
        self._proc = subprocess.Popen(["bash", "-c", "sleep 300; true"], stdin=subprocess.PIPE,
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
    t0 = time.perf_counter()
    done = plots.write_figures(tmp_path, {}, [], [])
    assert time.perf_counter() - t0 < 30
    assert done["png"] is False and "within 1 s" in done["note"]
    assert done["files"] and all(name.endswith(".html") for name in done["files"])
    assert all((tmp_path / name).is_file() for name in done["files"])
    launcher = scopes[0]._proc
    launcher.wait(timeout=10)  # killed, and its child (which held the pipe) with it
    assert not plots._children().get(launcher.pid)
