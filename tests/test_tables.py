"""Tables: CSV files of named columns, the columns a user drops or makes the labels, standard
scaling fitted on the training rows and saved with the model, and model files named .npz."""

import numpy as np
import pytest

import npae
from npae.data.scaling import Standard, Standardized
from npae.data.tables import Choice, choose_columns, label_codes, read_csv
from test_cli import assert_refused, run

HEADER = "id,diagnosis,radius,texture,area\n"
ROWS = [(842302 + i, "MB"[i % 3 == 0], 10 + i % 7, 20.5 - i % 5, 500.0 + 37 * (i % 11))
        for i in range(60)]


@pytest.fixture
def table(tmp_path):
    """A small breast-cancer-like table: an id, a word label, three raw features on large scales."""
    path = tmp_path / "cells.csv"
    path.write_text(HEADER + "".join(",".join(map(str, row)) + "\n" for row in ROWS))
    return path


def features():
    return np.array([row[2:] for row in ROWS], dtype=np.float64)


def test_read_csv_keeps_the_header_names_and_the_cells_as_text(table):
    cells, names = read_csv(table)
    assert names == ["id", "diagnosis", "radius", "texture", "area"]
    assert cells.shape == (60, 5) and cells[0, 1] == "B"


@pytest.mark.parametrize("drop, labels", [(("id",), "diagnosis"), ((0,), 1), ((-5,), -4), (("id",), 1)])
def test_columns_are_dropped_and_labels_taken_out_by_name_or_index(table, drop, labels):
    cells, names = read_csv(table)
    X, y, label_names, kept = choose_columns(cells, names, drop=drop, labels=labels)
    np.testing.assert_array_equal(X, features())
    assert label_names == ("B", "M") and kept == ["radius", "texture", "area"]
    np.testing.assert_array_equal(y, [int(row[1] == "M") for row in ROWS])


@pytest.mark.parametrize("drop, labels, message", [
    ((), None, r"column 'diagnosis' holds 'B' \(row 1\), not a number: leave it out with --drop "
               r"diagnosis, or make it the labels with --labels diagnosis"),
    (("nope",), "diagnosis", r"--drop 'nope': no such column \(the columns are id, diagnosis"),
    ((9,), "diagnosis", r"--drop 9: the data has 5 columns \(0 to 4\)"),
    (("id",), "id", r"--labels 'id' is also in --drop"),
    ((0, 2, 3, 4), 1, r"no columns are left"),
])
def test_columns_that_cannot_be_chosen_are_refused_by_name(table, drop, labels, message):
    cells, names = read_csv(table)
    with pytest.raises(ValueError, match=message):
        choose_columns(cells, names, drop=drop, labels=labels)


def test_labels_are_integers_as_they_are_or_words_in_sorted_order():
    assert label_codes(np.array(["3", "1", "3"]))[0].tolist() == [3, 1, 3]
    codes, names = label_codes(np.array(["cat", "ant", "cat"]))
    assert codes.tolist() == [1, 0, 1] and names == ("ant", "cat")
    with pytest.raises(ValueError, match="integers or words"):
        label_codes(np.array(["0.5", "1"]))


def test_without_a_header_columns_are_named_by_index_only(tmp_path):
    path = tmp_path / "plain.csv"
    path.write_text("1,2,0\n3,4,1\n")
    X, y = npae.datasets.load_array(path, labels=2)
    np.testing.assert_array_equal(X, [[1, 2], [3, 4]])
    assert y.tolist() == [0, 1]
    with pytest.raises(ValueError, match="no header of column names; give the column's index"):
        npae.datasets.load_array(path, drop=("a",))


def test_an_npy_files_columns_are_chosen_by_index(tmp_path):
    np.save(tmp_path / "x.npy", np.array([[1.0, 5, 0], [2, 6, 1]]))
    X, y = npae.datasets.load_array(tmp_path / "x.npy", drop=(0,), labels=-1)
    np.testing.assert_array_equal(X, [[5], [6]])
    assert y.tolist() == [0, 1]


