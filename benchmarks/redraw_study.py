"""Re-draw a finished study's figures (HTML and PNG) and study.md from its study.json alone.

    python benchmarks/redraw_study.py benchmarks/results/study_world

For committed results whose run directories are gone: `cocomix-lens study --report-only`
needs the finished runs, this needs only study.json. Trains and re-judges nothing.
"""

from __future__ import annotations

import argparse

from training.study.runner import redraw


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("study_dir", help="a study directory holding study.json (RUN/study)")
    doc = redraw(p.parse_args().study_dir)
    print(f"wrote {', '.join(doc['figures']['files'])}"
          + (f" ({doc['figures']['note']})" if doc["figures"].get("note") else ""))


if __name__ == "__main__":
    main()
