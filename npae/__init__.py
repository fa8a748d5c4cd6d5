"""npae — autoencoders and variational autoencoders from scratch in pure NumPy.

Dense layers, activations, losses, Adam and backpropagation written by hand,
every gradient checked against central finite differences.

>>> import npae
>>> X, y = npae.datasets.load_digits()
>>> vae = npae.VAE(hidden=(128,), latent=2, epochs=5).fit(X)
>>> vae.encode(X[:3]).shape
(3, 2)
"""

from . import activations, datasets, losses
from .autoencoder import Autoencoder
from .batches import RowView
from .gradcheck import gradcheck, gradcheck_layer
from .io import load, save
from .layers import Dense, Sequential
from .optim import SGD, Adam
from .vae import VAE

__version__ = "0.2.0"
__all__ = ["Autoencoder", "VAE", "RowView", "Dense", "Sequential", "Adam", "SGD", "gradcheck",
           "gradcheck_layer", "save", "load", "activations", "losses", "datasets"]
