"""What `cocomix-lens app` hands the app: the root of runs, the first run, the device.

The CLI passes them as environment variables so the Streamlit script needs no argv of its own
(and tests set them the same way).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ENV_ROOT, ENV_RUN, ENV_DEVICE = ("COCOMIX_LENS_APP_ROOT", "COCOMIX_LENS_APP_RUN",
                                 "COCOMIX_LENS_APP_DEVICE")

# Caps on user input (the app is for local use, but a browser tab should not pin the CPU).
MAX_PROMPT_CHARS = 2000
MAX_PROMPT_TOKENS = 256
MAX_NEW_TOKENS = 128
MAX_INSPECT_TOKENS = 256


@dataclass(frozen=True)
class AppConfig:
    root: Path | None  # runs are only ever opened under this directory
    run: str | None  # the run opened first, relative to root
    device: str


def app_config() -> AppConfig:
    root = os.environ.get(ENV_ROOT)
    return AppConfig(root=Path(root).resolve() if root else None,
                     run=os.environ.get(ENV_RUN) or None,
                     device=os.environ.get(ENV_DEVICE, "cpu"))
