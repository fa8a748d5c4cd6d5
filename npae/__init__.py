"""npae — autoencoders and variational autoencoders from scratch in pure NumPy.

Dense layers, activations, losses, Adam and backpropagation written by hand,
every gradient checked against central finite differences.

>>> import npae
>>> X, y = npae.datasets.load_digits()
>>> vae = npae.VAE(hidden=(128,), latent=2, epochs=5).fit(X)
>>> vae.encode(X[:3]).shape
(3, 2)
"""

import sys

from .data import datasets
from .data.batches import RowView
from .models.autoencoder import Autoencoder
from .models.outlier import OutlierDetector
from .models.saving import load, save
from .models.vae import VAE
from .nn import activations, losses
from .training import signals
from .nn.gradcheck import gradcheck
from .nn.gradcheck_objects import gradcheck_layer
from .training.schedules import ConvergenceWarning
from .nn.layers import Dense, Sequential
from .nn.optim import SGD, Adam

# the public modules keep their short paths too: ``import npae.losses``, ``from npae.datasets import …``
for _module in (activations, losses, datasets, signals):
    sys.modules.setdefault(f"{__name__}.{_module.__name__.rsplit('.', 1)[1]}", _module)

__version__ = "0.3.0"
__all__ = ["Autoencoder", "VAE", "OutlierDetector", "ConvergenceWarning", "RowView", "Dense", "Sequential", "Adam", "SGD", "gradcheck",
           "gradcheck_layer", "save", "load", "activations", "losses", "datasets", "signals"]
