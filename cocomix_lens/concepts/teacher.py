"""Loading the concept teacher and its SAE, and fingerprinting them for the label cache.

`load_teacher("gpt2")` is the paper's setup: GPT-2 124M through TransformerLens and the OpenAI
32k TopK SAE on `blocks.5.hook_resid_post` through SAE-Lens. Both loaders are registries of
sources tried in order: a local directory first (our CoCoMixModel checkpoint, an SAE-Lens
`save_model` directory), then the Hugging Face hub. Loading from the hub is the one place this
package touches the network, and only when a caller asks for it; a failed fetch says what
could not be fetched and how to point at a local copy.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from cocomix_lens.data.files import read_json, safetensors_header

log = logging.getLogger(__name__)

# The paper's SAE for each teacher name that has one: (SAE-Lens release, SAE id).
PAPER_SAES: dict[str, tuple[str, str]] = {
    "gpt2": ("gpt2-small-resid-post-v5-32k", "blocks.5.hook_resid_post"),
    "gpt2-small": ("gpt2-small-resid-post-v5-32k", "blocks.5.hook_resid_post"),
}


class FetchError(RuntimeError):
    """A teacher or SAE could not be downloaded; the message says how to use a local copy."""


@dataclass(frozen=True)
class Source:
    """One way to load something: `matches(spec)` decides, `load(spec, ...)` loads."""

    name: str
    matches: Callable[[str], bool]
    load: Callable[..., nn.Module]


# ----------------------------------------------------------------------------- teachers


def _is_cocomix_dir(spec: str) -> bool:
    p = Path(spec)
    return (p / "config.json").is_file() and (p / "model.safetensors").is_file()


def _load_cocomix(spec: str, device: str, **tl_kwargs) -> nn.Module:
    from cocomix_lens.model import CoCoMixModel

    return CoCoMixModel.from_pretrained(spec, device=device)


def _refuse_bad_dir(spec: str, device: str, **tl_kwargs) -> nn.Module:
    lacks = [n for n in ("config.json", "model.safetensors") if not (Path(spec) / n).is_file()]
    raise FileNotFoundError(
        f"teacher directory {spec} has no {' or '.join(lacks)} file; fix: pass a "
        "CoCoMixModel.save_pretrained directory or a TransformerLens model name such as 'gpt2'"
    )


def _load_hooked_transformer(spec: str, device: str, **tl_kwargs) -> nn.Module:
    from cocomix_lens.model.hooks import HookedTransformer

    try:
        return HookedTransformer.from_pretrained(spec, device=device, **tl_kwargs)
    except Exception as err:  # hub, network and cache errors come in many types
        raise FetchError(
            f"could not fetch teacher {spec!r} through TransformerLens / the Hugging Face hub "
            f"({type(err).__name__}: {_first_line(err)}); where the network is reachable, run "
            f"HookedTransformer.from_pretrained({spec!r}) once to fill the Hugging Face cache and "
            "set HF_HUB_OFFLINE=1 here, or pass a local CoCoMixModel checkpoint directory "
            "(config.json + model.safetensors) as the teacher"
        ) from err


def _looks_like_path(spec: str) -> bool:
    """A spec written as a path (a separator, ~ or a leading dot), never a hub model name."""
    return "/" in spec and not Path(spec).exists() and (
        spec.startswith((".", "/", "~")) or spec.count("/") > 1 or Path(spec).parent.is_dir())


def _refuse_missing_dir(spec: str, device: str, **tl_kwargs) -> nn.Module:
    raise FileNotFoundError(f"teacher directory {spec} does not exist; fix: pass an existing "
                            "CoCoMixModel.save_pretrained directory or a TransformerLens model "
                            "name such as 'gpt2'")


TEACHER_SOURCES: list[Source] = [
    Source("cocomix-checkpoint", _is_cocomix_dir, _load_cocomix),
    Source("bad-directory", lambda spec: Path(spec).is_dir(), _refuse_bad_dir),
    Source("missing-directory", _looks_like_path, _refuse_missing_dir),
    Source("transformer-lens", lambda spec: True, _load_hooked_transformer),
]


def load_teacher_model(spec: str | Path, device: str = "cpu", **tl_kwargs) -> nn.Module:
    """A teacher LM from a CoCoMixModel checkpoint directory or a TransformerLens model name;
    `tl_kwargs` go to `HookedTransformer.from_pretrained` (e.g. center_writing_weights)."""
    spec = str(spec)
    source = next(s for s in TEACHER_SOURCES if s.matches(spec))
    log.info("loading teacher %s (%s)", spec, source.name)
    model = source.load(spec, device, **tl_kwargs)
    return model.eval()


# ----------------------------------------------------------------------------- SAEs


def _is_sae_dir(spec: str) -> bool:
    return (Path(spec) / "cfg.json").is_file()


def _load_sae_dir(spec: str, sae_id: str | None, device: str) -> nn.Module:
    from sae_lens import SAE

    fix = "re-save the SAE with SAE.save_model (cfg.json + sae_weights.safetensors)"
    read_json(Path(spec) / "cfg.json", fix, expect=dict, fields={"d_in": int, "d_sae": int})
    safetensors_header(Path(spec) / "sae_weights.safetensors", fix)
    try:
        return SAE.load_from_disk(spec, device=device)
    except (ValueError, KeyError, TypeError, RuntimeError) as err:  # SAE-Lens names no file
        raise ValueError(f"SAE directory {spec} does not load ({type(err).__name__}: "
                         f"{_first_line(err)}); fix: {fix}") from None


def _load_sae_release(spec: str, sae_id: str | None, device: str) -> nn.Module:
    from sae_lens import SAE
    from sae_lens.loading.pretrained_saes_directory import get_pretrained_saes_directory

    if Path(spec).is_dir():
        raise FileNotFoundError(f"SAE directory {spec} has no cfg.json file; fix: pass a "
                                "directory written by SAE.save_model or an SAE-Lens release name")
    release = get_pretrained_saes_directory().get(spec)
    if release is not None and sae_id not in release.saes_map:
        ids = sorted(release.saes_map)
        raise ValueError(f"SAE release {spec!r} has no id {sae_id!r}; pass one of "
                         f"{ids[:8]}{' ...' if len(ids) > 8 else ''} as the SAE id")
    if sae_id is None:
        raise ValueError(f"SAE {spec!r} is neither a local SAE-Lens directory nor a known "
                         "release; pass a directory with cfg.json, or a release and an SAE id")
    try:
        return SAE.from_pretrained(spec, sae_id, device=device)
    except Exception as err:  # hub, network and cache errors come in many types
        raise FetchError(
            f"could not fetch SAE {spec!r} / {sae_id!r} from the Hugging Face hub "
            f"({type(err).__name__}: {_first_line(err)}); where the network is reachable, run "
            f"SAE.from_pretrained({spec!r}, {sae_id!r}).save_model(DIR) and pass DIR as the SAE"
        ) from err


SAE_SOURCES: list[Source] = [
    Source("sae-lens-directory", _is_sae_dir, _load_sae_dir),
    Source("sae-lens-release", lambda spec: True, _load_sae_release),
]


def load_sae(spec: str | Path, sae_id: str | None = None, device: str = "cpu") -> nn.Module:
    """An SAE-Lens SAE from a `save_model` directory or a pretrained release + SAE id."""
    spec = str(spec)
    source = next(s for s in SAE_SOURCES if s.matches(spec))
    log.info("loading SAE %s %s (%s)", spec, sae_id or "", source.name)
    return source.load(spec, sae_id, device).eval()


# ----------------------------------------------------------------------------- both


@dataclass
class Teacher:
    """A loaded teacher LM and its SAE, with the specs they came from."""

    model: nn.Module
    sae: nn.Module
    model_spec: str
    sae_spec: str
    _shas: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def model_sha256(self) -> str:
        if "model" not in self._shas:
            self._shas["model"] = module_sha256(self.model)
        return self._shas["model"]

    @property
    def sae_sha256(self) -> str:
        if "sae" not in self._shas:
            self._shas["sae"] = sae_sha256(self.sae)
        return self._shas["sae"]


def load_teacher(teacher: str | Path = "gpt2", sae: str | Path | None = None,
                 sae_id: str | None = None, device: str = "cpu") -> Teacher:
    """The teacher LM and its SAE; without `sae`, the paper's SAE for a known teacher name.

    The SAE is loaded first so a TransformerLens teacher is built the way the SAE's
    activations were recorded (its config's `model_from_pretrained_kwargs`).
    """
    if sae is None:
        if str(teacher) not in PAPER_SAES:
            raise ValueError(f"no default SAE for teacher {teacher!r}; pass an SAE (a SAE-Lens "
                             "directory, or a release and an SAE id)")
        sae, sae_id = PAPER_SAES[str(teacher)]
    sae_module = load_sae(sae, sae_id, device=device)
    tl_kwargs = dict(sae_module.cfg.metadata.get("model_from_pretrained_kwargs") or {})
    model = load_teacher_model(teacher, device=device, **tl_kwargs)
    sae_spec = f"{sae}:{sae_id}" if sae_id else str(sae)
    return Teacher(model=model, sae=sae_module, model_spec=str(teacher), sae_spec=sae_spec)


def module_sha256(module: nn.Module) -> str:
    """Hex sha256 of a module's state dict: names, dtypes, shapes and bytes, in name order."""
    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().to("cpu").contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}\n".encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def sae_sha256(sae: nn.Module) -> str:
    """Hex sha256 of an SAE's weights and of the config fields that change its latents."""
    cfg = {k: v for k, v in sae.cfg.to_dict().items() if k not in ("device", "metadata")}
    cfg["hook_name"] = sae.cfg.metadata.hook_name
    h = hashlib.sha256(json.dumps(cfg, sort_keys=True, default=str).encode())
    h.update(module_sha256(sae).encode())
    return h.hexdigest()


def _first_line(err: BaseException) -> str:
    text = str(err).strip()  # at most 200 characters: some errors list every model name
    line = text.splitlines()[0] if text else "no message"
    return line if len(line) <= 200 else line[:200] + " ..."
