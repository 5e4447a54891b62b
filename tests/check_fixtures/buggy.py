"""Planted bugs: a student's Adam with one classic mistake each (the rest is tests/check_fixtures/myopt.py's)."""

import torch


class _Adam(torch.optim.Optimizer):
    bias_correction = True  # False: the first bug
    decoupled = False  # AdamW when True
    l2_under_adamw = False  # the second bug: AdamW's defaults, but the decay is added to the gradient
    t_from_zero = False  # the third bug: t is read before it is incremented
    correct_v = True  # False: v is not bias-corrected (m is)
    v_correction_squared = False  # True: sqrt(v) / (1 - beta2**t), the square root of the correction forgotten
    decay_with_lr = True  # False: AdamW shrinks by (1 - weight_decay), not (1 - lr * weight_decay)
    use_maximize = True  # False: maximize ignored

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False,
                 maximize=False):  # fmt: skip
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize)
        super().__init__(params, defaults)

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
                g = -p.grad if group["maximize"] and self.use_maximize else p.grad
                if wd and self.decoupled and not self.l2_under_adamw:
                    p.mul_(1 - (lr if self.decay_with_lr else 1.0) * wd)
                elif wd:
                    g = g + wd * p
                state["m"].mul_(beta1).add_(g, alpha=1 - beta1)
                state["v"].mul_(beta2).addcmul_(g, g, value=1 - beta2)
                v = state["v"]
                if group["amsgrad"]:
                    torch.maximum(state["v_max"], v, out=state["v_max"])
                    v = state["v_max"]
                if self.bias_correction:
                    m_hat, v_hat = state["m"] / (1 - beta1**t), v / (1 - beta2**t) if self.correct_v else v
                else:
                    m_hat, v_hat = state["m"], v
                if self.v_correction_squared:
                    p.sub_(lr * m_hat / (v.sqrt() / (1 - beta2**t) + eps))
                else:
                    p.sub_(lr * m_hat / (v_hat.sqrt() + eps))
                if self.t_from_zero:
                    state["step"] += 1


class NoBiasCorrection(_Adam):
    bias_correction = False


class TFromZero(_Adam):
    t_from_zero = True


class NoCorrectionOfV(_Adam):
    correct_v = False


class VCorrectionWithoutSqrt(_Adam):
    v_correction_squared = True


class IgnoresMaximize(_Adam):
    use_maximize = False


class _AdamW(_Adam):
    decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False,
                 maximize=False):  # fmt: skip
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize)


class L2AdamW(_AdamW):
    l2_under_adamw = True


class DecayWithoutLr(_AdamW):
    decay_with_lr = False


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


class LrFromInit(_Adam):
    """A fifth bug: lr kept from __init__ (an attribute), so a schedule's change of group['lr'] is never seen."""

    def __init__(self, params, lr=1e-3, **kwargs):
        super().__init__(params, lr, **kwargs)
        self.lr = lr

    def step(self, closure=None):
        changed = [g["lr"] for g in self.param_groups]
        for g in self.param_groups:
            g["lr"] = self.lr
        try:
            return super().step(closure)
        finally:
            for g, lr in zip(self.param_groups, changed):
                g["lr"] = lr


class NoLr(torch.optim.Optimizer):
    """Bad input: takes `learning_rate`, not torch's `lr`."""

    def __init__(self, params, learning_rate=1e-3):
        super().__init__(params, dict(learning_rate=learning_rate))
