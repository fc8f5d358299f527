"""`cocomix-lens pipeline`: a path as --corpus, --separator, the small preset, --quiet and the
dotted settings in --help."""

from __future__ import annotations

import dataclasses
import json
import random

import pytest
from helpers_training import TOPICS

from training.cli import main
from training.commands.pipeline import corpus_flags
from training.pipeline_config import PipelineConfig, pipeline_preset

# Settings of the corpus itself: the small preset keeps its own (every document of the file).
CORPUS_KEYS = ("data.corpus", "data.path", "data.max_docs", "data.separator")


def flat(cfg: PipelineConfig) -> dict:
    out = {}
    for key, value in _items(dataclasses.asdict(cfg)):
        out[key] = value
    return out


def _items(d: dict, prefix: str = ""):
    for k, v in d.items():
        if isinstance(v, dict):
            yield from _items(v, f"{prefix}{k}.")
        else:
            yield prefix + k, v


def shrink_flags(preset: str) -> list[str]:
    """Dotted flags that turn `preset` into the micro preset's sizes (corpus settings kept)."""
    micro, mine = flat(pipeline_preset("micro")), flat(pipeline_preset(preset))
    flags = []
    for key in sorted(set(micro) | set(mine)):
        if key in CORPUS_KEYS or micro.get(key) == mine.get(key) or key not in micro:
            continue
        value = micro[key]
        flags += [f"--{key}", "none" if value is None else str(value).lower()
                  if isinstance(value, bool) else str(value)]
    return flags


def write_book(path, n_paragraphs: int = 160, seed: int = 0) -> int:
    """One .txt file of topical paragraphs separated by blank lines; returns their count."""
    rng = random.Random(seed)
    glue = "the a of and in to was is with on".split()
    paras = []
    for _ in range(n_paragraphs):
        words = TOPICS[rng.choice(sorted(TOPICS))].split()
        paras.append(" ".join(rng.choice(words) if rng.random() < 0.6 else rng.choice(glue)
                              for _ in range(rng.randint(40, 80))).capitalize() + ".")
    path.write_text("\n\n".join(paras) + "\n")
    return n_paragraphs


def test_small_preset_at_micro_size_on_one_txt_file_quiet(tmp_path, capfd):
    book, out = tmp_path / "book.txt", tmp_path / "run"
    n = write_book(book)
    rc = main(["pipeline", "--preset", "small", "--corpus", str(book), "--separator", "\\n\\n",
               "--out", str(out), "--quiet", *shrink_flags("small")])
    captured = capfd.readouterr()
    assert rc == 0, captured.err
    assert captured.err == ""  # --quiet: no logs, no progress bars, no warnings
    lines = captured.out.splitlines()
    assert len(lines) == 2 and lines[0].startswith(f"pipeline: {out} [prepare ")
    assert lines[1] == f"open the app: cocomix-lens app --run {out}"
    # one document per paragraph of the one file, in the two splits
    manifest = json.loads((out / "data" / "manifest.json").read_text())
    assert sum(s["documents"] for s in manifest["splits"].values()) == n
    summary = json.loads((out / "summary.json").read_text())
    assert summary["complete"] and summary["cocomix"]["steps"] == 12
    assert summary["sae"]["d_sae"] == 64 and (out / "catalogue" / "meta.json").is_file()


def test_corpus_flag_takes_a_path(tmp_path):
    book = tmp_path / "book.txt"
    book.write_text("x")
    assert corpus_flags(str(book), None) == ("text", str(book))
    assert corpus_flags(str(tmp_path), None) == ("text", str(tmp_path))
    assert corpus_flags("missing.jsonl", None) == ("text", "missing.jsonl")  # the source says
    assert corpus_flags("world", None) == ("world", None)
    assert corpus_flags("text", "a.txt") == ("text", "a.txt")
    with pytest.raises(ValueError, match="--corpus wikki is neither a corpus .* fix:"):
        corpus_flags("wikki", None)
    with pytest.raises(ValueError, match="fix: pass --corpus text --path b.txt"):
        corpus_flags(str(book), "b.txt")


def test_help_lists_every_dotted_setting_with_its_default(capsys):
    with pytest.raises(SystemExit):
        main(["pipeline", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for key, value in flat(PipelineConfig()).items():
        assert f"--{key} ({value!r})" in text, key
    assert "--student.overrides.<field>" in text


def test_one_txt_file_without_separator_names_the_fix(tmp_path, capsys):
    book = tmp_path / "book.txt"
    write_book(book, n_paragraphs=20)
    rc = main(["pipeline", "--preset", "micro", "--corpus", str(book), "--out",
               str(tmp_path / "run"), "--stop-after", "prepare", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert "(1 document in all); fix: split your text into more documents" in err
    assert "--separator '\\n\\n'" in err


def test_a_refused_resume_prints_the_whole_command_that_resumes_it(tmp_path, capsys):
    """A setting of a finished stage changed: the fix is the typed command with that flag (in
    the spelling typed: a --corpus path, a --separator) put back to the run's value."""
    import shlex

    book, other, out = tmp_path / "book.txt", tmp_path / "other.txt", tmp_path / "run"
    write_book(book, n_paragraphs=60)
    write_book(other, n_paragraphs=60, seed=1)
    first = ["pipeline", "--preset", "micro", "--corpus", str(book), "--separator", "\\n\\n",
             "--out", str(out), "--stop-after", "prepare", "--quiet"]
    assert main(first) == 0
    capsys.readouterr()
    changed = ["pipeline", "--preset", "micro", "--corpus", str(other), "--separator", "\\n",
               "--out", str(out), "--stop-after", "prepare", "--quiet", "--seed", "3"]
    assert main(changed) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "finished stages used other settings" in err
    command = err.split("fix: type `")[1].split("`")[0]
    words = shlex.split(command)
    assert words[:4] == ["cocomix-lens", "pipeline", "--preset", "micro"]
    assert str(other) not in words and words[words.index("--path") + 1] == str(book)
    assert words[words.index("--separator") + 1] == "\\n\\n"
    assert words[words.index("--seed") + 1] == "0" and "3" not in words
    assert main(words[1:]) == 0  # the printed command resumes the run as it was
    assert "(skipped)" in capsys.readouterr().out
