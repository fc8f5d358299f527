"""`cocomix-lens prepare` (training/commands/prepare.py), end to end through the CLI."""

import json

from cocomix_lens.data import TokenShards
from training.cli import main


def _docs(tmp_path):
    path = tmp_path / "stories.txt"
    stories = [f"story {i}: the fox jumps over the lazy dog {i % 7} times." for i in range(30)]
    path.write_text("<|sep|>".join(stories))
    return path, stories


def test_prepare_text_corpus_then_rerun_is_up_to_date(tmp_path, capsys):
    path, stories = _docs(tmp_path)
    argv = ["prepare", "--corpus", "text", "--path", str(path), "--separator", "<|sep|>",
            "--vocab-size", "270", "--val-fraction", "0.2", "--out", str(tmp_path / "out")]
    assert main(argv) == 0
    assert "prepared:" in capsys.readouterr().out
    shards = TokenShards.open(tmp_path / "out", verify=True)
    texts = [shards.decode(shards.split(s)[d["start"]:d["end"]])
             for s in ("train", "val") for d in shards.documents(s)]
    assert sorted(texts) == sorted(stories)
    assert main(argv) == 0
    assert "up to date:" in capsys.readouterr().out
    assert main(argv[:-3] + ["0.3", "--out", str(tmp_path / "out")]) == 2
    assert "--force" in capsys.readouterr().err


def test_escaped_separator_and_wrong_option_for_corpus(tmp_path, capsys):
    path = tmp_path / "paras.txt"
    path.write_text("para one\n\npara two\n\npara three\n\npara four")
    out = tmp_path / "out"
    assert main(["prepare", "--corpus", "text", "--path", str(path), "--separator", "\\n\\n",
                 "--vocab-size", "260", "--val-fraction", "0", "--out", str(out)]) == 0
    assert json.loads((out / "manifest.json").read_text())["splits"]["train"]["documents"] == 4
    assert main(["prepare", "--corpus", "wiki", "--name", "x", "--out", str(out)]) == 2
    assert "does not take option(s) name" in capsys.readouterr().err


def test_prepare_wiki_default_gives_over_a_million_tokens(tmp_path):
    # Its time is a stage line of `make demo` (prepare 8 s), not a timed assert here.
    assert main(["prepare", "--corpus", "wiki", "--out", str(tmp_path / "wiki")]) == 0
    manifest = TokenShards.open(tmp_path / "wiki").manifest
    assert manifest["splits"]["train"]["tokens"] > 1_000_000
    assert manifest["vocab_size"] == 4096 and manifest["dtype"] == "uint16"
    assert manifest["corpus"]["sha256"].startswith("05ed445d")
