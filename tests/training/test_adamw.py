"""The chunked CPU AdamW takes torch's AdamW steps bit for bit, and resumes from either's state."""

import copy

import pytest
import torch

from training import adamw
from training.optim import param_groups


class _Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.W_in = torch.nn.Parameter(torch.randn(37, 29) * 0.1)  # decayed
        self.W_E = torch.nn.Parameter(torch.randn(53, 11) * 0.1)  # not decayed (embedding)
        self.b = torch.nn.Parameter(torch.randn(29) * 0.1)
        # A strided parameter: stepped whole, as torch steps it.
        self.W_out = torch.nn.Parameter(torch.randn(29, 13).t() * 0.1)


def _optim(cls, model, lr=3e-3):
    opt = cls(param_groups(model, 0.1), lr=lr, betas=(0.9, 0.95), eps=1e-8)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 3) * 0.9**s)
    return opt, sched


def _steps(model, opt, sched, first, n):
    for step in range(first, first + n):
        g = torch.Generator().manual_seed(step)
        for p in model.parameters():
            # Grads spanning magnitudes, and zeros, as a sparse concept head's get.
            p.grad = torch.randn(p.shape, generator=g) * 10.0 ** torch.randint(
                -6, 1, p.shape, generator=g) * (torch.rand(p.shape, generator=g) > 0.2)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)


def _same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))


def _same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    pairs = [(sa["state"][i][k], sb["state"][i][k]) for i in sa["state"] for k in sa["state"][i]]
    return sa["param_groups"] == sb["param_groups"] and all(torch.equal(*p) for p in pairs)


@pytest.mark.parametrize("chunk", [64, 100, 1 << 18])  # aligned, ragged, whole tensors
def test_chunked_adamw_steps_are_bitwise_torchs(chunk, monkeypatch):
    monkeypatch.setattr(adamw, "CHUNK", chunk)
    chunked = []  # the chunked path runs (torch's own step would pass this test too)
    step_param = adamw._step_param
    monkeypatch.setattr(adamw, "_step_param", lambda *a: (chunked.append(1), step_param(*a)))
    torch.manual_seed(0)
    ref = _Net()
    ours = copy.deepcopy(ref)
    ref_opt, ours_opt = _optim(torch.optim.AdamW, ref), _optim(adamw.AdamW, ours)
    _steps(ref, *ref_opt, 0, 5)
    _steps(ours, *ours_opt, 0, 5)
    assert len(chunked) == 5 * len(list(ours.parameters()))
    assert _same(ref, ours)
    assert _same_state(ref_opt[0], ours_opt[0])


def test_resume_from_either_optimizers_state_is_bitwise(monkeypatch):
    monkeypatch.setattr(adamw, "CHUNK", 100)
    torch.manual_seed(0)
    ref = _Net()
    ref_opt = _optim(torch.optim.AdamW, ref)
    _steps(ref, *ref_opt, 0, 3)
    for saver in (torch.optim.AdamW, adamw.AdamW):
        saved = copy.deepcopy(ref)
        saved_opt = _optim(saver, saved)
        saved_opt[0].load_state_dict(copy.deepcopy(ref_opt[0].state_dict()))
        saved_opt[1].load_state_dict(ref_opt[1].state_dict())
        # Save from one class and resume in the other, as an older checkpoint would be.
        resumed = copy.deepcopy(saved)
        resumed_opt = _optim(adamw.AdamW if saver is torch.optim.AdamW else torch.optim.AdamW,
                             resumed)
        resumed_opt[0].load_state_dict(copy.deepcopy(saved_opt[0].state_dict()))
        resumed_opt[1].load_state_dict(saved_opt[1].state_dict())
        _steps(saved, *saved_opt, 3, 2)
        _steps(resumed, *resumed_opt, 3, 2)
        assert _same(saved, resumed)
        assert _same_state(saved_opt[0], resumed_opt[0])
    _steps(ref, *ref_opt, 3, 2)  # and as the run that was never interrupted
    assert _same(ref, resumed)


def test_options_the_chunks_do_not_implement_run_torchs_step(monkeypatch):
    calls = []
    monkeypatch.setattr(adamw, "_step_param", lambda *a: calls.append(a))
    torch.manual_seed(0)
    model = _Net()
    opt = adamw.AdamW(model.parameters(), lr=1e-3, amsgrad=True)
    _steps(model, opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0), 0, 1)
    assert not calls and all(len(s) == 4 for s in opt.state.values())  # with max_exp_avg_sq


@pytest.mark.parametrize("version", ["2.5.1", "2.1.0+cpu"])
def test_a_torch_other_than_the_copied_one_takes_torchs_own_step(version, monkeypatch):
    calls = []
    monkeypatch.setattr(adamw, "_step_param", lambda *a: calls.append(a))
    monkeypatch.setattr(torch, "__version__", version)
    torch.manual_seed(0)
    model = _Net()
    opt = adamw.AdamW(model.parameters(), lr=1e-3)
    _steps(model, opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0), 0, 1)
    assert not calls and all(len(s) == 3 for s in opt.state.values())  # torch stepped them
