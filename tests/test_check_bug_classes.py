"""Issue 17's catalogue, one class of its own each, run as a student runs them:
``python -m npae check FILE.py:Class`` (in this process), exit status and message.

Wrong code that the checker of 225848c passed (exit 0); right code it failed (exit 1);
misdiagnoses (noise, a changed input and float32 blamed on kinks; one kink excusing a
whole array); messages that named nothing.  Every test here fails against that checker.
"""

import inspect
import re
import textwrap

import numpy as np
import pytest

import npae
from npae.cli.parser import main, make_parser


def check(tmp_path, capsys, source, name, *flags):
    path = tmp_path / f"{name.lower()}.py"
    path.write_text("import numpy as np\n\n" + textwrap.dedent(source))
    status = main(["check", f"{path}:{name}", *map(str, flags)])
    out, err = capsys.readouterr()
    return status, out, err


LINEAR = """
    class {name}:
        input_shapes = [(4, 3)]                 # Y (4, 3) has X's shape: dY once equalled X

        def __init__(self):
            self.params = {{"W": np.random.default_rng(7).normal(size=(3, 3))}}
            self.grads = {{"W": np.zeros((3, 3))}}

        def forward(self, X):
            {forward}
            return X @ self.params["W"]

        def backward(self, dY):
            {backward}
            return dY @ self.params["W"].T
"""


def linear(name, forward="self.X = X", backward='self.grads["W"] = self.X.T @ dY'):
    return LINEAR.format(name=name, forward=forward, backward=backward)


def test_a_correct_linear_layer_passes(tmp_path, capsys):
    status, out, _ = check(tmp_path, capsys, linear("Linear"), "Linear")
    assert status == 0, out
    assert "PASS" in out


# -- wrong code that passed -----------------------------------------------------------------
def test_a_transposed_weight_gradient_fails_with_a_square_W(tmp_path, capsys):
    # dW = (Xᵀ dY)ᵀ: with dY drawn from X's own stream, Xᵀ dY = Xᵀ X was symmetric
    status, out, _ = check(tmp_path, capsys, linear("Transposed", backward='self.grads["W"] = (self.X.T @ dY).T'),
                           "Transposed")
    assert status == 1, out
    assert "disagree with finite differences in W" in out
    assert "worst entry not at a kink: W[" in out and "transpose of the right one" in out


def test_gradients_that_accumulate_fail_and_say_so(tmp_path, capsys):
    status, out, _ = check(tmp_path, capsys, linear("Accumulates", backward='self.grads["W"] += self.X.T @ dY'),
                           "Accumulates")
    assert status == 1, out
    assert "FAIL" in out and "accumulate" in out and "+=" in out


def test_a_stale_cache_fails_and_says_so(tmp_path, capsys):
    stale = linear("Stale", forward='self.X = X if getattr(self, "X", None) is None else self.X')
    status, out, _ = check(tmp_path, capsys, stale, "Stale")
    assert status == 1, out
    assert "fresh copy" in out and "earlier call" in out


KL_WITH_SIGMA = """
    class KL:
        # σ where σ² belongs: KL = ½ Σ (μ² + σ − 1 − log σ²); its gradient matches this wrong value
        def loss_and_grads(self, mu, logvar):
            n, sigma = mu.shape[0], np.exp(0.5 * logvar)
            kl = 0.5 * (mu * mu + sigma - 1 - logvar).sum() / n
            return kl, (mu / n, 0.5 * (0.5 * sigma - 1) / n)
"""


def test_a_loss_whose_value_is_wrong_fails_its_exercise(tmp_path, capsys):
    path = tmp_path / "kl.py"
    path.write_text("import numpy as np\n" + textwrap.dedent(KL_WITH_SIGMA))
    assert main(["check", f"{path}:KL"]) == 0       # consistent: finite differences cannot tell
    capsys.readouterr()
    status = main(["exercise", "check", "kl", f"{path}:KL"])
    out = capsys.readouterr().out
    assert status == 1, out
    assert "forward values: FAIL" in out and "FAIL: exercise kl" in out


# -- right code that failed -------------------------------------------------------------------
def test_tiny_but_correct_gradients_of_a_saturated_tanh_pass(tmp_path, capsys):
    saturated = """
        class Saturated:
            def forward(self, X):
                self.Y = np.tanh(X + 9.0)                 # 1 − tanh² ≈ 6e-8: all below the floor
                return self.Y
            def backward(self, dY):
                return dY * (1 - self.Y * self.Y)
    """
    status, out, _ = check(tmp_path, capsys, saturated, "Saturated", "--h", "1e-6")
    assert status == 0, out
    assert "below the rounding floor" in out and "atol" in out


