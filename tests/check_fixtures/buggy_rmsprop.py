"""A student's RMSprop with one classic mistake per class; `RMSprop` itself is correct."""

import torch


class RMSprop(torch.optim.Optimizer):
    """A drop-in for torch.optim.RMSprop; each class attribute below, changed, plants one mistake."""

    eps_inside = False  # True: sqrt(v + eps)
    alpha_swapped = False  # True: v = (1 - alpha) v + alpha g²
    use_centered = True  # False: centered=True ignored (the variance without the mean)
    momentum_on_raw_gradient = False  # True: b = mu b + g, p -= lr b / denom
    use_maximize = True  # False: maximize ignored

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False,
                 maximize=False):  # fmt: skip
        defaults = dict(
            lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum, centered=centered,
            maximize=maximize,
        )  # fmt: skip
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            a = 1 - group["alpha"] if self.alpha_swapped else group["alpha"]
            mu, eps = group["momentum"], group["eps"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state.update(v=torch.zeros_like(p), mean=torch.zeros_like(p), buf=torch.zeros_like(p))
                g = -p.grad if group["maximize"] and self.use_maximize else p.grad
                g = g + group["weight_decay"] * p
                state["v"].mul_(a).addcmul_(g, g, value=1 - a)
                v = state["v"]
                if group["centered"] and self.use_centered:
                    state["mean"].mul_(a).add_(g, alpha=1 - a)
                    v = v - state["mean"] ** 2
                denom = (v + eps).sqrt() if self.eps_inside else v.sqrt() + eps
                if mu and self.momentum_on_raw_gradient:
                    p.sub_(group["lr"] * state["buf"].mul_(mu).add_(g) / denom)
                elif mu:
                    p.sub_(group["lr"] * state["buf"].mul_(mu).add_(g / denom))
                else:
                    p.sub_(group["lr"] * g / denom)


class EpsInside(RMSprop):
    eps_inside = True


class AlphaSwapped(RMSprop):
    alpha_swapped = True


class IgnoresCentered(RMSprop):
    use_centered = False


class MomentumOnRawGradient(RMSprop):
    momentum_on_raw_gradient = True


class IgnoresMaximize(RMSprop):
    use_maximize = False
