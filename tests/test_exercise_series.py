"""The graded series, ``python -m npae exercise list | start | check``, as a student uses it.

For every exercise: npae's reference passes its own grading; the stub ``start`` writes fails
(exit 1), it does not crash; and a typical wrong solution fails with a message that points at
the mistake.  ``list`` prints one exercise a line, name first, in course order; ``start``
never overwrites a file; the references agree with :mod:`npae.losses` where npae has the
same function.
"""

import textwrap

import numpy as np
import pytest

from npae import losses
from npae.cli.parser import main
from npae.exercises import solutions
from npae.exercises.series import SERIES, get

ORDER = ["dense", "activations", "bce_logits", "squared_error", "gaussian_nll", "kl",
         "reparameterize", "iwae_weights", "vae_backward"]
CHECKED = [(exercise.name, cls) for exercise in SERIES for cls in exercise.classes]


def run(capsys, *argv):
    status = main(["exercise", *map(str, argv)])
    out, err = capsys.readouterr()
    return status, out, err


def test_list_prints_one_exercise_a_line_name_first_in_course_order(capsys):
    status, out, _ = run(capsys, "list")
    assert status == 0
    assert [line.split()[0] for line in out.splitlines()] == ORDER
    assert len(ORDER) >= 8


@pytest.mark.parametrize("name, cls", CHECKED)
def test_the_reference_passes_its_own_grading(tmp_path, capsys, name, cls):
    path = tmp_path / "mine.py"
    path.write_text(f"from npae.exercises import solutions\n\n\nclass {cls}(solutions.{cls}):\n    pass\n")
    status, out, err = run(capsys, "check", name, f"{path}:{cls}")
    assert status == 0, out + err
    assert "forward values: ok" in out and f"PASS: exercise {name}" in out


@pytest.mark.parametrize("name, cls", CHECKED)
def test_the_stub_fails_and_does_not_crash(tmp_path, capsys, name, cls):
    status, out, _ = run(capsys, "start", name, tmp_path)
    path = tmp_path / f"{name}.py"
    assert status == 0 and path.exists() and f"exercise check {name}" in out
    text = path.read_text()
    assert get(name).statement.splitlines()[0] in text and f"class {cls}" in text
    status, out, err = run(capsys, "check", name, f"{path}:{cls}")
    assert status == 1, out + err
    assert "forward values: FAIL" in out and f"FAIL: exercise {name}" in out and not err


def test_start_never_overwrites_a_file(tmp_path, capsys):
    assert run(capsys, "start", "kl", tmp_path)[0] == 0
    (tmp_path / "kl.py").write_text("my work")
    status, _, err = run(capsys, "start", "kl", tmp_path)
    assert status == 2 and "exists" in err
    assert (tmp_path / "kl.py").read_text() == "my work"


def test_an_unknown_exercise_lists_the_valid_ones(capsys):
    status, _, err = run(capsys, "start", "softmax")
    assert status == 2 and "kl" in err and "vae_backward" in err


def test_a_class_the_exercise_does_not_grade_is_named(tmp_path, capsys):
    path = tmp_path / "mine.py"
    path.write_text("class Softplus:\n    def forward(self, X):\n        return X\n"
                    "    def backward(self, dY):\n        return dY\n")
    status, _, err = run(capsys, "check", "activations", f"{path}:Softplus")
    assert status == 2 and "Sigmoid, Tanh, Relu" in err


# -- typical wrong solutions, each with the message that points at it -------------------------------
WRONG = {
    "dense": ("Dense", "solutions.Dense", """
        def backward(self, dY):
            dX = super().backward(dY)
            self.grads["b"] = dY.mean(axis=0)          # a mean where the sum belongs
            return dX
     """, "every entry of b is off by the same factor 1/5"),
    "activations": ("Tanh", "solutions.Tanh", """
        def forward(self, X):
            self.X = X
            return np.tanh(X)
        def backward(self, dY):
            return dY * (1 - self.X ** 2)              # f′ from the input, and the wrong one
     """, "disagree with finite differences in X"),
    "bce_logits": ("BCEWithLogits", "object", """
        def loss_and_grads(self, logits, x):
            s = 1 / (1 + np.exp(-logits))              # log σ(−800) = log 0
            loss = -(x * np.log(s) + (1 - x) * np.log(1 - s)).sum() / len(x)
            return loss, (s - x) / len(x)
     """, "is not finite"),
    "squared_error": ("SquaredError", "object", """
        def loss_and_grads(self, prediction, x):
            n = len(x)
            return ((prediction - x) ** 2).sum() / n, (prediction - x) / n   # the 2 forgotten
     """, "same factor 1/2"),
    "gaussian_nll": ("GaussianNLL", "solutions.GaussianNLL", """
        def loss_and_grads(self, x, mu, logvar):
            loss, (dmu, dlogvar) = super().loss_and_grads(x, mu, logvar)
            return loss, (dmu, 0.5 * (1 - (x - mu) ** 2 * np.exp(-logvar)) / len(x))   # not summed
     """, "dlogvar of shape (5, 3), but logvar has shape (3,)"),
    "kl": ("KL", "object", """
        def loss_and_grads(self, mu, logvar):
            n, sigma = len(mu), np.exp(0.5 * logvar)                  # σ where σ² belongs
            return (0.5 * (mu**2 + sigma - 1 - logvar).sum() / n,
                    (mu / n, 0.5 * (0.5 * sigma - 1) / n))
     """, "forward values: FAIL"),
    "reparameterize": ("Reparameterize", "solutions.Reparameterize", """
        def backward(self, dz):
            return dz, dz * self.std_eps               # the ½ of d e^{s/2}/ds forgotten
     """, "every entry of logvar is off by the same factor 2"),
    "iwae_weights": ("IWAELoss", "object", """
        def loss_and_grads(self, log_w):
            n, k = log_w.shape
            w = np.exp(log_w)                          # exp(−800) = 0
            return -np.log(w.mean(axis=1)).sum() / n, -(w / w.sum(axis=1, keepdims=True)) / n
     """, "is not finite"),
    "vae_backward": ("OneLayerVAE", "solutions.OneLayerVAE", """
        def loss_and_grads(self, X, eps):
            loss, grads = super().loss_and_grads(X, eps)
            grads["b_logvar"] = grads["b_logvar"] * 0  # the two paths into log σ² never met
            return loss, grads
     """, "disagree with finite differences in b_logvar"),
}