BCE_ON_PROBABILITIES = """
    class BCE:
        {domains}
        def loss_and_grads(self, p, x):
            n = p.shape[0]
            loss = -(x * np.log(p) + (1 - x) * np.log(1 - p)).sum() / n
            return loss, ((p - x) / (p * (1 - p)) / n, (np.log(1 - p) - np.log(p)) / n)
"""


def test_binary_cross_entropy_on_probabilities_passes_in_its_domain(tmp_path, capsys):
    source = BCE_ON_PROBABILITIES.format(domains='input_domains = ["probability", "probability"]')
    status, out, _ = check(tmp_path, capsys, source, "BCE")
    assert status == 0, out
    assert "p (4, 3) probability" in out


def test_a_loss_of_a_positive_quantity_passes_in_its_domain(tmp_path, capsys):
    positive = """
        class LogBarrier:
            input_domains = ["positive"]
            def loss_and_grads(self, var):
                return (np.log(var) + 1 / var).sum() / len(var), (1 / var - 1 / var**2) / len(var)
    """
    status, out, _ = check(tmp_path, capsys, positive, "LogBarrier")
    assert status == 0, out


def test_a_nan_loss_names_the_input_domain(tmp_path, capsys):
    status, out, err = check(tmp_path, capsys, BCE_ON_PROBABILITIES.format(domains=""), "BCE")
    assert status == 2, out
    assert "nan" in err and "input_domains" in err and "probability" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("step", [None, 1e-6], ids=["default h", "h=1e-6"])
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_a_correct_vae_on_the_digits_passes_at_the_default_step_and_at_1e_6(activation, step):
    X, _ = npae.datasets.load_digits()
    vae = npae.VAE(64, hidden=(16,), latent=2, activation=activation, dtype="float64", seed=0)
    eps = np.random.default_rng(0).standard_normal((4, 2))
    Xd = X[:4].astype(np.float64)
    steps = {} if step is None else {"eps": step}
    report = npae.gradcheck(lambda: vae.loss_and_grads(Xd, eps=eps), vae.params, n_entries=200, **steps)
    summary = next(line for line in str(report).splitlines() if line.startswith("max relative error"))
    assert summary.endswith(": good"), report
    assert report.passed


# -- misdiagnoses -----------------------------------------------------------------------------
def test_a_loss_with_fresh_noise_is_not_deterministic_not_kinked():
    from npae.nn.gradcheck import CannotCheck
    X, _ = npae.datasets.load_digits()
    vae = npae.VAE(64, hidden=(16,), latent=2, activation="tanh", dtype="float64", seed=0)
    Xd = X[:4].astype(np.float64)
    with pytest.raises(CannotCheck, match="not deterministic") as info:
        npae.gradcheck(lambda: vae.loss_and_grads(Xd), vae.params)
    assert "eps=" in str(info.value) and "kink" not in str(info.value)


def test_a_dropout_layer_with_a_fresh_mask_is_reported_as_noise_with_the_fix(tmp_path, capsys):
    dropout = """
        class Dropout:
            def forward(self, X):
                self.mask = np.random.default_rng().uniform(size=X.shape) > 0.5
                return X * self.mask * 2
            def backward(self, dY):
                return dY * self.mask * 2
    """
    status, out, err = check(tmp_path, capsys, dropout, "Dropout")
    assert status == 2
    assert "not deterministic" in err and "seeded" in err and "kink" not in err


def test_an_input_changed_in_place_is_reported_as_such(tmp_path, capsys):
    in_place = """
        class ReluInPlace:
            def forward(self, X):
                self.Y = np.maximum(X, 0, out=X)           # writes into the caller's X
                return self.Y
            def backward(self, dY):
                return dY * (self.Y > 0)
    """
    status, out, _ = check(tmp_path, capsys, in_place, "ReluInPlace")
    assert status == 1, out
    assert "changed in place" in out and "kink" not in out


def test_a_layer_computing_in_float32_is_told_to_use_float64(tmp_path, capsys):
    single = """
        class Single:
            def forward(self, X):
                self.X = X.astype(np.float32)
                return np.tanh(self.X)
            def backward(self, dY):
                return dY * (1 - np.tanh(self.X) ** 2)
    """
    status, out, err = check(tmp_path, capsys, single, "Single")
    assert status == 2
    assert 'dtype="float64"' in err and "kink" not in err


def test_a_layer_rounding_to_float32_inside_is_told_to_use_float64_not_blamed_on_kinks(tmp_path, capsys):
    hidden = """
        class Hidden32:
            def forward(self, X):
                self.Y = np.tanh(X.astype(np.float32)).astype(np.float64)   # float64 outside only
                return self.Y
            def backward(self, dY):
                return dY * (1 - self.Y ** 2)
    """
    status, out, err = check(tmp_path, capsys, hidden, "Hidden32")
    assert status == 2, out
    assert "float32 somewhere inside" in err and 'dtype="float64"' in err and "kink" not in err


