"""`cocomix-lens generate`: text from a run's model, steered by a spec file."""

from helpers_model import tiny_text_model

from cocomix_lens.sampling import Sampling
from cocomix_lens.steering import SteeringSpec
from training.cli import main

PROMPT = "The cat sat on the"


def _run_dir(tmp_path):
    model = tiny_text_model()
    model.save_pretrained(tmp_path / "run" / "model")  # a `cocomix-lens train` run layout
    return model, tmp_path / "run"


def test_generate_prints_the_models_greedy_text(tmp_path, capsys):
    model, run = _run_dir(tmp_path)
    argv = ["generate", "--run", str(run), "--prompt", PROMPT, "--temperature", "0",
            "--max-new-tokens", "8"]
    assert main(argv) == 0
    assert capsys.readouterr().out == model.generate(PROMPT, 8, temperature=0) + "\n"


def test_generate_with_a_spec_file_prints_the_steered_text(tmp_path, capsys):
    model, run = _run_dir(tmp_path)
    spec = SteeringSpec().set([1, 7], [300.0, -200.0], positions="generated")
    spec.save(tmp_path / "spec.json")
    argv = ["generate", "--run", str(run), "--prompt", PROMPT, "--steer",
            str(tmp_path / "spec.json"), "--seed", "3", "--max-new-tokens", "8"]
    assert main(argv) == 0
    sampling = Sampling(max_new_tokens=8, seed=3)  # the flags' defaults are Sampling's
    steered = model.generate(PROMPT, **sampling.kwargs(), steering=spec)
    assert capsys.readouterr().out == steered + "\n"


def test_a_bad_spec_file_is_a_one_line_error(tmp_path, capsys):
    _, run = _run_dir(tmp_path)
    (tmp_path / "bad.json").write_text('{"edits": [{"op": "boost", "concept": 1}]}')
    argv = ["generate", "--run", str(run), "--prompt", PROMPT, "--steer",
            str(tmp_path / "bad.json")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown steering op 'boost'" in err and "fix" in err and "\n" not in err
