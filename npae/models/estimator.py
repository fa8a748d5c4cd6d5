"""What the autoencoder and the VAE share: scikit-learn's estimator conventions, without scikit-learn.

* ``__init__`` stores its arguments as given; ``get_params`` returns them and
  ``set_params`` only sets them.  They are checked when they are used: at
  ``fit``, or when the network is first needed.
* ``fit(X)`` builds the network from the data's width and trains it from the
  seed, every time (unless ``warm_start=True``): the same seed gives the same
  model whatever was fitted before.  ``partial_fit(X)`` is one more pass,
  keeping the optimiser's state.  Learned state ends in ``_``.
* A model is *fitted* once it has parameters: after ``fit``, ``partial_fit`` or
  ``npae.load`` — or, with ``n_features`` given, after the first use of ``params``,
  ``loss_and_grads`` or ``encode``, which builds the network from the seed (so a
  model trained by hand is fitted, and works in a ``Pipeline``).
* ``score(X)`` is higher for better models (the VAE's mean ELBO, the autoencoder's
  negative reconstruction loss), as ``GridSearchCV`` and ``cross_val_score`` expect.
* DataFrames set ``feature_names_in_`` (:mod:`npae.data.columns`); ``set_output`` returns them.
* Dask arrays are recognised by their interface and transformed lazily,
  block by block (:mod:`npae.data.dask_arrays`); Dask is never imported.

A model class provides the network through this protocol (see each model):
``check_settings()``; ``parameter_shapes(d)``; ``make_network(d, rng)`` and
``bind_params(views)`` (the parameters become views of one buffer, ``params_buffer_``);
``network_params()``; ``code_size``; ``draw_noise(n, rng)``; ``network_loss_and_grads``;
``training_step(optimizer, batch_size, n_jobs)``; ``encode_batch``, ``decode_batch``, ``score_batch``.
"""

from .conventions import Conventions, NotFittedError
from .fitting import Fitting
from .inference import Inference

__all__ = ["Estimator", "NotFittedError"]


class Estimator(Fitting, Inference, Conventions):
    """Base of :class:`~npae.Autoencoder` and :class:`~npae.VAE`; see those, and the protocol above."""
