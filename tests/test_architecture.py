"""The house: every import points down a floor, lazy imports included; no module takes a private
name from another, or reaches into another object's private attributes; modules stay readable
in one sitting; NumPy is the only run-time dependency."""

import ast
import re
import pathlib
import subprocess
import sys

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "npae"

# The floors, bottom up: a module may import only modules on lower floors.
FLOORS = [
    {"checks", "files"},                                                   # validation, files
    {"activations", "font", "progress", "records", "columns", "batches", "optim", "gradcheck",
     "images", "lazy", "signals", "flat", "threads"},                      # the math, data, pictures
    {"losses", "kernels", "plots", "datasets", "layers", "exercise"},
    {"steps", "training"},                                                 # a step, the loop
    {"fast_autoencoder", "fast_vae", "estimator"},                         # fast steps, conventions
    {"autoencoder", "vae"},                                                # the two models
    {"io", "pictures"},                                                    # model files, pictures
    {"commands"},
    {"cli"},                                                               # parsing and dispatch
    {"__main__", "__init__"},
]
FLOOR = {name: level for level, names in enumerate(FLOORS) for name in names}


def modules():
    return {path.stem: ast.parse(path.read_text(encoding="utf-8")) for path in PACKAGE.glob("*.py")}


def npae_imports(tree):
    """(module imported, names taken) for every import of an npae module, at any depth."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.level == 1 or (node.module or "").startswith("npae")):
            base = (node.module or "").removeprefix("npae").lstrip(".")
            for alias in node.names:
                if not base:
                    yield alias.name, []
                else:
                    yield base.split(".")[0], [alias.name]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("npae."):
                    yield alias.name.split(".")[1], []


def test_every_module_has_a_floor():
    assert set(modules()) == set(FLOOR), "add new modules to FLOORS"


def test_every_import_points_down():
    upward = [f"{name} (floor {FLOOR[name]}) imports {target} (floor {FLOOR[target]})"
              for name, tree in modules().items() for target, _ in npae_imports(tree)
              if target in FLOOR and FLOOR[target] >= FLOOR[name] and name != "__init__"]
    assert not upward, "\n".join(upward)


def test_no_private_name_is_taken_from_another_module():
    taken = [f"{name} takes {n} from {target}" for name, tree in modules().items()
             for target, names in npae_imports(tree) for n in names
             if n.startswith("_") and not n.startswith("__")]
    assert not taken, "\n".join(taken)


NAMED_TUPLE_API = {"_replace", "_asdict", "_fields"}  # public, though spelt with an underscore


def test_no_module_reaches_into_another_objects_private_attributes():
    # x._name is allowed only on self / cls: everything else goes through public protocols
    reached = [f"{name}:{node.lineno} {ast.unparse(node)}"
               for name, tree in modules().items() for node in ast.walk(tree)
               if isinstance(node, ast.Attribute) and node.attr.startswith("_")
               and not node.attr.startswith("__")
               and node.attr not in NAMED_TUPLE_API
               and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))]
    assert not reached, "\n".join(reached)


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_modules_are_readable_in_one_sitting(path):
    lines = path.read_text(encoding="utf-8").count("\n") + 1
    assert lines <= (350 if path.stem == "cli" else 450), f"{path.name}: {lines} lines"
    if path.stem != "__main__":
        assert ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))), f"{path.name}: no docstring"


def loaded_after(statement):
    code = f"import sys; {statement}; print(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    return set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              check=True).stdout.split())


def test_importing_npae_imports_numpy_threadpoolctl_and_nothing_else_outside_the_standard_library():
    # threadpoolctl sets BLAS to one thread per thread of a training step (npae.threads)
    added = (loaded_after("import npae, npae.cli, npae.commands")
             - loaded_after("import numpy, numpy.random, numpy.lib.format"))
    assert added - set(sys.stdlib_module_names) == {"npae", "threadpoolctl"}, added


def test_the_readme_shows_the_same_floors():
    readme = (PACKAGE.parent / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("| floor | modules | hold |"):readme.index("## References")]
    shown = {}
    for line in table.splitlines()[2:]:
        cells = line.split("|")
        if len(cells) > 3 and cells[1].strip().isdigit():
            shown[int(cells[1])] = set(re.findall(r"`(\w+)`", cells[2]))
    assert shown == {level: names for level, names in enumerate(FLOORS) if "__init__" not in names}
