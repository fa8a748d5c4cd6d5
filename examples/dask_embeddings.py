"""Embeddings of data that lives on a Dask cluster, with npae: fit by streaming blocks, encode lazily.

The same code runs on a laptop and on a real cluster: without ``--scheduler`` it starts a
LocalCluster of two worker processes; with ``--scheduler tcp://host:8786`` it connects to yours.

    python examples/dask_embeddings.py                       # LocalCluster, the bundled digits
    python examples/dask_embeddings.py --scheduler tcp://scheduler:8786 --rows 1000000

The data here is the bundled digits, tiled to ``--rows`` rows with a little noise and chunked
into blocks of ``--block`` rows; on a cluster it would come from ``dask.array.from_zarr``,
``from_npy_stack`` or a DataFrame's ``to_dask_array``.  npae never imports Dask: it recognises a
Dask array by its interface, trains on one block at a time on the client (each epoch visits the
blocks in a shuffled order, and each block's rows in shuffled batches), and returns lazy results
that the workers compute, each with its own copy of the model.
"""

import argparse
import time

import dask.array as da
import numpy as np
from distributed import Client, LocalCluster

import npae


def digits_on_the_cluster(rows, block, seed=0):
    """``rows`` noisy copies of the bundled digits as a Dask array, made block by block."""
    X, _ = npae.datasets.load_digits()

    def make(block_info=None):
        start, stop = block_info[None]["array-location"][0]
        rng = np.random.default_rng(seed + start)
        picked = X[rng.integers(0, len(X), stop - start)]
        return np.clip(picked + rng.normal(0, 0.05, picked.shape), 0, 1).astype(np.float32)

    return da.map_blocks(make, chunks=(da.core.normalize_chunks(block, (rows,))[0], (X.shape[1],)),
                         dtype=np.float32)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scheduler", help="a Dask scheduler's address (default: a LocalCluster)")
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--block", type=int, default=20_000)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()

    cluster = None if args.scheduler else LocalCluster(n_workers=2, threads_per_worker=1,
                                                       dashboard_address=None)
    with Client(args.scheduler or cluster) as client:
        print(f"cluster: {len(client.scheduler_info()['workers'])} workers")
        X = digits_on_the_cluster(args.rows, args.block)
        print(f"data: {X.shape[0]:,} rows of {X.shape[1]} features in {X.numblocks[0]} blocks")

        model = npae.VAE(hidden=(128,), latent=2, epochs=args.epochs, batch_size=256, verbose=1)
        start = time.perf_counter()
        model.fit(X)                                  # streams the blocks to the client
        print(f"fit: {time.perf_counter() - start:.1f} s; {model!r}")

        codes = model.transform(X)                    # lazy: nothing computed yet
        print(f"codes: {codes!r}")
        start = time.perf_counter()
        summary = da.stack([codes.mean(axis=0), codes.std(axis=0)]).compute()
        print(f"encoded {codes.shape[0]:,} rows on the workers in {time.perf_counter() - start:.1f} s;"
              f" code mean {np.round(summary[0], 3)}, std {np.round(summary[1], 3)}")
        print(f"held-out ELBO (blockwise): {model.score(X[:args.block]):.2f} nats per row")
    if cluster is not None:
        cluster.close()


if __name__ == "__main__":
    main()
