"""The team of threads (npae.threads) and the flat buffers (npae.flat) a fast step runs on."""

import threading

import numpy as np
import pytest

import npae
from npae.nn import buffers as flat
from npae.training import team as threads


def test_a_team_runs_each_member_on_its_own_thread_and_returns_in_member_order():
    with threads.Team(3) as team:
        names = team.run(lambda i: (i, threading.current_thread().name))
    assert [i for i, _ in names] == [0, 1, 2]
    assert names[0][1] == threading.current_thread().name
    assert len({name for _, name in names}) == 3


def test_an_error_in_any_member_is_raised_in_the_caller_after_all_are_done():
    done = []

    def phase(i):
        if i == 1:
            raise ValueError("member 1 failed")
        done.append(i)
    with threads.Team(3) as team:
        with pytest.raises(ValueError, match="member 1 failed"):
            team.run(phase)
        assert sorted(done) == [0, 2]
        assert team.run(lambda i: i * 10) == [0, 10, 20]     # the team goes on working


def test_blas_runs_on_one_thread_while_a_team_works_and_comes_back_after():
    import threadpoolctl
    before = [p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]
    with threads.Team(2) as team:
        during = team.run(lambda i: [p["num_threads"] for p in threadpoolctl.threadpool_info()
                                     if p["user_api"] == "blas"])
    assert all(n == 1 for counts in during for n in counts)
    after = [p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]
    assert after == before
    assert not [t for t in threading.enumerate() if t.name.startswith("npae-worker")]


def test_how_many_threads_a_step_gets():
    cores = threads.available_cores()
    assert threads.how_many(1, 1e12) == 1 and threads.how_many(3, 1) == min(3, cores)
    assert threads.how_many(-1, 1) == cores
    assert threads.how_many(None, threads.WORTH_THREADS) == cores
    assert threads.how_many(None, threads.WORTH_THREADS - 1) == 1


def test_n_jobs_counts_back_from_the_cores_as_in_scikit_learn_and_is_capped(monkeypatch):
    monkeypatch.setattr(threads, "available_cores", lambda: 8)
    assert threads.how_many(-1, 1) == 8 and threads.how_many(-2, 1) == 7
    assert threads.how_many(-8, 1) == 1 and threads.how_many(-100, 1) == 1
    assert threads.how_many(10**6, 1) == 8                      # never more than the cores
    assert threads.how_many(10**6, 1, rows=3) == 3              # nor than the batch's rows
    assert threads.how_many(None, threads.WORTH_THREADS, rows=2) == 2


def test_a_huge_n_jobs_starts_no_more_threads_than_there_are_cores(monkeypatch):
    started = []
    start = threading.Thread.start
    monkeypatch.setattr(threading.Thread, "start",
                        lambda self: (started.append(self.name), start(self))[1])
    X = np.random.default_rng(0).random((64, 4))
    npae.Autoencoder(hidden=(3,), epochs=1, batch_size=64, n_jobs=10**6).fit(X)
    workers = [name for name in started if name.startswith("npae-worker")]
    assert len(workers) <= threads.available_cores() - 1


@pytest.mark.parametrize("n_jobs", [-2, -1])
def test_n_jobs_minus_two_is_all_cores_but_one(n_jobs):
    X = np.full((8, 4), 0.5)
    assert npae.VAE(hidden=(4,), latent=2, epochs=1, n_jobs=n_jobs).fit(X).n_iter_ == 1


@pytest.mark.parametrize("n_jobs, error", [(0, ValueError), (-1.0, TypeError), (1.5, TypeError),
                                           (1.0, TypeError), ("2", TypeError)])
def test_a_bad_n_jobs_is_refused_by_name(n_jobs, error):
    with pytest.raises(error, match="n_jobs"):
        npae.VAE(hidden=(4,), latent=2, epochs=1, n_jobs=n_jobs).fit(np.full((8, 4), 0.5))


def test_a_flat_layout_puts_each_array_in_its_place():
    layout = flat.FlatLayout({"W": (3, 2), "b": (2,), "v": (4,)})
    assert layout.size == 12 and layout.slice("b") == slice(6, 8)
    buffer, views = layout.gather({"W": np.arange(6).reshape(3, 2), "b": [7, 8], "v": [9] * 4}, float)
    np.testing.assert_array_equal(buffer, [0, 1, 2, 3, 4, 5, 7, 8, 9, 9, 9, 9])
    views["b"][...] = -1
    assert buffer[6:8].tolist() == [-1, -1] and flat.is_view_of(views, buffer)
    parts = layout.parts(5)
    assert parts[0].start == 0 and parts[-1].stop == 12
    assert all(a.stop == b.start for a, b in zip(parts, parts[1:]))
    with pytest.raises(ValueError, match="12 entries"):
        layout.views(np.zeros(11))