def test_standard_scaling_is_each_columns_mean_and_deviation():
    X = np.array([[1.0, 10, 7], [3, 30, 7], [5, 50, 7]])
    scaling = Standard.fit(X)
    np.testing.assert_allclose(scaling.mean, [3, 30, 7])
    np.testing.assert_allclose(scaling.std, [np.sqrt(8 / 3), np.sqrt(800 / 3), 1.0])  # constant: 1
    view = scaling.apply(X)
    assert isinstance(view, Standardized) and view.dtype == np.float32 and view.shape == (3, 3)
    np.testing.assert_allclose(np.asarray(view), (X - scaling.mean) / scaling.std, rtol=1e-6)
    np.testing.assert_allclose(view[[0, 2]], np.asarray(view)[[0, 2]])
    again = Standard.from_record(scaling.record(), 3)
    assert np.array_equal(again.mean, scaling.mean) and np.array_equal(again.std, scaling.std)
    with pytest.raises(ValueError, match="must be 2 numbers"):
        Standard.from_record(scaling.record(), 2)


def test_train_on_a_table_with_standard_scaling_and_use_it_everywhere(table, tmp_path):
    """The id and label are kept out; the columns are standard-scaled by the training rows'
    mean and deviation, which the model file keeps and encode and evaluate apply."""
    flags = ["--data", table, "--drop", "id", "--labels", "diagnosis", "--scale", "standard"]
    status, out, err = run("train", *flags, "--likelihood", "gaussian", "--epochs", 3, "--hidden", 8,
                           "--quiet", "--out", tmp_path / "run")
    assert status == 0, err
    assert "60 rows of 3 features (54 for training, 6 held out); labels from column 'diagnosis'" in out
    assert "(latent_map.png" not in out and str(tmp_path / "run" / "latent_map.png") in out
    model_file = tmp_path / "run" / "model.npz"
    scaling = npae.models.saving.scaling_of(model_file)
    train_rows = np.setdiff1d(np.arange(60), np.sort(np.random.default_rng(0).permutation(60)[:6]))
    np.testing.assert_allclose(scaling.mean, features()[train_rows].mean(axis=0))
    np.testing.assert_allclose(scaling.std, features()[train_rows].std(axis=0))
    model = npae.load(model_file)
    assert model.n_features_in_ == 3
    status, out, err = run("encode", model_file, table, "--drop", "id", "--labels", "diagnosis",
                           "--out", tmp_path / "codes.npy")
    assert status == 0, err
    scaled = ((features() - scaling.mean) / scaling.std).astype(np.float32)
    np.testing.assert_allclose(np.load(tmp_path / "codes.npy"), model.encode(scaled), rtol=1e-5, atol=1e-6)
    assert "(the model's)" in out
    status, out, err = run("evaluate", model_file, *flags[:6], "--part", "all", "--k", 3, "--rows", 5)
    assert status == 0 and "evaluating on 60 rows" in out, err
    status, out, err = run("encode", model_file, table, "--out", tmp_path / "again.npy")  # as trained
    assert status == 0 and "columns chosen as in training (--drop id --labels diagnosis)" in out, err
    np.testing.assert_array_equal(np.load(tmp_path / "again.npy"), np.load(tmp_path / "codes.npy"))
    assert npae.models.saving.columns_of(model_file) == Choice(("id",), "diagnosis")
    assert_refused(run("encode", model_file, table, "--drop", "id", "--labels", "diagnosis", "--scale",
                       "none", "--out", tmp_path / "c2.npy"),
                   r"--scale none: .*was trained on standard-scaled columns")
    assert_refused(run("encode", model_file, table, "--labels", "diagnosis", "--out", tmp_path / "c3.npy"),
                   r"rows have 4 features, the model expects 3 \(choose the columns with the --drop")


def test_a_standard_scaled_table_needs_a_gaussian_likelihood(table, tmp_path):
    assert_refused(run("train", "--data", table, "--drop", "id", "--labels", "diagnosis", "--scale",
                       "standard", "--out", tmp_path / "run"),
                   r"standard-scaled columns are not in \[0, 1\]; use --likelihood gaussian")


def test_a_model_without_scaling_refuses_scale_standard(table, tmp_path):
    np.save(tmp_path / "x.npy", np.full((30, 3), 0.5))
    status, _, err = run("train", "--data", tmp_path / "x.npy", "--epochs", 1, "--hidden", 4, "--quiet",
                         "--out", tmp_path / "run")
    assert status == 0, err
    assert npae.models.saving.scaling_of(tmp_path / "run" / "model.npz") is None  # as old files
    assert npae.models.saving.columns_of(tmp_path / "run" / "model.npz") is None
    assert_refused(run("encode", tmp_path / "run" / "model.npz", tmp_path / "x.npy", "--scale", "standard",
                       "--out", tmp_path / "c.npy"), r"--scale standard: .*records no scaling")


