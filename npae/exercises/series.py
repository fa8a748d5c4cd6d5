"""The exercise series, in course order: one row of :data:`SERIES` per exercise.

Each row says what the student's class is (its name, its kind, its inputs with their shapes
and domains, which inputs are differentiated), the reference it is graded against, and the
fixed inputs of the forward-value test — chosen to break the unstable forms (logits of ±800,
log-weights near −800).
"""

from typing import Callable, NamedTuple

import numpy as np

from . import solutions
from .statements import STATEMENTS, STUBS


class Exercise(NamedTuple):
    name: str
    summary: str
    classes: dict            # class name -> reference class
    kind: str                # "layer", "loss" or "model"
    inputs: tuple            # (name, shape, domain), in argument order
    wrt: tuple               # the inputs differentiated
    fixed: Callable          # rng -> dict of the forward-value test's inputs

    @property
    def statement(self):
        return STATEMENTS[self.name]

    @property
    def stub(self):
        return STUBS[self.name]

    @property
    def input_names(self):
        return [name for name, _, _ in self.inputs]


def _standard(exercise_inputs):
    def fixed(rng):
        return {name: _draw(shape, domain, rng) for name, shape, domain in exercise_inputs}
    return fixed


def _draw(shape, domain, rng):
    if domain == "probability":
        return rng.uniform(0.05, 0.95, size=shape)
    return rng.standard_normal(shape)


def _wide(rng):
    """Inputs from −40 to 40 for the activations."""
    return {"X": np.linspace(-40, 40, 24).reshape(4, 6) + 0.1 * rng.standard_normal((4, 6))}


def _extreme_logits(rng):
    logits = 3 * rng.standard_normal((4, 5))
    logits[0] = [800.0, -800.0, 40.0, -40.0, 0.0]
    return {"logits": logits, "x": rng.uniform(size=(4, 5))}


def _far_log_weights(rng):
    return {"log_w": -800.0 + 5 * rng.standard_normal((4, 5))}


def _one_layer_vae(rng):
    return {"X": (rng.uniform(size=(4, 6)) < 0.5).astype(float), "eps": rng.standard_normal((4, 2))}


_GAUSSIAN_INPUTS = (("x", (5, 3), "real"), ("mu", (5, 3), "real"), ("logvar", (3,), "real"))
_KL_INPUTS = (("mu", (4, 3), "real"), ("logvar", (4, 3), "real"))
_REPARAM_INPUTS = (("mu", (4, 3), "real"), ("logvar", (4, 3), "real"), ("eps", (4, 3), "real"))
_DENSE_INPUTS = (("X", (5, 4), "real"),)

SERIES = (
    Exercise("dense", "the dense layer Y = X W + b: dW = Xᵀ dY, db = Σ dY, dX = dY Wᵀ",
             {"Dense": solutions.Dense}, "layer", _DENSE_INPUTS, ("X",), _standard(_DENSE_INPUTS)),
    Exercise("activations", "sigmoid, tanh and relu, each with f′ taken from its output",
             {"Sigmoid": solutions.Sigmoid, "Tanh": solutions.Tanh, "Relu": solutions.Relu},
             "layer", (("X", (4, 6), "real"),), ("X",), _wide),
    Exercise("bce_logits", "binary cross-entropy from logits, stable, with the fused σ(t) − x",
             {"BCEWithLogits": solutions.BCEWithLogits}, "loss",
             (("logits", (4, 5), "real"), ("x", (4, 5), "probability")), ("logits",), _extreme_logits),
    Exercise("squared_error", "squared error summed over features, averaged over rows: 2 (x̂ − x) / n",
             {"SquaredError": solutions.SquaredError}, "loss",
             (("prediction", (4, 3), "real"), ("x", (4, 3), "real")), ("prediction",),
             _standard((("prediction", (4, 3), "real"), ("x", (4, 3), "real")))),
    Exercise("gaussian_nll", "Gaussian NLL with a learned log σ² per feature: the adjoint of broadcasting",
             {"GaussianNLL": solutions.GaussianNLL}, "loss", _GAUSSIAN_INPUTS, ("mu", "logvar"),
             _standard(_GAUSSIAN_INPUTS)),
    Exercise("kl", "the analytic KL(N(μ, diag e^logvar) ‖ N(0, I)), summed over units, mean over rows",
             {"KL": solutions.KL}, "loss", _KL_INPUTS, ("mu", "logvar"), _standard(_KL_INPUTS)),
    Exercise("reparameterize", "the sample z = μ + e^{logvar/2} ⊙ ε, with ε a fixed input",
             {"Reparameterize": solutions.Reparameterize}, "layer", _REPARAM_INPUTS, ("mu", "logvar"),
             _standard(_REPARAM_INPUTS)),
    Exercise("iwae_weights", "the IWAE bound by logsumexp; its gradient, the normalised importance weights",
             {"IWAELoss": solutions.IWAELoss}, "loss", (("log_w", (4, 5), "real"),), ("log_w",),
             _far_log_weights),
    Exercise("vae_backward", "the backward pass of a whole one-layer VAE (BCE + KL, ε fixed)",
             {"OneLayerVAE": solutions.OneLayerVAE}, "model",
             (("X", (4, 6), "probability"), ("eps", (4, 2), "real")), (), _one_layer_vae),
)

BY_NAME = {exercise.name: exercise for exercise in SERIES}


def get(name):
    """The exercise called ``name``; ValueError naming the valid ones otherwise."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise ValueError(f"no exercise {name!r}; the exercises are: {', '.join(BY_NAME)}") from None