def test_a_models_parameters_are_views_of_one_buffer_even_after_pickling():
    import pickle
    model = npae.VAE(6, hidden=(4,), latent=2, likelihood="gaussian").built()
    assert flat.is_view_of(model.params, model.params_buffer_)
    model.params["mu.b"][...] = 3.0
    assert (model.params_buffer_ == 3.0).sum() == 2
    again = pickle.loads(pickle.dumps(model))
    assert flat.is_view_of(again.params, again.params_buffer_)
    np.testing.assert_array_equal(again.params_buffer_, model.params_buffer_)


def test_each_model_starts_from_the_initialisation_that_measured_best_for_it():
    # benchmarks/quality.py: fan-in for the VAE, He/Glorot for the autoencoder
    vae, ae = npae.VAE(64, hidden=(32,), latent=2).built(), npae.Autoencoder(64, hidden=(32,)).built()
    assert vae.get_params()["init"] == "fan-in" and ae.get_params()["init"] == "he-glorot"
    assert np.abs(vae.params["encoder.0.W"]).max() <= 1 / np.sqrt(64)
    assert vae.params["encoder.0.b"].std() > 0 and (ae.params["encoder.0.b"] == 0).all()


@pytest.mark.parametrize("init", ["he-glorot", "fan-in"])
def test_the_initial_weights_follow_the_chosen_scheme(init):
    model = npae.Autoencoder(400, hidden=(300,), activation="tanh", init=init, seed=1).built()
    W, b = model.params["encoder.0.W"], model.params["encoder.0.b"]
    limit = np.sqrt(6 / 700) if init == "he-glorot" else 1 / np.sqrt(400)
    assert np.abs(W).max() <= limit and np.abs(W).max() > 0.99 * limit
    assert W.std() == pytest.approx(limit / np.sqrt(3), rel=0.02)   # uniform on ±limit
    assert (b == 0).all() if init == "he-glorot" else np.abs(b).max() <= limit and b.std() > 0
    with pytest.raises(ValueError, match="init must be one of"):
        npae.VAE(6, init="xavier").built()


def test_two_teams_at_work_at_once_put_back_the_blas_threads_they_found():
    import threadpoolctl

    def blas_threads():
        return [p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        before = blas_threads()
        first, second = threads.Team(2), threads.Team(2)
        first.__enter__()
        second.__enter__()          # found 1 thread, set by the first
        first.__exit__(None, None, None)
        assert all(n == 1 for n in blas_threads()), "the second team is still at work"
        second.__exit__(None, None, None)
        assert blas_threads() == before


# -- loss computations under threads: each call keeps its intermediate arrays to itself ------
def _in_threads(fn, n_threads=8, repeats=10):
    results, errors = [None] * (n_threads * repeats), []
    barrier = threading.Barrier(n_threads)

    def work(t):
        try:
            barrier.wait()
            for r in range(repeats):
                results[t * repeats + r] = fn(t * repeats + r)
        except Exception as exc:      # handed to the test
            errors.append(exc)
    workers = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not errors, errors
    return results


@pytest.mark.parametrize("model", [
    npae.Autoencoder(64, hidden=(16,), contractive_weight=0.5, activation="sigmoid",
                     dtype="float64"),
    npae.Autoencoder(64, hidden=(16,), sparsity="kl", sparsity_weight=0.3, activation="sigmoid",
                     dtype="float64"),
    npae.VAE(64, hidden=(16,), latent=2, objective="iwae", k=3, dtype="float64")],
    ids=["contractive", "kl-sparsity", "iwae"])
def test_average_loss_from_eight_threads_equals_the_serial_values(model):
    model.built()
    X = npae.datasets.load_digits()[0].astype(np.float64)
    rows = [X[(17 * i) % 1500:(17 * i) % 1500 + 40 + i % 7] for i in range(80)]
    serial = [model.average_loss(r, rng=np.random.default_rng(i)) for i, r in enumerate(rows)]
    threaded = _in_threads(lambda i: model.average_loss(rows[i], rng=np.random.default_rng(i)))
    assert threaded == serial


@pytest.mark.parametrize("model", [
    npae.Autoencoder(hidden=(16,), sparsity="kl", sparsity_weight=0.3, activation="sigmoid",
                     epochs=3, batch_size=32),
    npae.VAE(hidden=(16,), latent=2, epochs=3, batch_size=32)], ids=["kl-sparsity", "vae"])
def test_fit_with_validation_while_other_threads_transform_equals_a_quiet_fit(model):
    X = npae.datasets.load_digits()[0]
    quiet = type(model)(**model.get_params())
    quiet.fit(X[:600], validation_data=X[600:800])
    busy = type(model)(**model.get_params()).fit(X[:200], epochs=1)
    stop = threading.Event()
    seen = []

    def transform_until_stopped():
        while not stop.is_set():
            seen.append(busy.transform(X[:50 + len(seen) % 30]).shape)
    others = [threading.Thread(target=transform_until_stopped) for _ in range(3)]
    for t in others:
        t.start()
    try:
        busy.fit(X[:600], validation_data=X[600:800])
    finally:
        stop.set()
        for t in others:
            t.join()
    assert seen and busy.history_ == quiet.history_
