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

# The house, bottom up: the packages in order, and inside each the floors of its modules.  A
# module may import a module of a lower package, or of its own package on a lower floor.
HOUSE = [
    ("checks", [{"checks"}]),                                             # validation and seeds
    ("files", [{"atomic"}, {"archive", "model_records"}]),
    ("nn", [{"activations", "buffers", "optim", "gradcheck_report"}, {"layers", "losses", "gradcheck"},
            {"gradcheck_objects"}]),
    ("data", [{"columns", "batches", "dask_arrays", "tables", "scaling", "unit_interval"},
              {"datasets"}]),
    ("training", [{"signals", "progress", "team", "schedules"}, {"state"}, {"step", "checkpoints"},
                  {"loop"}]),
    ("models", [{"conventions"}, {"fitting", "inference"}, {"estimator", "vae_evaluation"},
                {"autoencoder", "vae"}, {"saving", "outlier"}]),
    ("pictures", [{"png", "font"}, {"plots"}, {"model_pictures"}]),
    ("exercises", [{"solutions", "statements"}, {"series"}]),
    ("cli", [{"check"}, {"commands", "exercise"}, {"train"}, {"parser"}]),
]
PACKAGES = [package for package, _ in HOUSE]
RANK = {}  # dotted module name (under npae) -> (package's rank, floor in the package)
for rank, (package, floors) in enumerate(HOUSE):
    for floor, names in enumerate(floors):
        for name in names:
            RANK[name if package == "checks" else f"{package}.{name}"] = (rank, floor)
FACES = {"__init__", "__main__"} | {f"{package}.__init__" for package in PACKAGES[1:]}


def dotted(path):
    return ".".join(path.relative_to(PACKAGE).with_suffix("").parts)


def modules():
    return {dotted(path): ast.parse(path.read_text(encoding="utf-8"))
            for path in sorted(PACKAGE.rglob("*.py"))}


def npae_imports(name, tree):
    """(module imported, names taken) for every import of an npae module, at any depth."""
    package = name.rsplit(".", 1)[0] if "." in name else ""
    known = set(RANK) | FACES | set(PACKAGES)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("npae")):
            if node.level:
                parts = package.split(".") if package else []
                parts = parts[:len(parts) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            else:
                base = node.module.removeprefix("npae").lstrip(".")
            for alias in node.names:
                sub = f"{base}.{alias.name}" if base else alias.name
                yield (sub, []) if sub in known else (base or "__init__", [alias.name])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("npae."):
                    yield alias.name.removeprefix("npae."), []


def test_every_module_has_a_place_in_the_house():
    assert set(modules()) - FACES == set(RANK), "add new modules to HOUSE"


def test_every_import_points_down():
    upward = [f"{name} {RANK[name]} imports {target} {RANK.get(target)}"
              for name, tree in modules().items() if name in RANK
              for target, _ in npae_imports(name, tree)
              if target != name and (target not in RANK or RANK[target] >= RANK[name])]
    assert not upward, "\n".join(upward)


def test_a_package_face_imports_only_its_own_modules():
    faces = [f"{name} imports {target}" for name, tree in modules().items()
             if name in FACES - {"__init__", "__main__"}
             for target, _ in npae_imports(name, tree)
             if not target.startswith(name.removesuffix("__init__"))]
    assert not faces, "\n".join(faces)


def test_no_private_name_is_taken_from_another_module():
    taken = [f"{name} takes {n} from {target}" for name, tree in modules().items()
             for target, names in npae_imports(name, tree) for n in names
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


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=dotted)
def test_modules_are_readable_in_one_sitting(path):
    lines = path.read_text(encoding="utf-8").count("\n") + 1
    assert lines <= 450, f"{dotted(path)}: {lines} lines"
    if path.stem != "__main__":
        assert ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))), f"{path}: no docstring"


def loaded_after(statement):
    code = f"import sys; {statement}; print(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    return set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              check=True).stdout.split())


def test_importing_npae_imports_numpy_threadpoolctl_and_nothing_else_outside_the_standard_library():
    # threadpoolctl sets BLAS to one thread per thread of a training step (npae.threads)
    added = (loaded_after("import npae, npae.cli, npae.cli.commands")
             - loaded_after("import numpy, numpy.random, numpy.lib.format"))
    assert added - set(sys.stdlib_module_names) == {"npae", "threadpoolctl"}, added


def test_the_readme_shows_the_same_house():
    readme = (PACKAGE.parent / "README.md").read_text(encoding="utf-8")
    tree = readme[readme.index("## The house"):readme.index("## References")]
    shown = re.findall(r"^npae/(\w+)(?:/|\.py)", tree, flags=re.M)
    assert shown == PACKAGES, shown
