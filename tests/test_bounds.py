"""Bounded numbers (cocomix_lens/bounds.py, training/flags.py): every numeric flag of every
command and every numeric config field declares a Range, and out-of-range values (negative,
zero, huge, NaN, inf) are refused in one line naming the flag or key."""

from __future__ import annotations

import argparse
import dataclasses
import math
import typing

import pytest

from cocomix_lens import CoCoMixConfig
from cocomix_lens.bounds import RANGE, Range, check_fields
from training.cli import build_parser, main
from training.config import RunConfig
from training.overrides import apply_overrides
from training.pipeline_config import PRESETS, PipelineConfig

PROBES = ["-1", "0", "1e30", "nan", "inf", "-inf", "2.5"]
CONFIGS = [RunConfig, PipelineConfig, CoCoMixConfig]


def numeric_flags() -> list[tuple[str, argparse.Action]]:
    """(command, action) for every option of every command that takes a number."""
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    out = []
    for name, parser in sub.choices.items():
        for action in parser._actions:
            numeric = action.type in (int, float) or hasattr(action.type, "range") or (
                isinstance(action.default, (int, float)) and not isinstance(action.default, bool)
                and action.nargs != 0)
            if numeric:
                out.append((name, action))
    return out


def numeric_fields(cls: type, prefix: str = "") -> list[tuple[str, type, dataclasses.Field]]:
    """(dotted key, owning dataclass, field) of every int/float field, nested sections too."""
    out = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            out += numeric_fields(tp, f"{prefix}{f.name}.")
            continue
        kinds = set(typing.get_args(tp)) | {tp}
        if kinds & {int, float} and bool not in kinds:
            out.append((prefix + f.name, cls, f))
    return out


FLAGS = numeric_flags()
FIELDS = [row for cls in CONFIGS for row in numeric_fields(cls)]


def test_the_enumeration_finds_every_command_and_many_flags():
    assert {c for c, _ in FLAGS} >= {"prepare", "labels", "train", "pipeline", "catalog",
                                     "concepts", "inspect", "generate", "steer-eval", "study",
                                     "app"}
    assert len(FLAGS) >= 40 and len(FIELDS) >= 50


@pytest.mark.parametrize("command, action", FLAGS,
                         ids=[f"{c}{a.option_strings[0]}" for c, a in FLAGS])
def test_every_numeric_flag_declares_a_range_and_refuses_what_is_outside(command, action):
    rng = getattr(action.type, "range", None)
    assert isinstance(rng, Range), f"{command} {action.option_strings[0]} has no bounded type"
    if action.default is not None:
        assert rng.contains(action.default), (command, action.dest, action.default)
    for text in PROBES:
        value = float(text)
        fits = rng.contains(int(value) if rng.integer and value.is_integer() else value)
        if fits:
            assert action.type(text) == value
        else:
            with pytest.raises(argparse.ArgumentTypeError, match="must be|is not"):
                action.type(text)


@pytest.mark.parametrize("key, cls, f", FIELDS, ids=[f"{c.__name__}.{k}" for k, c, f in FIELDS])
def test_every_numeric_config_field_declares_a_range_its_default_fits(key, cls, f):
    rng = f.metadata.get(RANGE)
    assert isinstance(rng, Range), f"{cls.__name__}.{f.name} declares no range"
    default = f.default if f.default is not dataclasses.MISSING else None
    assert default is None or rng.contains(default)


@pytest.mark.parametrize("key", [k for k, c, _ in FIELDS if c is not CoCoMixConfig])
@pytest.mark.parametrize("value", ["nan", "inf", "-1e30", "1e30"])
def test_dotted_overrides_out_of_range_are_one_line_naming_the_key(key, value):
    base = PipelineConfig() if any(k == key for k, c, _ in numeric_fields(PipelineConfig)) \
        else RunConfig()
    with pytest.raises(ValueError, match=f"--{key}=") as err:
        apply_overrides(base, {key: value})
    assert "\n" not in str(err.value) and "fix" in str(err.value)


def test_every_preset_and_the_default_run_config_lie_in_their_ranges():
    check_fields(RunConfig())
    for name, make in PRESETS.items():
        check_fields(make(), f"{name}.")


def test_architecture_ranges_refuse_an_inflated_vocabulary_before_any_allocation():
    with pytest.raises(ValueError, match=r"d_vocab=100000000 is invalid: must be an integer"):
        CoCoMixConfig(d_vocab=100_000_000)
    with pytest.raises(ValueError, match="layer_norm_eps=nan"):
        CoCoMixConfig(layer_norm_eps=math.nan)


@pytest.mark.parametrize("argv, needle", [
    (["concepts", "--run", "r", "--top", "-5"], "argument --top: -5 is out of range"),
    (["prepare", "--out", "o", "--max-docs", "0"], "argument --max-docs: 0 is out of range"),
    (["app", "--run", "r", "--port", "99999"], "argument --port: 99999 is out of range"),
    (["steer-eval", "--run", "r", "--densest", "3", "--samples", "0"], "--samples: 0"),
    (["inspect", "--run", "r", "--text", "t", "--max-tokens", "-1"], "--max-tokens: -1"),
])
def test_out_of_range_flags_end_as_one_usage_line(argv, needle, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and needle in err and len(err.splitlines()) == 1
