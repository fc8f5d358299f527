"""Save the bytecode of what the commands import: `python -m training.warm_imports` (run by
`make install`).

pip installs with --no-compile (byte-compiling all of torch was half of the install), and
where PYTHONDONTWRITEBYTECODE is set Python never saves what it compiles, so every command
compiled torch, TransformerLens and SAE-Lens from source again: about 20 s to start instead
of 8 s on 2 idle cores, in each process of the pipeline and in the app. One import of the
modules the commands use, with writing allowed, saves their bytecode once."""

from __future__ import annotations

import importlib
import importlib.util
import sys

MODULES = (
    "torch", "transformer_lens", "sae_lens",
    "training.trainer", "training.pipeline", "training.pipeline_groundtruth", "training.sae",
    "training.steering_screen", "training.study.runner",
    "cocomix_lens.inspection", "cocomix_lens.catalogue", "cocomix_lens.steering.evaluate",
)
"""What the commands import between them (also the start-up benchmark's "every command's
modules" row)."""

APP_MODULES = ("streamlit", "plotly.graph_objects", "app.shell", "app.views.concepts",
               "app.views.inspect", "app.views.steer", "app.views.training")
"""The app's, where its extra (`app`: streamlit) is installed."""


def main() -> None:
    sys.dont_write_bytecode = False  # what this module is for, whatever the environment says
    for name in MODULES:
        importlib.import_module(name)
    if importlib.util.find_spec("streamlit") is not None:
        for name in APP_MODULES:
            importlib.import_module(name)


if __name__ == "__main__":
    main()