@pytest.mark.parametrize("name", sorted(WRONG))
def test_a_typical_wrong_solution_fails_with_a_message_that_points_at_it(tmp_path, capsys, name):
    cls, base, body, message = WRONG[name]
    path = tmp_path / "mine.py"
    path.write_text("import numpy as np\nfrom npae.exercises import solutions\n\n\n"
                    f"class {cls}({base}):" + textwrap.indent(textwrap.dedent(body), "    "))
    with np.errstate(all="ignore"):
        status, out, err = run(capsys, "check", name, f"{path}:{cls}")
    assert status == 1, out + err
    assert message in out, out


def test_the_references_agree_with_npae_losses():
    rng = np.random.default_rng(3)
    t, x = 3 * rng.standard_normal((4, 5)), rng.uniform(size=(4, 5))
    loss, dt = solutions.BCEWithLogits().loss_and_grads(t, x)
    np.testing.assert_allclose((loss, *dt.ravel()), (lambda r: (r[0], *r[1].ravel()))(losses.bce_with_logits(t, x)))
    loss, dp = solutions.SquaredError().loss_and_grads(t, x)
    expected = losses.mse(t, x)
    assert loss == pytest.approx(expected[0]) and np.allclose(dp, expected[1])
    mu, logvar, s = rng.standard_normal((4, 3)), rng.standard_normal((4, 3)), rng.standard_normal(3)
    kl, (dmu, dlogvar) = solutions.KL().loss_and_grads(mu, logvar)
    expected = losses.kl_normal(mu, logvar)
    assert kl == pytest.approx(expected[0]) and np.allclose(dmu, expected[1]) and np.allclose(dlogvar, expected[2])
    nll, (dmu, ds) = solutions.GaussianNLL().loss_and_grads(x[:, :3], mu, s)
    expected = losses.gaussian_nll(x[:, :3], mu, s)
    assert nll == pytest.approx(expected[0]) and np.allclose(dmu, expected[1]) and np.allclose(ds, expected[2])


def test_the_first_loss_of_a_fresh_model_is_near_d_log_2():
    # the statements promise it: logits near 0 and a KL near 0 with small weights
    X = (np.random.default_rng(0).uniform(size=(64, 6)) < 0.5).astype(float)
    vae = solutions.OneLayerVAE(scale=0.01)
    loss, _ = vae.loss_and_grads(X, np.random.default_rng(1).standard_normal((64, 2)))
    assert loss == pytest.approx(6 * np.log(2), rel=0.01)
    assert solutions.BCEWithLogits().loss_and_grads(np.zeros((2, 64)), X[:2, :1].repeat(64, 1))[0] == \
        pytest.approx(64 * np.log(2))


@pytest.mark.parametrize("name", ORDER)
def test_a_completed_stub_also_passes_npae_check_on_its_own(tmp_path, capsys, name):
    # the stub's class attributes (shapes, domains, fixed inputs) say what `npae check` needs
    exercise = get(name)
    assert run(capsys, "start", name, tmp_path)[0] == 0
    path = tmp_path / f"{name}.py"
    for cls in exercise.classes:
        path.write_text(path.read_text() + f"\n\nclass {cls}({cls}, solutions.{cls}):\n"
                        "    forward = getattr(solutions." + cls + ", 'forward', None)\n"
                        "    backward = getattr(solutions." + cls + ", 'backward', None)\n"
                        "    loss_and_grads = getattr(solutions." + cls + ", 'loss_and_grads', None)\n")
    path.write_text("from npae.exercises import solutions\n" + path.read_text())
    for cls in exercise.classes:
        status = main(["check", f"{path}:{cls}"])
        out = capsys.readouterr().out
        assert status == 0, out
