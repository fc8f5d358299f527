"""The rooms' import rules (docs/architecture.md) are ruff rules: probe each with a snippet."""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RUFF = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")


def violations(path: str, code: str) -> set[str]:
    """Rule codes ruff reports for `code` as if it were the file `path` of this repo."""
    out = subprocess.run([RUFF, "check", "--stdin-filename", str(REPO / path),
                          "--output-format", "concise", "--select", "TID", "-"],
                         input=code, capture_output=True, text=True, cwd=REPO)
    return {line.split()[1] for line in out.stdout.splitlines() if ": TID" in line}


@pytest.mark.skipif(RUFF is None, reason="ruff is not installed (pip install -e '.[dev]')")
@pytest.mark.parametrize("path,code,banned", [
    ("cocomix_lens/x.py", "import training.config\n", {"TID251"}),
    ("cocomix_lens/x.py", "def f():\n    from app import runs\n    return runs\n", {"TID251"}),
    ("cocomix_lens/x.py", "from tests import helpers_model\n", {"TID251"}),
    ("cocomix_lens/x.py", "import benchmarks\n", {"TID251"}),
    ("cocomix_lens/x.py", "from transformer_lens import HookedRootModule\n", {"TID251"}),
    ("cocomix_lens/x.py", "from report.study import verdict_rows\n", {"TID251"}),
    ("app/x.py", "from report.study import verdict_rows\n", set()),
    ("training/x.py", "from report.study import verdict_rows\n", set()),
    ("cocomix_lens/model/hooks.py", "from transformer_lens import HookedRootModule\n", set()),
    ("cocomix_lens/x.py", "import tqdm\n", {"TID253"}),
    ("cocomix_lens/x.py", "import streamlit\n", {"TID253"}),
    ("cocomix_lens/x.py", "def f():\n    import tqdm\n    return tqdm\n", set()),
    ("app/x.py", "def f():\n    from training import cli\n    return cli\n", {"TID251"}),
    ("app/x.py", "import streamlit\nfrom app import runs\nfrom cocomix_lens import Run\n",
     set()),
    ("training/x.py", "import tqdm\nfrom cocomix_lens import Run\nfrom training import cli\n",
     set()),
])
def test_each_room_imports_only_what_it_may(path, code, banned):
    assert violations(path, code) == banned


def test_transformer_lens_is_imported_by_one_module_only():
    """Every TransformerLens name comes through cocomix_lens/model/hooks.py (tests and
    benchmarks included), so moving to TransformerLens 4 is a one-file change."""
    importers = set()
    for folder in ("cocomix_lens", "training", "app", "tests", "benchmarks"):
        for path in (REPO / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                    [node.module or ""] if isinstance(node, ast.ImportFrom) else []
                if any(n.split(".")[0] == "transformer_lens" for n in names):
                    importers.add(path.relative_to(REPO).as_posix())
    assert importers == {"cocomix_lens/model/hooks.py"}


def _module(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(folders: tuple[str, ...]) -> dict[str, set[str]]:
    """{module: modules of these folders it imports}, counting imports inside functions and
    under TYPE_CHECKING (a reader follows those arrows too)."""
    paths = {_module(p): p for f in folders for p in (REPO / f).rglob("*.py")}
    graph = {}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, base] if base else up)
                targets |= {base} | {f"{base}.{a.name}" for a in node.names}
        graph[name] = {t for t in targets if t in paths and t != name}
    return graph


def circles(graph: dict[str, set[str]]) -> set[frozenset[str]]:
    """The import circles: strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = set()

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:  # v roots a group: everything above it on the stack
            group = {stack.pop()}
            while v not in group:
                group.add(stack.pop())
            if len(group) > 1:
                found.add(frozenset(group))

    for v in graph:
        if v not in index:
            visit(v)
    return found


# Circles still open, each in the lane of the issue that removes it; none may be added.
OPEN_CIRCLES = {
    frozenset({"training.pipeline", "training.side_stage"}),
}


def test_no_new_import_circles_in_the_library_the_app_or_the_jobs():
    found = circles(import_graph(("cocomix_lens", "app", "training", "report")))
    assert found <= OPEN_CIRCLES, sorted(map(sorted, found - OPEN_CIRCLES))
    # The three a review found (catalogue store <-> render/search/contrast, inspection core
    # <-> render, app shell <-> views) stay gone.
    assert not any(m.startswith(("cocomix_lens.catalogue", "cocomix_lens.inspection",
                                 "app.shell")) for group in found for m in group)


# Arrows inside the library that must not be drawn: folder -> the folders it never imports
# (at module level, inside functions or under TYPE_CHECKING). ruff's banned-api bans a module
# for the whole repo, not for one folder, so they are checked on the import graph instead.
BANNED_ARROWS = {
    # the world registers its scorers and families into steering's registries
    "cocomix_lens.steering": ("cocomix_lens.world",),
    # steering hooks into the model; the model takes any object with `context(...)`
    "cocomix_lens.model": ("cocomix_lens.steering",),
}


def _within(module: str, folder: str) -> bool:
    return module == folder or module.startswith(folder + ".")


def banned_arrows(graph: dict[str, set[str]],
                  rules: dict[str, tuple[str, ...]]) -> set[tuple[str, str]]:
    """(importer, imported) of every import `rules` forbids."""
    return {(m, t) for m, targets in graph.items() for folder, banned in rules.items()
            if _within(m, folder) for t in targets if any(_within(t, b) for b in banned)}


def test_steering_never_imports_the_world_and_the_model_never_imports_steering():
    found = banned_arrows(import_graph(("cocomix_lens",)), BANNED_ARROWS)
    assert not found, sorted(found)


def test_the_arrow_finder_finds_a_banned_arrow_and_only_that():
    graph = {"p.steering.a": {"p.world.b", "p.steering.c"}, "p.steering.c": {"p.world"},
             "p.world.b": {"p.steering.a"}, "p.steering_x": {"p.world.b"}}
    assert banned_arrows(graph, {"p.steering": ("p.world",)}) == {
        ("p.steering.a", "p.world.b"), ("p.steering.c", "p.world")}


def test_the_circle_finder_finds_a_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert circles(graph) == {frozenset("abc")}
    assert circles({"a": {"b"}, "b": set()}) == set()
