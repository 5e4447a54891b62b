"""A student's SGD (plain, momentum, Nesterov) with one classic mistake per class; `SGD` itself is correct."""

import torch


class SGD(torch.optim.Optimizer):
    """A drop-in for torch.optim.SGD; each class attribute below, changed, plants one mistake."""

    decay_sign = 1.0  # -1: weight decay with the wrong sign
    use_maximize = True  # False: maximize ignored
    use_dampening = True  # False: dampening ignored
    zero_buffer = False  # True: the buffer starts at zero, so the first step is damped too
    use_nesterov = True  # False: the plain momentum step under nesterov=True
    lookahead_sign = 1.0  # -1: Nesterov's look-ahead with the wrong sign
    lr_in_buffer = False  # True: b = mu b + lr g, p -= b (right until a schedule changes lr)

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False):
        defaults = dict(
            lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov,
            maximize=maximize,
        )  # fmt: skip
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            mu = group["momentum"]
            damp = group["dampening"] if self.use_dampening else 0.0
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = -p.grad if group["maximize"] and self.use_maximize else p.grad
                g = g + self.decay_sign * group["weight_decay"] * p
                lr = group["lr"]
                if mu and self.lr_in_buffer:
                    g, lr = lr * g, 1.0
                if mu:
                    state = self.state[p]
                    if "buf" not in state:
                        if self.zero_buffer:
                            state["buf"] = torch.zeros_like(p).mul_(mu).add_(g, alpha=1 - damp)
                        else:
                            state["buf"] = g.clone()
                    else:
                        state["buf"].mul_(mu).add_(g, alpha=1 - damp)
                    buf = state["buf"]
                    g = g + self.lookahead_sign * mu * buf if group["nesterov"] and self.use_nesterov else buf
                p.sub_(lr * g)


class WrongDecaySign(SGD):
    decay_sign = -1.0


class IgnoresMaximize(SGD):
    use_maximize = False


class IgnoresDampening(SGD):
    use_dampening = False


class ZeroBuffer(SGD):
    zero_buffer = True


class PlainMomentum(SGD):
    use_nesterov = False


class LookaheadSign(SGD):
    lookahead_sign = -1.0


class LrInBuffer(SGD):
    lr_in_buffer = True
