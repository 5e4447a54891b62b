"""The pack's MLP: backpropagation written out (`losses_and_grads`) against autograd through `forward`."""

from __future__ import annotations

import pytest
import torch

from sweep import model as mlp

SIZES = [5, 7, 6, 3]


def pack(k: int, dtype=torch.float64, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    params = []
    for fan_in, fan_out in zip(SIZES[:-1], SIZES[1:]):
        params.append(torch.randn(k, fan_in, fan_out, generator=g, dtype=dtype).requires_grad_(True))
        params.append(torch.randn(k, 1, fan_out, generator=g, dtype=dtype).requires_grad_(True))
    return params


def batch(k: int, task: str, activation: str, b: int = 9, dtype=torch.float64) -> mlp.Batch:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(k, b, SIZES[0], generator=g, dtype=dtype)
    if task == "classification":
        y = torch.randint(0, SIZES[-1], (k, b), generator=g)
    else:
        y = torch.randn(k, b, SIZES[-1], generator=g, dtype=dtype)
    return mlp.Batch(x, y, activation, task)


@pytest.mark.parametrize("task", ["classification", "regression"])
@pytest.mark.parametrize("activation", sorted(mlp.ACTIVATIONS))
def test_written_out_gradients_are_autograds(task, activation):
    """Every layer's weight and bias gradient, for every activation and loss, equals autograd's through the
    forward pass to float64 rounding; the losses are the same numbers."""
    params, b = pack(4), batch(4, task, activation)
    ref_loss = b.losses(params)
    ref = torch.autograd.grad(ref_loss.sum(), params)
    loss, grads = b.losses_and_grads(params)
    torch.testing.assert_close(loss, ref_loss.detach(), rtol=0, atol=0)
    assert len(grads) == len(ref)
    for got, want in zip(grads, ref):
        assert got.shape == want.shape
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-14)


def test_each_models_gradient_is_its_own_whatever_the_pack():
    """Model k's loss and gradient, computed in a pack of 5, are exactly those it gets alone (float32: the bits
    a run records must not depend on the pack it trained in)."""
    params, b = pack(5, torch.float32), batch(5, "classification", "relu", b=64, dtype=torch.float32)
    loss, grads = b.losses_and_grads(params)
    for k in range(5):
        one = [p.detach()[k : k + 1] for p in params]
        alone = mlp.Batch(b.x[k : k + 1], b.y[k : k + 1], b.activation, b.task)
        loss_k, grads_k = alone.losses_and_grads(one)
        assert torch.equal(loss_k[0], loss[k])
        for g, g_k in zip(grads, grads_k):
            assert torch.equal(g_k[0], g[k])


def test_the_loss_is_the_mean_cross_entropy_of_each_models_own_batch():
    """per_model_loss's classification loss is torch's cross-entropy, model by model."""
    params, b = pack(3), batch(3, "classification", "tanh")
    out = mlp.forward(params, b.x, "tanh")
    for k in range(3):
        want = torch.nn.functional.cross_entropy(out[k], b.y[k])
        torch.testing.assert_close(mlp.per_model_loss(out, b.y, "classification")[k], want, rtol=1e-14, atol=0)


def test_no_autograd_graph_is_recorded():
    """The written-out step records nothing for autograd (that is where its speed comes from)."""
    params, b = pack(2), batch(2, "classification", "relu")
    loss, grads = b.losses_and_grads(params)
    assert loss.grad_fn is None and all(g.grad_fn is None for g in grads)
