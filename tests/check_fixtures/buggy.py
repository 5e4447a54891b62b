"""Planted bugs: a student's Adam with one classic mistake each (the rest is tests/check_fixtures/myopt.py's)."""

import torch


class _Adam(torch.optim.Optimizer):
    bias_correction = True  # False: the first bug
    decoupled = False  # AdamW when True
    l2_under_adamw = False  # the second bug: AdamW's defaults, but the decay is added to the gradient
    t_from_zero = False  # the third bug: t is read before it is incremented

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            lr, (beta1, beta2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state.update(step=0, m=torch.zeros_like(p), v=torch.zeros_like(p), v_max=torch.zeros_like(p))
                if not self.t_from_zero:
                    state["step"] += 1
                t = state["step"]
                g = p.grad
                if wd and self.decoupled and not self.l2_under_adamw:
                    p.mul_(1 - lr * wd)
                elif wd:
                    g = g + wd * p
                state["m"].mul_(beta1).add_(g, alpha=1 - beta1)
                state["v"].mul_(beta2).addcmul_(g, g, value=1 - beta2)
                v = state["v"]
                if group["amsgrad"]:
                    torch.maximum(state["v_max"], v, out=state["v_max"])
                    v = state["v_max"]
                if self.bias_correction:
                    m_hat, v_hat = state["m"] / (1 - beta1**t), v / (1 - beta2**t)
                else:
                    m_hat, v_hat = state["m"], v
                p.sub_(lr * m_hat / (v_hat.sqrt() + eps))
                if self.t_from_zero:
                    state["step"] += 1


class NoBiasCorrection(_Adam):
    bias_correction = False


class TFromZero(_Adam):
    t_from_zero = True


class L2AdamW(_Adam):
    decoupled = True
    l2_under_adamw = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)


class GlobalStepAdam(_Adam):
    """A fourth bug: one step count for the whole optimizer (an attribute, so not in state_dict, and advanced for
    parameters without a gradient). The plain checks pass; resuming and grad None do not."""

    def step(self, closure=None):
        self.t = getattr(self, "t", 0) + 1
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None and self.state[p]:
                    self.state[p]["step"] = self.t - 1  # _Adam.step adds the 1
        return super().step(closure)


class NoLr(torch.optim.Optimizer):
    """Bad input: takes `learning_rate`, not torch's `lr`."""

    def __init__(self, params, learning_rate=1e-3):
        super().__init__(params, dict(learning_rate=learning_rate))
