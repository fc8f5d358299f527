"""training.overrides: one typed engine for `train` and `pipeline` dotted overrides (and YAML)."""

from __future__ import annotations

import pytest
import torch
from helpers_training import make_shards, write_corpus

from cocomix_lens import CoCoMixConfig, Run
from training import cli
from training.config import RunConfig, load_config
from training.overrides import apply_overrides, parse_overrides
from training.pipeline_config import apply_overrides as pipeline_overrides
from training.pipeline_config import pipeline_preset


def train_cfg(**dotted):
    return apply_overrides(RunConfig(), dotted)


def pipe_cfg(**dotted):
    return pipeline_overrides(pipeline_preset("micro"), dotted)


@pytest.mark.parametrize("text,value", [("false", False), ("0", False), ("no", False),
                                        ("off", False), ("False", False), ("true", True),
                                        ("1", True), ("yes", True), ("ON", True)])
def test_bools_are_parsed_the_same_in_both_commands(text, value):
    train = train_cfg(**{"model.tie_word_embeddings": text, "logging.wandb": text})
    assert train.model.overrides == {"tie_word_embeddings": value}
    assert train.logging.wandb is value
    assert train.model_config().tie_word_embeddings is value
    pipe = pipe_cfg(**{"student.overrides.tie_word_embeddings": text, "progress": text})
    assert pipe.student.overrides["tie_word_embeddings"] is value and pipe.progress is value


def test_none_sets_optional_fields_in_both_commands():
    train = train_cfg(**{"optim.warmup_steps": "none", "model.d_mlp": "null",
                         "model.d_model": "64"})
    assert train.optim.warmup_steps is None
    assert train.model_config().d_mlp == 4 * 64  # None is d_mlp's documented default
    pipe = pipe_cfg(**{"data.max_docs": "None", "student.overrides.d_mlp": "none"})
    assert pipe.data.max_docs is None and pipe.student.overrides["d_mlp"] is None


def test_ints_and_floats_are_typed_by_their_field():
    train = train_cfg(**{"optim.max_steps": "7", "optim.lr": "3e-4", "model.d_model": "96",
                         "model.layer_norm_eps": "1e-6", "optim.betas": "0.5,0.6"})
    assert train.optim.max_steps == 7 and train.optim.lr == 3e-4
    assert train.optim.betas == (0.5, 0.6)
    assert train.model.overrides == {"d_model": 96, "layer_norm_eps": 1e-6}
    pipe = pipe_cfg(**{"teacher.max_steps": "9", "sae.lr": "5e-4",
                       "student.overrides.d_model": "48", "student.overrides.act_fn": "relu",
                       "student.overrides.initializer_range": "0.01"})
    assert pipe.teacher.max_steps == 9 and pipe.sae.lr == 5e-4
    assert pipe.student.overrides["d_model"] == 48
    assert pipe.student.overrides["act_fn"] == "relu"
    assert pipe.student.overrides["initializer_range"] == 0.01
    assert type(pipe.student.overrides["initializer_range"]) is float


@pytest.mark.parametrize("apply,key,value,message", [
    (train_cfg, "optim.max_steps", "2.5",
     r"^--optim.max_steps='2.5' is not a valid int; fix: e.g. --optim.max_steps 1000$"),
    (train_cfg, "model.tie_word_embeddings", "maybe",
     r"^--model.tie_word_embeddings='maybe' is not a valid bool \(true/false, yes/no, 1/0\); "
     r"fix: e.g. --model.tie_word_embeddings true$"),
    (train_cfg, "model.d_mlp", "wide",
     r"'wide' is not a valid int or none; fix: e.g. --model.d_mlp 8"),
    (pipe_cfg, "student.overrides.d_model", "abc",
     r"^--student.overrides.d_model='abc' is not a valid int; fix: e.g. "
     r"--student.overrides.d_model 128$"),
    (pipe_cfg, "student.overrides.tie_word_embeddings", "2", r"is not a valid bool"),
    (pipe_cfg, "sae.lr", "fast", r"--sae.lr='fast' is not a valid float; fix: e.g. --sae.lr "),
    (pipe_cfg, "data.max_docs", "all", r"'all' is not a valid int or none"),
])
def test_wrong_types_name_key_value_type_and_an_example(apply, key, value, message):
    with pytest.raises(ValueError, match=message) as err:
        apply(**{key: value})
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("apply,key,message", [
    (train_cfg, "optim.lrr", r"unknown override --optim.lrr \(did you mean 'lr'\?\)"),
    (train_cfg, "model.dmodel", r"unknown override --model.dmodel \(did you mean 'd_model'"),
    (train_cfg, "model.overrides.tied", r"unknown override --model.overrides.tied; .*"
                                        r"CoCoMixConfig fields: d_model"),
    (pipe_cfg, "student.overrides.dmodel",
     r"unknown pipeline override --student.overrides.dmodel \(did you mean 'd_model'\?\)"),
    (pipe_cfg, "student.d_model", r"unknown pipeline override --student.d_model"),
    (pipe_cfg, "teacher.depth", r"unknown pipeline override --teacher.depth; known keys"),
])
def test_unknown_keys_are_refused_in_both_commands(apply, key, message):
    with pytest.raises(ValueError, match=message):
        apply(**{key: "3"})