def test_an_unknown_file_type_is_named_as_such(tmp_path):
    (tmp_path / "d.txt").write_text("1,2\n3,4\n")
    assert_refused(run("train", "--data", tmp_path / "d.txt", "--out", tmp_path / "run"),
                   r"d\.txt: unknown file type '\.txt'; npae reads \.npy, \.npz and \.csv")


def test_columns_of_a_named_data_set_are_not_chosen(tmp_path):
    assert_refused(run("train", "--drop", "0", "--out", tmp_path / "run"),
                   r"--drop and --labels choose the columns of a file, not of digits")


def test_save_refuses_a_name_that_is_not_npz_and_scaling_round_trips(tmp_path):
    model = npae.Autoencoder(3, (2,), seed=0).built()
    with pytest.raises(ValueError, match=r"path must end in \.npz \(a model file is an \.npz archive\), "
                                         r"got 'm\.keras'"):
        npae.save(model, tmp_path / "m.keras")
    assert list(tmp_path.iterdir()) == []
    scaling = Standard(np.array([1.0, 2, 3]), np.array([0.5, 1, 2]))
    npae.save(model, tmp_path / "M.NPZ", scaling=scaling)
    again = npae.models.saving.scaling_of(tmp_path / "M.NPZ")
    np.testing.assert_array_equal(again.mean, scaling.mean)
    np.testing.assert_array_equal(again.std, scaling.std)
    assert isinstance(npae.load(tmp_path / "M.NPZ"), npae.Autoencoder)


def test_a_table_without_labels_still_gets_its_latent_map(tmp_path):
    np.savetxt(tmp_path / "t.csv", np.random.default_rng(0).random((40, 5)), delimiter=",",
               header="a,b,c,d,e", comments="")
    status, out, err = run("train", "--data", tmp_path / "t.csv", "--epochs", 1, "--hidden", 4,
                           "--quiet", "--out", tmp_path / "run")
    assert status == 0, err
    assert sorted(p.name for p in (tmp_path / "run").glob("*.png")) == ["latent_map.png", "loss.png"]


def test_a_model_of_a_table_draws_no_picture_of_rows_but_writes_numbers(tmp_path):
    npae.save(npae.VAE(3, hidden=(2,), latent=2, seed=0).built(), tmp_path / "m.npz")
    assert_refused(run("sample", tmp_path / "m.npz", "--out", tmp_path / "s.png"),
                   r"the model's 3 features cannot be drawn as a square image")
    status, out, err = run("sample", tmp_path / "m.npz", "-n", 2, "--out", tmp_path / "s.npy")
    assert status == 0 and out.endswith(": 2 samples\n"), err
    assert np.load(tmp_path / "s.npy").shape == (2, 3)


@pytest.mark.parametrize("key, change, message", [
    ("scaling", lambda record: record.update(std=[0.0, 1.0, 1.0]), "deviations positive"),
    ("scaling", lambda record: record.update(mean=[1.0, 2.0]), "mean must be 3 numbers"),
    ("scaling", lambda record: record.update(kind="minmax"), "'scaling' must be"),
    ("columns", lambda record: record.update(drop=[1.5]), "'columns' must be"),
    ("columns", lambda record: record.pop("labels"), "'columns' must be"),
])
def test_a_damaged_scaling_or_columns_record_is_refused_when_the_model_loads(tmp_path, key, change,
                                                                             message):
    import json
    from npae.files.atomic import write_archive
    model = npae.Autoencoder(3, (2,), seed=0).built()
    npae.save(model, tmp_path / "m.npz", scaling=Standard(np.zeros(3), np.ones(3)),
              columns=Choice(("id",), "label"))
    with np.load(tmp_path / "m.npz", allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files if name != "__npae__"}
        meta = json.loads(str(archive["__npae__"]))
    change(meta[key])
    write_archive(tmp_path / "bad.npz", arrays, meta)
    for read in (npae.load, npae.models.saving.scaling_of, npae.models.saving.columns_of):
        with pytest.raises(ValueError, match=message) as info:
            read(tmp_path / "bad.npz")
        assert "bad.npz" in str(info.value)
