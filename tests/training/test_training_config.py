"""Run configs: documented fields, YAML + dotted overrides, one-line errors for bad input."""

import dataclasses

import pytest

from training.config import RunConfig, describe, dump_yaml, field_docs, load_config
from training.overrides import apply_overrides, parse_overrides


def _sections(cls=RunConfig):
    yield cls
    for f in dataclasses.fields(cls):
        if isinstance(f.type, str) and f.type.endswith("Section"):
            yield type(getattr(cls(), f.name))


def test_every_field_has_a_docstring():
    for cls in _sections():
        docs = field_docs(cls)
        missing = [f.name for f in dataclasses.fields(cls) if not docs.get(f.name)]
        assert not missing, f"{cls.__name__} lacks docstrings for {missing}"


def test_yaml_then_overrides_in_order(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("objective: ntp\noptim:\n  lr: 1.0e-3\n  betas: [0.8, 0.99]\n"
                    "model:\n  preset: tiny\n  overrides: {d_model: 64}\n")
    cfg = load_config(path, ["--optim.lr", "3e-4", "--model.n_layers=3",
                             "--optim.warmup_steps", "none", "--logging.wandb", "yes"])
    assert cfg.objective == "ntp" and cfg.optim.lr == 3e-4 and cfg.optim.betas == (0.8, 0.99)
    assert cfg.model.overrides == {"d_model": 64, "n_layers": 3}
    assert cfg.optim.warmup_steps is None and cfg.logging.wandb is True
    arch = cfg.model_config(d_vocab=100)
    assert (arch.d_model, arch.n_layers, arch.d_vocab) == (64, 3, 100)
    # the dump reloads to the same config
    again = tmp_path / "again.yaml"
    again.write_text(dump_yaml(cfg))
    assert load_config(again) == cfg


def test_overrides_parse_both_spellings_and_types():
    assert parse_overrides(["--optim.lr", "1e-4", "--data.seq-len=32"]) == {
        "optim.lr": "1e-4", "data.seq_len": "32"}
    cfg = apply_overrides(RunConfig(), {"optim.betas": "0.5,0.6", "optim.max_steps": "7"})
    assert cfg.optim.betas == (0.5, 0.6) and cfg.optim.max_steps == 7


@pytest.mark.parametrize("argv,message", [
    (["--optim.lrr", "1"], r"unknown override --optim.lrr \(did you mean 'lr'\?\)"),
    (["--optim.lr", "fast"], r"--optim.lr='fast' is not a valid float"),
    (["--optim.max_steps", "2.5"], r"is not a valid int"),
    (["--logging.wandb", "maybe"], r"is not a valid bool"),
    (["--optim.betas", "0.9"], r"expected 2 comma-separated values"),
    (["--model.dmodel", "8"], r"did you mean 'd_model'"),
    (["--optim", "1"], r"names a section"),
    (["--optim.lr"], r"needs a value"),
    (["lr", "1"], r"unexpected argument 'lr'"),
])
def test_bad_overrides_are_one_line_errors(argv, message):
    with pytest.raises(ValueError, match=message) as err:
        load_config(None, argv)
    assert "\n" not in str(err.value)


def test_bad_yaml_keys_and_types(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim:\n  lrate: 1\n")
    with pytest.raises(ValueError, match=r"bad.yaml: unknown key 'optim.lrate'"):
        load_config(bad)
    bad.write_text("optim: 3\n")
    with pytest.raises(ValueError, match="optim must be a mapping"):
        load_config(bad)
    bad.write_text("seed: true\n")
    with pytest.raises(ValueError, match="seed=True is not a valid int"):
        load_config(bad)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")


def test_cli_help_lists_every_key_with_its_docstring():
    lines = describe()
    keys = {line.split()[0] for line in lines}
    for section in ("optim", "data", "concept", "logging", "checkpoint", "system"):
        cls = type(getattr(RunConfig(), section))
        for f in dataclasses.fields(cls):
            assert f"--{section}.{f.name}" in keys
    assert all(len(line.split("  ")) >= 2 and line.strip()[-1] in ".)" for line in lines)
