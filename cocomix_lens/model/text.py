"""Text in, text out: TransformerLens's tokenizer idioms and return types for CoCoMixModel.

A model loaded with its tokenizer (`from_pretrained` of a directory holding tokenizer.json,
`Run.open(dir).student`, or `model.tokenizer = load_tokenizer(path)`) gets `to_tokens`,
`to_str_tokens`, `to_string`, `to_single_token`; `forward`, `run_with_cache`, `generate` and
`stream` take strings. CoCoMix models are trained without a BOS token (documents are separated
by `<|endoftext|>`): `to_tokens` adds nothing unless `prepend_bos=True`, which prepends
`<|endoftext|>`; `generate` and `stream` encode a text prompt with the one prompt encoder
(`cocomix_lens.data.tokenizer.prompt_ids`: after `<|endoftext|>`, as a document starts) and
return text without it. Text is converted once, before and after the model runs: the per-step
decode loop only ever sees token ids.

`steering=` takes any object with `context(model, prompt_len) -> context manager` (a
`cocomix_lens.steering.SteeringSpec`, or any steering method), entered for that call only.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
from tokenizers import Tokenizer
from torch import Tensor

from cocomix_lens.data.tokenizer import eos_id, prompt_ids
from cocomix_lens.model.hooks import lm_cross_entropy_loss

RETURN_TYPES = ("logits", "loss", "both", None)
GENERATE_RETURN_TYPES = ("input", "str", "tokens")
TextInput = str | Sequence[str]


class TextMixin:
    """Tokenizer helpers, text-accepting forward and text-returning generation."""

    tokenizer: Tokenizer | None

    # ---- tokenizer ----------------------------------------------------------------------
    def _require_tokenizer(self) -> Tokenizer:
        tok = self.tokenizer
        if tok is None:
            raise ValueError(
                "this model has no tokenizer attached; fix: load it with "
                "CoCoMixModel.from_pretrained(DIR) from a directory holding tokenizer.json "
                "(or Run.open(DIR)), or set model.tokenizer = "
                "cocomix_lens.data.load_tokenizer('tokenizer.json')")
        if tok.get_vocab_size() > self.cfg.d_vocab:
            raise ValueError(
                f"the attached tokenizer has {tok.get_vocab_size()} tokens but the model "
                f"d_vocab={self.cfg.d_vocab}; fix: attach the tokenizer the model was trained with")
        return tok

    def to_tokens(self, input: TextInput, prepend_bos: bool | None = None,
                  padding_side: str | None = None, move_to_device: bool = True,
                  truncate: bool = True) -> Tensor:
        """str -> [1, pos]; list of str -> [batch, max_pos], shorter rows padded with
        `<|endoftext|>` on `padding_side` ("right" by default). No BOS is added unless
        prepend_bos=True, which prepends `<|endoftext|>` (the prompt encoding of `generate`)."""
        rows = self._encode(input, truncate, bool(prepend_bos))
        out = _pad(rows, eos_id(self.tokenizer), padding_side or "right")
        return out.to(self.device) if move_to_device else out

    def _encode(self, input: TextInput, truncate: bool = True,
                prepend_bos: bool = False) -> list[list[int]]:
        """Token ids of each text (cut to n_ctx when truncate); prompt_ids when prepend_bos."""
        tok = self._require_tokenizer()
        texts = [input] if isinstance(input, str) else list(input)
        if not texts or not all(isinstance(t, str) for t in texts):
            raise ValueError("to_tokens takes a string or a non-empty list of strings; "
                             "fix: pass text (token ids need no conversion)")
        if prepend_bos:
            rows = [prompt_ids(tok, t) for t in texts]
        else:
            rows = [e.ids for e in tok.encode_batch(texts, add_special_tokens=False)]
        return [row[: self.cfg.n_ctx] for row in rows] if truncate else rows

    def to_str_tokens(self, input: TextInput | Tensor | Sequence[int],
                      prepend_bos: bool | None = None) -> list[str] | list[list[str]]:
        """Each token as a string: a str or [pos] / [1, pos] ids -> list[str]; a list of str
        or [batch > 1, pos] ids -> one list per row (as TransformerLens)."""
        tok = self._require_tokenizer()
        if isinstance(input, str):
            return self.to_str_tokens(self.to_tokens(input, move_to_device=False)[0])
        if isinstance(input, (list, tuple)) and input and isinstance(input[0], str):
            return [self.to_str_tokens(text) for text in input]
        ids = torch.as_tensor(input)
        if ids.ndim == 2 and ids.shape[0] > 1:
            return [self.to_str_tokens(row) for row in ids]
        ids = ids.reshape(-1).tolist()
        return tok.decode_batch([[i] for i in ids], skip_special_tokens=False)

    def to_string(self, tokens: Tensor | Sequence[int]) -> str | list[str]:
        """Token ids [pos] -> str; [batch, pos] -> list[str]. Special tokens are kept."""
        tok = self._require_tokenizer()
        ids = torch.as_tensor(tokens)
        if ids.ndim == 2:
            return tok.decode_batch(ids.tolist(), skip_special_tokens=False)
        return tok.decode(ids.reshape(-1).tolist(), skip_special_tokens=False)

    def to_single_token(self, string: str) -> int:
        """The id of `string`, which must be exactly one token."""
        ids = self.to_tokens(string, move_to_device=False)[0].tolist()
        if len(ids) != 1:
            raise ValueError(f"{string!r} is {len(ids)} tokens "
                             f"{self.to_str_tokens(ids)}, not one; fix: pass a string that is a "
                             "single token (check with model.to_str_tokens)")
        return ids[0]

    def to_single_str_token(self, token: int) -> str:
        """The string of one token id."""
        return self.to_str_tokens([int(token)])[0]

    # ---- forward ------------------------------------------------------------------------
    def _input_tokens(self, input: Any, padding_side: str | None) -> tuple[Tensor, Tensor | None]:
        """(tokens [batch, pos], mask of real tokens or None) from ids or text."""
        if isinstance(input, Tensor):
            return input, None
        if padding_side not in (None, "right"):
            raise ValueError("forward pads a batch of texts on the right only (the model takes "
                             "no attention mask); fix: drop padding_side or pass 'right'")
        rows = self._encode(input)
        tokens = _pad(rows, eos_id(self.tokenizer), "right").to(self.device)
        if len({len(r) for r in rows}) == 1:
            return tokens, None
        lengths = torch.tensor([len(r) for r in rows], device=tokens.device)
        return tokens, torch.arange(tokens.shape[1], device=tokens.device) < lengths[:, None]

    @staticmethod
    def _output(logits: Tensor, tokens: Tensor, return_type: str | None,
                loss_per_token: bool, mask: Tensor | None) -> Any:
        """TransformerLens return types; loss = mean next-token cross-entropy (padding
        excluded), or per token [batch, pos - 1] with loss_per_token."""
        if return_type == "logits":
            return logits
        if return_type is None:
            return None
        loss = lm_cross_entropy_loss(logits, tokens, attention_mask=mask,
                                     per_token=loss_per_token)
        return loss if return_type == "loss" else (logits, loss)

    @staticmethod
    def _check_return_type(return_type: str | None) -> None:
        if return_type not in RETURN_TYPES:
            raise ValueError(f"return_type={return_type!r} is not one of {RETURN_TYPES}; "
                             "fix: pass 'logits', 'loss', 'both' or None")

    def run_with_cache(self, *model_args, return_cache_object: bool = True,
                       remove_batch_dim: bool = False, **kwargs):
        """As TransformerLens: (output, ActivationCache). The cache also holds the LayerNorm
        scales (`*.hook_scale`, recomputed from the cached residuals) that TL's
        `apply_ln_to_stack` needs; for an interleaved model, split it into token and concept
        rows with `cocomix_lens.model.lens.split_cache` before decomposing the residual."""
        from cocomix_lens.model.lens import activation_cache

        out, cache = super().run_with_cache(*model_args, remove_batch_dim=remove_batch_dim,
                                            **kwargs)
        if not return_cache_object:
            return out, cache
        return out, activation_cache(self, cache, has_batch_dim=not remove_batch_dim)

    # ---- generation ---------------------------------------------------------------------
    def _stop_ids(self, stop_tokens: Sequence[int] | None, stop_at_eos: bool) -> list[int]:
        stops = list(stop_tokens or [])
        if stop_at_eos and self.tokenizer is not None:
            eos = eos_id(self.tokenizer)
            stops += [] if eos in stops else [eos]
        return stops

    def generate(self, input: TextInput | Tensor, max_new_tokens: int = 10,
                 temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                 stop_tokens: Sequence[int] | None = None, seed: int | None = None,
                 use_cache: bool = True, stop_at_eos: bool = True, return_type: str = "input",
                 steering=None) -> Tensor | str | list[str]:
        """Text or ids [batch, pos] -> continuation.

        return_type "input" (TransformerLens's default) returns what came in: a str gives the
        prompt plus the generated text, cut before the first stop token; ids give ids
        [batch, pos + n_new] (finished rows repeat their stop token). "str" / "tokens" force
        one or the other. Generation stops at `<|endoftext|>` unless stop_at_eos=False (when a
        tokenizer is attached). A list of prompts of different token lengths is generated one
        prompt at a time (there is no padding mask). `steering` takes a SteeringSpec
        (cocomix_lens.steering), applied for this call only.
        """
        if return_type not in GENERATE_RETURN_TYPES:
            raise ValueError(f"return_type={return_type!r} is not one of "
                             f"{GENERATE_RETURN_TYPES}; fix: pass 'input', 'str' or 'tokens'")
        as_text = return_type == "str" or (return_type == "input" and not isinstance(input, Tensor))
        kwargs = dict(max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k,
                      top_p=top_p, stop_tokens=self._stop_ids(stop_tokens, stop_at_eos),
                      seed=seed, use_cache=use_cache)
        if isinstance(input, Tensor) or isinstance(input, str):
            return self._generate_one(input, kwargs, steering, as_text, isinstance(input, str))
        prompts = [self.to_tokens(text, prepend_bos=True) for text in input]
        if len({p.shape[1] for p in prompts}) == 1:
            return self._generate_one(torch.cat(prompts), kwargs, steering, as_text, True)
        return [self._generate_one(p, kwargs, steering, as_text, True)[0] for p in prompts]

    def _generate_one(self, input: str | Tensor, kwargs: dict, steering, as_text: bool,
                      from_text: bool):
        tokens = self.to_tokens(input, prepend_bos=True) if isinstance(input, str) else input
        prompt = tokens if tokens.ndim == 2 else tokens[None]
        with self._steering(steering, prompt):
            new = list(super().stream(prompt, **kwargs))
        out = torch.cat([prompt, torch.stack(new, dim=1)], dim=1) if new else prompt.clone()
        if not as_text:
            return out
        n_prompt, stops = prompt.shape[1], kwargs["stop_tokens"]
        # the prompt encoder's leading <|endoftext|> is not part of the text
        first = 1 if from_text else 0
        texts = [self.to_string(torch.cat([row[first:n_prompt], _cut(row[n_prompt:], stops)]))
                 for row in out]
        return texts[0] if isinstance(input, str) else texts

    def stream(self, input: str | Tensor, max_new_tokens: int = 10, temperature: float = 1.0,
               top_k: int | None = None, top_p: float | None = None,
               stop_tokens: Sequence[int] | None = None, seed: int | None = None,
               use_cache: bool = True, stop_at_eos: bool = True, return_type: str = "input",
               steering=None) -> Iterator[Tensor | str]:
        """Yield the continuation one step at a time: token ids [batch] for ids in, text
        pieces for a str in (or return_type="str"); a piece that ends inside a multi-byte
        character is held back until the character completes. Text stops before the first
        stop token."""
        if return_type not in GENERATE_RETURN_TYPES:
            raise ValueError(f"return_type={return_type!r} is not one of "
                             f"{GENERATE_RETURN_TYPES}; fix: pass 'input', 'str' or 'tokens'")
        if not isinstance(input, (str, Tensor)):
            raise ValueError("stream takes one prompt (a str or token ids); fix: loop over "
                             "prompts, or use generate for a list")
        tokens = self.to_tokens(input, prepend_bos=True) if isinstance(input, str) else input
        stops = self._stop_ids(stop_tokens, stop_at_eos)
        ids = super().stream(tokens, max_new_tokens=max_new_tokens, temperature=temperature,
                             top_k=top_k, top_p=top_p, stop_tokens=stops, seed=seed,
                             use_cache=use_cache)
        as_text = return_type == "str" or (return_type == "input" and isinstance(input, str))
        # A plain function returning a generator: the checks above and the hooks the token
        # stream binds happen now, not at the first next() (maybe after a `with` block).
        return self._stream_pieces(ids, stops, as_text, steering, tokens)

    def _stream_pieces(self, ids: Iterator[Tensor], stops, as_text: bool, steering,
                       tokens: Tensor) -> Iterator[Tensor | str]:
        with self._steering(steering, tokens):
            yield from (_text_pieces(self, ids, stops) if as_text else ids)

    def _steering(self, steering, tokens: Tensor):
        """`steering.context(self, prompt_len)` (prompt = `tokens`), or a no-op context."""
        from contextlib import nullcontext

        if steering is None:
            return nullcontext()
        if not hasattr(steering, "context"):
            raise ValueError(f"steering={type(steering).__name__} cannot steer: pass a "
                             "cocomix_lens.steering.SteeringSpec (e.g. SteeringSpec.load(path))")
        return steering.context(self, tokens.shape[-1])


def _pad(rows: list[list[int]], pad_id: int, side: str) -> Tensor:
    if side not in ("right", "left"):
        raise ValueError(f"padding_side={side!r}; fix: pass 'right' or 'left'")
    width = max(len(r) for r in rows)
    if width == 0:
        raise ValueError("the text tokenizes to no tokens; fix: pass a non-empty string")
    pads = [[pad_id] * (width - len(r)) for r in rows]
    padded = [r + p if side == "right" else p + r for r, p in zip(rows, pads)]
    return torch.tensor(padded, dtype=torch.long)


def _cut(ids: Tensor, stops: Sequence[int]) -> Tensor:
    """ids [n] up to (not including) the first stop token."""
    if not stops:
        return ids
    hit = torch.isin(ids, torch.tensor(list(stops), device=ids.device)).nonzero()
    return ids if len(hit) == 0 else ids[: int(hit[0])]


def _text_pieces(model, ids: Iterator[Tensor], stops: Sequence[int]) -> Iterator[str]:
    """Incremental decoding of a one-row id stream into text pieces."""
    done, emitted = [], ""
    for nxt in ids:
        if nxt.numel() != 1:
            raise ValueError("text streaming takes one prompt; fix: pass a str, or ids [1, pos]")
        if int(nxt) in stops:
            break
        done.append(int(nxt))
        text = model.tokenizer.decode(done, skip_special_tokens=False)
        if not text.endswith("\ufffd"):  # a multi-byte character may still be incomplete
            yield text[len(emitted):]
            emitted = text
    text = model.tokenizer.decode(done, skip_special_tokens=False) if done else ""
    if len(text) > len(emitted):
        yield text[len(emitted):]
