"""A student's Adagrad with one classic mistake per class; `Adagrad` itself is correct."""

import torch


class Adagrad(torch.optim.Optimizer):
    """A drop-in for torch.optim.Adagrad; each class attribute below, changed, plants one mistake."""

    eps_inside = False  # True: sqrt(sum + eps)
    use_lr_decay = True  # False: lr_decay ignored
    decay_from_first_step = False  # True: lr / (1 + t * lr_decay), t = 1 on the first step
    use_initial_accumulator = True  # False: the sum starts at 0 whatever initial_accumulator_value says

    def __init__(self, params, lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10,
                 maximize=False):  # fmt: skip
        defaults = dict(
            lr=lr, lr_decay=lr_decay, weight_decay=weight_decay, initial_accumulator_value=initial_accumulator_value,
            eps=eps, maximize=maximize,
        )  # fmt: skip
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    start = group["initial_accumulator_value"] if self.use_initial_accumulator else 0.0
                    state.update(step=0, sum=torch.full_like(p, start))
                state["step"] += 1
                t = state["step"] if self.decay_from_first_step else state["step"] - 1
                lr = group["lr"] / (1 + t * group["lr_decay"]) if self.use_lr_decay else group["lr"]
                g = -p.grad if group["maximize"] else p.grad
                g = g + group["weight_decay"] * p
                state["sum"].addcmul_(g, g)
                eps = group["eps"]
                denom = (state["sum"] + eps).sqrt() if self.eps_inside else state["sum"].sqrt() + eps
                p.sub_(lr * g / denom)


class EpsInside(Adagrad):
    eps_inside = True


class IgnoresLrDecay(Adagrad):
    use_lr_decay = False


class DecaysFirstStep(Adagrad):
    decay_from_first_step = True


class IgnoresInitialAccumulator(Adagrad):
    use_initial_accumulator = False
