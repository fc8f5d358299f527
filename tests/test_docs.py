"""The README and docs/ show commands that the current CLI accepts, and docs/cli.md is current."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from training.cli import build_parser
from training.cli_docs import render

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```")


def code_lines(text: str) -> list[str]:
    """Lines inside ``` fences, with backslash continuations joined."""
    out, inside, pending = [], False, ""
    for line in text.splitlines():
        if FENCE.match(line.strip()):
            inside, pending = not inside, ""
            continue
        if not inside:
            continue
        line = pending + line
        if line.rstrip().endswith("\\"):
            pending = line.rstrip()[:-1] + " "
            continue
        pending = ""
        out.append(line.strip())
    return out


def shown_commands() -> list[tuple[str, str]]:
    """(page, command line) for every `cocomix-lens ...` or `make ...` line in a code block."""
    found = []
    for page in PAGES:
        for line in code_lines(page.read_text()):
            if line.startswith(("cocomix-lens ", "make ")):
                found.append((page.name, line))
    return found


def make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return {m.group(1) for m in re.finditer(r"^([A-Za-z][\w-]*):", text, re.M)}


def test_docs_show_commands():
    pages = {page for page, _ in shown_commands()}
    assert "README.md" in pages and len(shown_commands()) >= 20


@pytest.mark.parametrize("page,line", shown_commands())
def test_every_shown_command_parses(page, line):
    argv = shlex.split(line, comments=True)
    if argv[0] == "make":
        targets = [a for a in argv[1:] if "=" not in a]
        assert set(targets) <= make_targets(), f"{page}: `{line}` names no Makefile target"
        return
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv[1:])
    except SystemExit as err:
        pytest.fail(f"{page}: `{line}` does not parse (exit {err.code})")
    assert not extra or getattr(args, "_accepts_overrides", False), \
        f"{page}: `{line}`: {extra} unrecognized"
    assert all(x.startswith("--") and "." in x for x in extra[::2] if x.startswith("--")), \
        f"{page}: `{line}`: {extra} are not dotted overrides"


def test_bad_command_is_caught():
    """The check above can fail: a misspelt flag does not parse."""
    with pytest.raises(SystemExit):
        build_parser().parse_known_args(["pipeline", "--preset", "nope", "--out", "x"])


def test_cli_reference_is_current():
    assert (ROOT / "docs" / "cli.md").read_text() == render(), \
        "docs/cli.md is stale; fix: python -m training.cli_docs > docs/cli.md"
