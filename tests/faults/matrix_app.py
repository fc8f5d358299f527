"""The reliability matrix's rows for the app: each malformed upload on the Steer page and
each damaged summary on the Training page (streamlit's AppTest)."""

from __future__ import annotations

import shutil
from pathlib import Path

from matrix_verdicts import Row


# ---- rows: the app ------------------------------------------------------------------------------
def app_rows(root: Path) -> list[Row]:
    """Each malformed spec uploaded on the Steer page, and damaged summaries on the Training
    page, through streamlit's AppTest on an app root (helpers_app.build_root): one warning or
    error line, never Streamlit's exception box."""
    from helpers_app import APP_SPECS, app_env, open_app

    def upload(blob: bytes, message: str):
        def run(tmp):
            with app_env(root):
                at = open_app(page="steer")
                at.file_uploader(key="steer_upload").set_value(("bad.json", blob,
                                                                 "application/json"))
                at.run()
            if at.exception:
                return "traceback: the exception box"
            notes = [w.value for w in at.warning]
            return "clear error" if len(notes) == 1 and message in notes[0] else \
                f"vague error: {notes}"
        return run

    def summary(blob: bytes):
        def run(tmp):
            broken = root / f"broken{len(blob)}"
            shutil.copytree(root / "run", broken,
                            ignore=shutil.ignore_patterns("*.safetensors"))
            (broken / "summary.json").write_bytes(blob)
            try:
                with app_env(root):
                    at = open_app(page="training", run=broken.name)
            finally:
                shutil.rmtree(broken)
            if at.exception:
                return "traceback: the exception box"
            errs = [e.value for e in at.error]
            ok = len(errs) == 1 and "summary.json" in errs[0] and "fix:" in errs[0]
            return "clear error" if ok else f"vague error: {errs}"
        return run

    rows = [Row("app: Steer upload", name, upload(blob, msg)) for name, blob, msg in APP_SPECS]
    rows += [Row("app: Training page", f"summary.json {name}", summary(blob))
             for name, blob in (("truncated", b"{garbage"), ("empty", b""),
                                ("an array", b"[1, 2]"), ("not UTF-8", b"\xff\xfe"))]
    return rows
