"""The models: scikit-learn's conventions, fitting and inference shared by both, the autoencoder,
the VAE, and saving and loading them.
"""
