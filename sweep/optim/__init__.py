"""From-scratch optimizers, each a drop-in for its torch.optim namesake, each maths written once.

The per-tensor `update` functions are what sweep's trainer calls on packs of K models (hyperparameters as
K-vectors); the classes wrap the same functions for ordinary `nn.Module` parameters.
"""

from sweep.optim import adagrad, adam, rmsprop, sgd
from sweep.optim.adagrad import Adagrad
from sweep.optim.adam import Adam, AdamW
from sweep.optim.anneal import SimulatedAnnealing, anneal_step
from sweep.optim.rmsprop import RMSprop
from sweep.optim.sgd import SGD

__all__ = [
    "SGD",
    "Adagrad",
    "Adam",
    "AdamW",
    "RMSprop",
    "SimulatedAnnealing",
    "adagrad",
    "adam",
    "anneal_step",
    "rmsprop",
    "sgd",
]