def test_yaml_architecture_overrides_are_typed_too(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("model:\n  overrides: {tie_word_embeddings: 'false', d_model: 64}\n")
    assert load_config(path).model.overrides == {"tie_word_embeddings": False, "d_model": 64}
    path.write_text("model:\n  overrides: {d_model: wide}\n")
    with pytest.raises(ValueError, match=r"run.yaml: model.overrides.d_model='wide' is not a "
                                         r"valid int"):
        load_config(path)


def test_a_string_where_a_bool_belongs_is_refused_by_the_config():
    with pytest.raises(ValueError, match=r"^CoCoMixConfig.tie_word_embeddings='false' is "
                                         r"invalid: must be a bool"):
        CoCoMixConfig(tie_word_embeddings="false")
    with pytest.raises(ValueError, match=r"CoCoMixConfig.d_mlp='none' is invalid"):
        CoCoMixConfig(d_mlp="none")
    with pytest.raises(ValueError, match=r"CoCoMixConfig.n_layers=True is invalid"):
        CoCoMixConfig(n_layers=True)


def test_parse_overrides_reads_both_spellings():
    assert parse_overrides(["--a.b", "1", "--c-d.e=x"]) == {"a.b": "1", "c_d.e": "x"}


# ---- through the CLI, in-process ------------------------------------------------------------
@pytest.mark.parametrize("flag,value,message", [
    ("--student.overrides.d_model", "abc", "--student.overrides.d_model='abc' is not a valid "
                                           "int"),
    ("--student.overrides.d_mlp", "wide", "is not a valid int or none"),
    ("--student.overrides.insert_layer", "9", "the cocomix model cannot be built: "
                                              "CoCoMixConfig.insert_layer=9 is invalid"),
    ("--student.overrides.tie_word_embeddings", "nope", "is not a valid bool"),
    ("--teacher.max_step", "3", "unknown pipeline override --teacher.max_step (did you mean "
                           "'max_steps'"),
])
def test_pipeline_cli_bad_overrides_are_one_line_before_any_stage(tmp_path, capsys, flag,
                                                                   value, message):
    out = tmp_path / "run"
    code = cli.main(["pipeline", "--preset", "micro", "--out", str(out), flag, value])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "Traceback" not in err
    assert err.startswith("cocomix-lens pipeline: error: ") and message in err
    assert not out.exists()  # refused before any stage ran


def test_train_cli_bad_override_is_one_line(tmp_path, capsys):
    code = cli.main(["train", "--out", str(tmp_path / "r"), "--model.d_model", "abc"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err
    assert "--model.d_model='abc' is not a valid int; fix: e.g. --model.d_model 128" in err


def untied(model) -> bool:
    return (model.unembed is not None and not model.cfg.tie_word_embeddings
            and model.unembed.W_U.data_ptr() != model.embed.W_E.data_ptr())


def test_pipeline_tie_word_embeddings_false_builds_untied_students(tmp_path):
    corpus = write_corpus(tmp_path / "corpus", n_docs=120)
    out = tmp_path / "run"
    code = cli.main(["pipeline", "--preset", "micro", "--out", str(out), "--corpus", "text",
                     "--path", str(corpus), "--max-docs", "120", "--quiet",
                     "--student.overrides.tie_word_embeddings", "false"])
    assert code == 0
    run = Run.open(out)
    assert untied(run.student) and untied(run.baseline)
    assert run.teacher.cfg.tie_word_embeddings  # the teacher keeps its own shape
    # the untied unembedding was trained apart from the embedding
    assert not torch.allclose(run.student.unembed.W_U, run.student.embed.W_E.T)


def test_train_tie_word_embeddings_false_builds_an_untied_model(tmp_path):
    data = make_shards(tmp_path)
    out = tmp_path / "run"
    code = cli.main(["train", "--objective", "ntp", "--data", str(data), "--out", str(out),
                     "--max-steps", "2", "--model.tie_word_embeddings", "false",
                     "--model.d_model", "32", "--model.n_layers", "2", "--model.n_heads", "2",
                     "--data.seq_len", "16", "--data.batch_size", "2", "--system.device", "cpu",
                     "--logging.progress", "no"])
    assert code == 0
    assert untied(Run.open(out).student)
