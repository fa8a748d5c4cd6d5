"""Tests for ``python -m npae check FILE.py:ClassName`` (npae.cli.check).

The examples in ``examples/exercises/`` first: a correct layer passes, the
same layer with the 2 of d(x²)/dx = 2x forgotten fails with the verdict
"wrong" on exactly the row of its input gradient, and a loss passes with its
gradients returned as a tuple or as a dict.  Then every way a target can fail
to load ends with exit status 2 and a single line naming the problem.  (The
graded series, ``npae exercise``, is tested in test_exercise_series.py.)
"""

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from npae.cli.parser import main
from npae.cli.check import load_class, run_check

ROOT = Path(__file__).resolve().parents[1]
EXERCISES = ROOT / "examples" / "exercises"


def check(capsys, *argv):
    """Run ``npae check`` in this process: (exit status, stdout, stderr)."""
    status = main(["check", *map(str, argv)])
    out, err = capsys.readouterr()
    return status, out, err


def write(tmp_path, source, name="student.py"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    return path


# --- the examples ---------------------------------------------------------------
def test_good_layer_passes_from_the_command_line():
    result = subprocess.run([sys.executable, "-m", "npae", "check", "examples/exercises/my_layers.py:Good"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    table = result.stdout
    for row in ("X ", "gamma", "beta", "max rel err"):
        assert row in table
    assert "verdict: good" in table and "PASS" in table


def test_buggy_layer_fails_with_verdict_wrong_on_its_input_gradient():
    result = subprocess.run([sys.executable, "-m", "npae", "check", "examples/exercises/my_layers.py:Buggy"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "verdict: wrong" in result.stdout
    rows = {line.split()[0]: line for line in result.stdout.splitlines()
            if line.split() and line.split()[0] in ("X", "gamma", "beta")}
    # |x − 2x| / (|x| + |2x|) = 1/3 for dX; γ and β are untouched by the bug
    assert "3.33e-01" in rows["X"] and rows["X"].endswith("wrong (12 failing)")
    assert " good" in rows["gamma"] and " good" in rows["beta"]
    assert "every entry of X is off by the same factor 1/2" in result.stdout
    assert "disagree with finite differences in X" in result.stdout


@pytest.mark.parametrize("name", ["Huber", "PseudoHuber"])
def test_losses_pass_with_tuple_or_dict_gradients(capsys, name):
    status, out, _ = check(capsys, f"{EXERCISES / 'my_losses.py'}:{name}")
    assert status == 0, out
    assert "prediction" in out and "target" in out and "verdict: good" in out


def test_shape_flags_override_the_class_input_shapes(capsys):
    status, out, _ = check(capsys, f"{EXERCISES / 'my_losses.py'}:Huber", "--shape", "6,2", "--shape", "6,2")
    assert status == 0
    assert "prediction (6, 2) real, target (6, 2) real" in out


def test_run_check_returns_the_status_directly(capsys):
    assert run_check(f"{EXERCISES / 'my_layers.py'}:Good", shapes=[(7, 3)], h=1e-5, seed=3) == 0
    assert "X (7, 3)" in capsys.readouterr().out


def test_float32_parameters_are_converted_to_float64_in_place(tmp_path, capsys):
    path = write(tmp_path, """
        import numpy as np
        class Scale:
            def __init__(self):
                self.w = np.full(3, 1.5, dtype=np.float32)
                self.params = {"w": self.w}
                self.grads = {"w": np.zeros(3, dtype=np.float32)}
            def forward(self, X):
                self.X = X
                return X * self.w
            def backward(self, dY):
                self.grads["w"] = (self.X * dY).sum(axis=0)
                return dY * self.w
    """)
    status, out, _ = check(capsys, f"{path}:Scale")
    assert status == 0, out


def test_a_kink_is_reported_and_excuses_its_entries(tmp_path, capsys):
    # relu(b) at b = 0 exactly: the central difference sees slope ½, the code says 0 — at a
    # kink the finite difference, not the gradient, is off: every entry of b is excused
    path = write(tmp_path, """
        import numpy as np
        class ReluBias:
            def __init__(self):
                self.params, self.grads = {"b": np.zeros(3)}, {"b": np.zeros(3)}
            def forward(self, X):
                return X + np.maximum(self.params["b"], 0)
            def backward(self, dY):
                self.grads["b"] = dY.sum(axis=0) * (self.params["b"] > 0)
                return dY
    """)
    status, out, _ = check(capsys, f"{path}:ReluBias")
    assert status == 0, out
    assert "3 at a kink" in out and "verdict: ok only near a kink" in out


# --- targets that cannot be checked: exit 2, one line ----------------------------
BROKEN = {
    "syntax": ("class Oops:\n    def forward(self, X)\n        return X\n", "Oops", "syntax error"),
    "no class": ("class Other:\n    pass\n", "Missing", "no class 'Missing'"),
    "no methods": ("class Plain:\n    def __call__(self, X):\n        return X\n", "Plain",
                   "neither forward + backward"),
    "needs arguments": ("class Needy:\n    def __init__(self, n):\n        pass\n"
                        "    def loss_and_grads(self, x):\n        return 0.0, (x,)\n", "Needy",
                        "no arguments"),
    "import fails": ("import numpy as np\nraise RuntimeError('boom')\n", "X", "RuntimeError: boom"),
}


def test_gradients_returned_in_the_wrong_form_fail_and_say_what_is_expected(tmp_path, capsys):
    path = write(tmp_path, "class Bad:\n    def loss_and_grads(self, a, b):\n        return 0.0, [a]\n")
    status, out, _ = check(capsys, f"{path}:Bad")
    assert status == 1
    assert "a tuple of 2 arrays (da, db, in that order)" in out


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_unusable_targets_exit_2_with_one_line(tmp_path, capsys, case):
    source, name, message = BROKEN[case]
    path = write(tmp_path, source)
    status, out, err = check(capsys, f"{path}:{name}")
    assert status == 2
    assert len(err.strip().splitlines()) == 1 and message in err, err


def test_missing_file_and_malformed_target_exit_2(tmp_path, capsys):
    status, _, err = check(capsys, f"{tmp_path / 'nowhere.py'}:Layer")
    assert status == 2 and "no such file" in err and len(err.strip().splitlines()) == 1
    status, _, err = check(capsys, str(EXERCISES / "my_layers.py"))
    assert status == 2 and "FILE.py:ClassName" in err


def test_wrong_number_of_shapes_is_a_usage_error(capsys):
    status, _, err = check(capsys, f"{EXERCISES / 'my_losses.py'}:Huber", "--shape", "4,3")
    assert status == 2 and "takes 2 input(s)" in err


def test_load_class_returns_the_class():
    cls = load_class(f"{EXERCISES / 'my_layers.py'}:Good")
    layer = cls()
    assert layer.forward(np.ones((2, 3))).shape == (2, 3)