def test_a_float32_model_is_told_to_use_float64():
    layer = npae.Dense(3, 2, "tanh", seed=0, dtype="float32")
    with pytest.raises(TypeError, match='dtype="float64"'):
        npae.gradcheck_layer(layer, np.ones((4, 3)))


RELU_BIAS = """
    class ReluBias:
        input_shapes = [(1, 3)]
        def __init__(self):
            self.params = {{"b": np.array([0.0, 0.5, 1.0])}}   # b[0] sits on relu's kink
            self.grads = {{}}
        def forward(self, X):
            self.X = X
            return X + np.maximum(self.params["b"], 0)
        def backward(self, dY):
            self.grads["b"] = dY.sum(axis=0) * (self.params["b"] > 0) * np.array([1, 1, {factor}])
            return dY
"""


def test_a_kink_excuses_only_its_own_entry(tmp_path, capsys):
    status, out, _ = check(tmp_path, capsys, RELU_BIAS.format(factor=1.0), "ReluBias")
    assert status == 0, out
    assert "ok only near a kink" in out and "1 at a kink" in out


def test_a_small_bug_beside_a_kink_is_named_not_excused(tmp_path, capsys):
    status, out, _ = check(tmp_path, capsys, RELU_BIAS.format(factor=1.0001), "ReluBias")
    assert status == 1, out
    assert "worst entry not at a kink: b[2]" in out
    assert "verdict: suspect" in out


def test_ok_only_near_a_kink_never_appears_without_a_kink():
    theta = np.array([0.3, -1.2, 2.0])
    report = npae.gradcheck(lambda: (float(np.sum(np.sin(theta))), {"t": np.cos(theta) * (1 + 1e-5)}),
                            {"t": theta})
    assert "ok only near a kink" not in str(report)
    assert not report.passed and report["t"].n_kinks == 0 and report.verdict == "suspect"


# -- messages and defaults --------------------------------------------------------------------
def test_a_wrong_shaped_dX_names_dX_and_the_expected_shape(tmp_path, capsys):
    source = linear("WrongShape").replace("return dY @ self.params[\"W\"].T", "return (dY @ self.params[\"W\"].T).T")
    status, out, _ = check(tmp_path, capsys, source, "WrongShape")
    assert status == 1, out
    assert "dX of shape (3, 4)" in out and "X has shape (4, 3)" in out and "params['X']" not in out


def test_a_missing_gradient_names_it_and_says_backward_must_store_it(tmp_path, capsys):
    missing = """
        class NoBiasGrad:
            def __init__(self):
                self.params = {"w": np.ones(3), "b": np.zeros(3)}
                self.grads = {}
            def forward(self, X):
                self.X = X
                return X * self.params["w"] + self.params["b"]
            def backward(self, dY):
                self.grads["w"] = (dY * self.X).sum(axis=0)
                return dY * self.params["w"]
    """
    status, out, _ = check(tmp_path, capsys, missing, "NoBiasGrad")
    assert status == 1, out
    assert "'b'" in out and "backward must set self.grads" in out


def test_a_constant_factor_reads_as_the_factor(tmp_path, capsys):
    summed = """
        class SumNotMean:
            def loss_and_grads(self, prediction, x):
                n = prediction.shape[0]
                return ((prediction - x) ** 2).sum() / n, (2 * (prediction - x), -2 * (prediction - x) / n)
    """
    status, out, _ = check(tmp_path, capsys, summed, "SumNotMean")
    assert status == 1, out
    assert "same factor 4" in out                   # n = 4 rows: the 1/n is missing


def test_one_default_step_for_every_entry_point():
    from npae.nn.gradcheck import DEFAULT_STEP
    parser = make_parser()
    steps = {"check": parser.parse_args(["check", "x.py:C"]).h,
             "gradcheck": parser.parse_args(["gradcheck"]).h}
    for function in (npae.gradcheck, npae.gradcheck_layer):
        steps[function.__name__] = inspect.signature(function).parameters["eps"].default
    assert set(steps.values()) == {DEFAULT_STEP}, steps


@pytest.mark.parametrize("command", ["check", "gradcheck"])
def test_h_and_seed_have_help_texts(command, capsys):
    with pytest.raises(SystemExit):
        make_parser().parse_args([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert re.search(r"--h H (finite-difference )?step", text), text
    assert re.search(r"--seed SEED \w", text), text


def test_the_errors_are_value_errors_for_the_command_line():
    from npae.nn.gradcheck import CannotCheck, WrongGradients
    assert issubclass(CannotCheck, ValueError) and issubclass(WrongGradients, ValueError)
