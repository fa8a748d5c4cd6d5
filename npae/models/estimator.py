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

**The model protocol** — written down here, once.  A model class provides:

* its network: ``check_settings()`` (the hyper-parameters, checked, as a dict),
  ``network_settings`` (those a new network needs), ``parameter_shapes(d)``,
  ``make_network(d, rng)``, ``bind_params(views)``, ``network_params()`` (name → array) and
  ``code_size``;
* its loss, written once: ``batch_loss(X, eps, work, grads, scale, weights)`` returns the loss
  of the rows X times ``scale`` and writes its gradient into ``grads`` (name → array, every
  entry overwritten), every intermediate array in the workspace ``work``
  (:class:`npae.nn.buffers.Workspace`); ``loss_weights(epoch)`` is the ``weights`` of a
  training epoch (the VAE's warm-up β), ``loss_weights(None)`` the objective's own;
  ``draw_noise(n, rng)`` and ``noise_rows(eps, rows)`` its randomness; ``rows_coupled``, True
  when a row's loss depends on the other rows of its batch;
* its row maps: ``encode_batch``, ``decode_batch``, ``score_batch`` on a checked batch.

What the training step (:mod:`npae.training.step`) asks of a model is ``parameter_buffer()``
— the flat array every parameter is a view of, and its layout — ``batch_loss``,
``noise_rows``, ``rows_coupled`` and ``alpha``; the training loop
(:mod:`npae.training.loop`) adds ``draw_noise``, ``loss_weights``, ``average_loss`` and
``params``.  Neither reads anything else of the model.

From ``VAE.fit(X)`` to the first matrix product: ``Fitting.fit`` → ``Fitting.run_training``
→ ``loop.run`` → ``Step.__call__`` → ``VAE.batch_loss`` → ``layers.forward_stack`` →
``layers.dense_forward`` (``np.matmul``).
"""

from .conventions import Conventions, NotFittedError
from .fitting import Fitting
from .inference import Inference

__all__ = ["Estimator", "NotFittedError"]


class Estimator(Fitting, Inference, Conventions):
    """Base of :class:`~npae.Autoencoder` and :class:`~npae.VAE`; see those, and the protocol above."""
