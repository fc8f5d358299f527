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
