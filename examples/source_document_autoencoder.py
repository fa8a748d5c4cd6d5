"""The source document's Keras autoencoder (§4.1), written with npae.

The original::

    input_layer = Input(shape=(784,))
    hidden_layer = Dense(64, activation='relu')(input_layer)
    output_layer = Dense(784, activation='sigmoid')(hidden_layer)
    autoencoder = Model(input_layer, output_layer)
    autoencoder.compile(optimizer='adam', loss='binary_crossentropy')
    x_train = np.random.rand(100, 784)
    autoencoder.fit(x_train, x_train, epochs=50, batch_size=1, verbose=0)
    output = autoencoder.predict(x_train)

(its first ``output_layer = Dense(784, ...)(input_layer)`` line is overwritten
before use, so it is left out).  ``npae.Autoencoder(784, hidden=(64,))`` is
this model: 784 → 64 relu → 784 sigmoid, binary cross-entropy.  Keras gives
the training settings to ``compile`` and ``fit``; npae takes them in the
constructor, as scikit-learn does: ``epochs=50, batch_size=1, lr=0.001``, and
``fit`` then trains with Adam at that learning rate — Keras' default Adam.

npae sums the cross-entropy over the 784 pixels of an example (and averages
over examples); Keras averages over the pixels too, so its number is npae's
divided by 784.  Both are printed.  The data are uniform noise, so there is
little to learn: predicting ½ for every pixel costs log 2 ≈ 0.693 per pixel,
and even a perfect copy x̂ = x would cost the pixels' own entropy,
E[−x log x − (1 − x) log(1 − x)] = ½ for x ~ U(0, 1).  Sixty-four code units
for 100 random images get the loss only a little below log 2.

Run:  python examples/source_document_autoencoder.py [--epochs 50]
"""

import argparse

import numpy as np

import npae


def main(epochs=50):
    x_train = np.random.default_rng(0).random((100, 784))
    autoencoder = npae.Autoencoder(784, hidden=(64,), activation="relu", output="sigmoid",
                                   loss="bce", epochs=epochs, batch_size=1, lr=0.001)
    print(autoencoder.built())   # built from n_features=784, so its layers can be shown
    autoencoder.fit(x_train)

    losses = autoencoder.history["loss"]
    shown = sorted({1, *range(10, epochs + 1, 10), epochs})
    for epoch in shown:
        loss = losses[epoch - 1]
        print(f"epoch {epoch:>3}: loss {loss:8.3f} per example  ({loss / 784:.4f} per pixel, Keras' scale)")

    output = autoencoder.reconstruct(x_train)   # Keras' autoencoder.predict(x_train)
    print(f"prediction shape: {output.shape}")
    return output


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=50, help="training epochs (default 50)")
    main(parser.parse_args().epochs)
