"""npae.files: atomic writes, streamed .npy output, and bounded, pickle-free reading of archives.

Writing: a file holds all of its new content or its old content, never part;
no temporary file survives any way out; new files get the umask's permissions;
a symbolic link is written through; temporary names fit the file system.
Reading: nothing is unpickled or evaluated, nothing is allocated on a size a
file declares before that size is checked, and every problem is a
``FileRefused`` (a ValueError) that names the file.
"""

import errno
import io
import json
import os
import pathlib
import pickle
import shutil
import struct
import subprocess
import sys
import tempfile
import tracemalloc
import warnings
import zipfile

import numpy as np
import pytest

from npae.files import atomic as files
from npae.files.archive import Archive, FileRefused
from npae.files.atomic import AtomicFile, NpyWriter


def leftovers(folder):
    """Temporary files left in ``folder``."""
    return sorted(p.name for p in pathlib.Path(folder).iterdir() if p.name.endswith(".tmp"))


# =============================================================================
# Atomic writes
# =============================================================================
def test_write_bytes_replaces_the_file_and_leaves_nothing_else(tmp_path):
    path = tmp_path / "out.bin"
    files.write_bytes(path, b"first")
    files.write_bytes(path, b"second")
    assert path.read_bytes() == b"second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


@pytest.mark.parametrize("interruption", [OSError("disk full"), KeyboardInterrupt(), SystemExit(143)],
                         ids=["OSError", "KeyboardInterrupt", "SystemExit"])
def test_a_write_interrupted_midway_leaves_the_old_file_and_no_temporary(tmp_path, interruption):
    path = tmp_path / "out.bin"
    path.write_bytes(b"the old content")
    with pytest.raises(type(interruption)):
        with AtomicFile(path) as f:
            f.write(b"half of the new")
            f.flush()
            assert leftovers(tmp_path), "the new content goes to a temporary file first"
            raise interruption
    assert path.read_bytes() == b"the old content"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


@pytest.mark.parametrize("fails", ["fsync", "replace"])
def test_a_write_that_cannot_be_completed_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch, fails):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")

    def broken(*args):
        raise OSError(errno.EIO, "power cut")

    monkeypatch.setattr(os, fails, broken)
    with pytest.raises(OSError, match="power cut"):
        files.write_bytes(path, b"new content")
    monkeypatch.undo()
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


def test_an_archive_interrupted_midway_leaves_the_old_archive(tmp_path, monkeypatch):
    path = tmp_path / "a.npz"
    files.write_archive(path, {"x": np.arange(3.0)}, {"n": 1})
    good = path.read_bytes()

    def savez_half(file, **arrays):
        file.write(b"PK\x03\x04 half an archive")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", savez_half)
    with pytest.raises(KeyboardInterrupt):
        files.write_archive(path, {"x": np.arange(4.0)}, {"n": 2})
    monkeypatch.undo()
    assert path.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npz"]


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_new_files_get_the_permissions_of_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        files.write_bytes(tmp_path / "a.bin", b"x")
        files.write_archive(tmp_path / "b.npz", {"x": np.zeros(2)}, {})
        with NpyWriter(tmp_path / "c.npy", (2, 2), np.float32) as out:
            out[:] = 1
    finally:
        os.umask(old)
    for name in ("a.bin", "b.npz", "c.npy"):
        assert (tmp_path / name).stat().st_mode & 0o777 == mode, name


def test_a_symbolic_link_is_written_through_to_its_target(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    target = elsewhere / "real.bin"
    target.write_bytes(b"old")
    link = tmp_path / "link.bin"
    link.symlink_to(os.path.relpath(target, tmp_path))
    files.write_bytes(link, b"new")
    assert link.is_symlink() and os.readlink(link) == os.path.relpath(target, tmp_path)
    assert target.read_bytes() == b"new"
    files.write_archive(link, {"x": np.arange(2.0)}, {})
    assert link.is_symlink() and zipfile.is_zipfile(target)
    with NpyWriter(link, (3,), np.int64) as out:
        out[:] = [1, 2, 3]
    assert link.is_symlink() and np.load(target).tolist() == [1, 2, 3]
    assert leftovers(tmp_path) == [] and leftovers(elsewhere) == []


def test_temporary_names_are_hidden_fresh_and_beside_the_target(tmp_path):
    path = tmp_path / "model.npz"
    first, second = files.temporary_name(path), files.temporary_name(path)
    assert first != second
    for name in (first, second):
        assert os.path.dirname(name) == str(tmp_path)
        assert os.path.basename(name).startswith(".model.npz.") and name.endswith(".tmp")


@pytest.mark.parametrize("length", [249, 255])
def test_temporary_names_stay_within_the_name_limit_for_long_file_names(tmp_path, length):
    limit = os.pathconf(tmp_path, "PC_NAME_MAX")
    assert length <= limit
    path = tmp_path / ("m" * (length - 4) + ".npz")
    temporary = files.temporary_name(path)
    assert len(os.fsencode(os.path.basename(temporary))) <= limit
    assert os.path.dirname(temporary) == str(tmp_path)
    files.write_bytes(path, b"one")                      # a 249-character name plus ".<name>.<hex>.tmp"
    files.write_archive(path, {"x": np.zeros(1)}, {})   # would be over 255 characters
    with NpyWriter(path, (2,), np.float32) as out:
        out[:] = 5
    assert np.load(path).tolist() == [5.0, 5.0]
    assert leftovers(tmp_path) == []


def test_an_archive_holds_numeric_arrays_and_json_and_refuses_anything_else(tmp_path):
    path = tmp_path / "a.npz"
    files.write_archive(path, {"w": np.eye(2, dtype=np.float32), "n": np.arange(3)}, {"k": [1, "two"]})
    with np.load(path, allow_pickle=False) as archive:
        assert sorted(archive.files) == ["__npae__", "n", "w"]
        assert json.loads(str(archive["__npae__"])) == {"k": [1, "two"]}
        assert archive["w"].dtype == np.float32 and archive["w"].tolist() == [[1, 0], [0, 1]]
    for bad in (np.array([object()]), [1.0, 2.0], np.array(["a"])):
        with pytest.raises(TypeError, match="archive member 'bad' must be a numeric ndarray"):
            files.write_archive(tmp_path / "b.npz", {"bad": bad}, {})
    with pytest.raises(ValueError):
        files.write_archive(tmp_path / "b.npz", {}, {"loss": float("nan")})  # JSON has no NaN
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npz"]


# =============================================================================
# NpyWriter: streamed .npy output
# =============================================================================
def test_an_npy_is_streamed_chunk_by_chunk_through_a_memory_map(tmp_path):
    path = tmp_path / "codes.npy"
    values = np.random.default_rng(0).random((1000, 7)).astype(np.float32)
    with NpyWriter(path, (1000, 7), np.float32) as out:
        assert isinstance(out, np.memmap) and out.shape == (1000, 7) and out.dtype == np.float32
        assert not path.exists()                 # nothing at the target until the end
        for start in range(0, 1000, 300):
            out[start:start + 300] = values[start:start + 300]
    loaded = np.load(path, allow_pickle=False)
    assert loaded.dtype == np.float32 and np.array_equal(loaded, values)
    assert leftovers(tmp_path) == []


def test_an_empty_npy_is_written_too(tmp_path):
    with NpyWriter(tmp_path / "empty.npy", (0, 3), np.float64) as out:
        assert out.shape == (0, 3)
    assert np.load(tmp_path / "empty.npy").shape == (0, 3)


def test_an_interrupted_npy_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "codes.npy"
    np.save(path, np.arange(3))
    with pytest.raises(KeyboardInterrupt):
        with NpyWriter(path, (100, 2), np.float32) as out:
            out[:50] = 1.0
            raise KeyboardInterrupt
    assert np.load(path).tolist() == [0, 1, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["codes.npy"]


def test_an_output_the_disk_cannot_hold_is_refused_before_anything_is_written(tmp_path):
    path = tmp_path / "huge.npy"
    assert shutil.disk_usage(tmp_path).free < 4 * 10**15
    with pytest.raises(ValueError) as info:
        with NpyWriter(path, (10**12, 1000), np.float32):     # 4 PB
            pytest.fail("the block must not run")
    assert str(info.value).startswith(f"{path}: the output needs 4.0 PB, but the disk has only ")
    assert str(info.value).endswith(" free")
    assert list(tmp_path.iterdir()) == []


def test_the_free_space_is_checked_and_a_failed_reservation_refused(tmp_path, monkeypatch):
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda folder: usage._replace(free=1000))
    with pytest.raises(ValueError, match=r"the output needs 4\.1 KB, but the disk has only 1\.0 KB free"):
        with NpyWriter(tmp_path / "a.npy", (1000,), np.float32):
            pass
    monkeypatch.undo()

    def no_space(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", no_space)
    with pytest.raises(ValueError, match=r"a\.npy: cannot reserve .* on the disk \(No space left on device\)"):
        with NpyWriter(tmp_path / "a.npy", (1000,), np.float32):
            pass
    assert list(tmp_path.iterdir()) == []


def test_a_file_system_that_cannot_reserve_space_still_gets_its_file(tmp_path, monkeypatch):
    def unsupported(fd, offset, length):
        raise OSError(errno.EOPNOTSUPP, "Operation not supported")

    monkeypatch.setattr(os, "posix_fallocate", unsupported)
    with NpyWriter(tmp_path / "a.npy", (4, 2), np.float64) as out:
        out[:] = 2.5
    assert np.load(tmp_path / "a.npy").tolist() == [[2.5, 2.5]] * 4


# =============================================================================
# probe_writable and same_file
# =============================================================================
def test_probing_a_writable_folder_leaves_nothing(tmp_path):
    files.probe_writable("out", tmp_path / "result.npz")
    assert list(tmp_path.iterdir()) == []


def _without_privileges(fn):
    """``fn()`` as a user who cannot write where root can; its result, or its ValueError's text."""
    if os.geteuid() != 0:
        try:
            fn()
        except ValueError as exc:
            return f"ValueError: {exc}"
        return "no error"
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: give up root, run, report, leave without cleaning up pytest's state
        try:
            os.close(read)
            os.setgid(65534)
            os.setuid(65534)
            try:
                fn()
                text = "no error"
            except ValueError as exc:
                text = f"ValueError: {exc}"
            except BaseException as exc:  # noqa: BLE001 - reported to the parent
                text = f"{type(exc).__name__}: {exc}"
            os.write(write, text.encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as f:
        text = f.read().decode()
    os.waitpid(pid, 0)
    return text


def test_probing_an_unwritable_folder_is_a_value_error_naming_the_argument():
    folder = tempfile.mkdtemp(prefix="npae-readonly-")
    try:
        os.chmod(folder, 0o555)
        target = os.path.join(folder, "result.npz")
        result = _without_privileges(lambda: files.probe_writable("out", target))
        assert result == f"ValueError: out: cannot write {target} (Permission denied)"
        assert os.listdir(folder) == []
    finally:
        os.chmod(folder, 0o755)
        shutil.rmtree(folder)


def test_probing_a_missing_folder_is_a_value_error(tmp_path):
    target = tmp_path / "missing" / "result.npz"
    with pytest.raises(ValueError) as info:
        files.probe_writable("checkpoint", target)
    assert str(info.value) == f"checkpoint: cannot write {target} (No such file or directory)"


def test_same_file_sees_through_spellings_and_links(tmp_path):
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    a.write_bytes(b"a")
    b.write_bytes(b"a")
    (tmp_path / "sub").mkdir()
    os.link(a, tmp_path / "hard.npz")
    (tmp_path / "soft.npz").symlink_to(a)
    assert files.same_file(a, a)
    assert files.same_file(a, str(tmp_path / "sub" / ".." / "a.npz"))
    assert files.same_file(a, tmp_path / "hard.npz") and files.same_file(tmp_path / "soft.npz", a)
    assert not files.same_file(a, b)                      # equal content is not the same file
    assert not files.same_file(a, tmp_path / "missing.npz")
    assert not files.same_file(a, None) and not files.same_file("", "")


# =============================================================================
# Archive: bounded, checked reading
# =============================================================================
def npy_bytes(shape, dtype, data=b""):
    """A .npy header for ``shape`` and ``dtype`` followed by ``data`` (whatever it is)."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
                                                  "fortran_order": False, "shape": shape})
    return buffer.getvalue() + data


def write_zip(path, members, compression=zipfile.ZIP_STORED):
    """A zip of ``name → bytes`` (duplicates allowed), as an attacker would write it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about duplicate names
        with zipfile.ZipFile(path, "w", compression) as z:
            for name, data in members:
                z.writestr(name, data)


def claim_size(path, member, file_size):
    """Make the zip's directory (central and local) say ``member`` holds ``file_size`` bytes."""
    raw = bytearray(pathlib.Path(path).read_bytes())
    at = raw.find(b"PK\x01\x02")
    while at >= 0:
        length = struct.unpack_from("<H", raw, at + 28)[0]
        if raw[at + 46:at + 46 + length] == member.encode():
            struct.pack_into("<I", raw, at + 24, file_size)
            local = struct.unpack_from("<I", raw, at + 42)[0]
            struct.pack_into("<I", raw, local + 22, file_size)
        at = raw.find(b"PK\x01\x02", at + 4)
    pathlib.Path(path).write_bytes(bytes(raw))


@pytest.fixture
def archive_path(tmp_path):
    path = tmp_path / "a.npz"
    files.write_archive(path, {"w": np.arange(6, dtype=np.float32).reshape(2, 3),
                               "extra/thing": np.zeros(2, np.int64)}, {"format": "test", "n": 3})
    return path


def test_an_archive_reads_back_its_names_metadata_and_arrays(archive_path):
    with Archive(archive_path) as archive:
        assert archive.names == {"w", "extra/thing"}          # unknown members are visible
        assert archive.metadata() == {"format": "test", "n": 3}
        assert archive.array_header("w") == ((2, 3), np.dtype(np.float32))
        w = archive.array("w", (2, 3), np.float32)
        assert w.dtype == np.float32 and w.tolist() == [[0, 1, 2], [3, 4, 5]]
        assert archive.array("extra/thing", (2,), np.int64).tolist() == [0, 0]


@pytest.mark.parametrize("shape, dtype, found", [
    ((3, 2), np.float32, r"float32\(2, 3\), expected float32\(3, 2\)"),
    ((2, 3), np.float64, r"float32\(2, 3\), expected float64\(2, 3\)"),
    ((6,), np.float32, r"float32\(2, 3\), expected float32\(6,\)"),
])
def test_an_array_of_another_shape_or_dtype_is_refused(archive_path, shape, dtype, found):
    with Archive(archive_path) as archive:
        with pytest.raises(FileRefused, match=rf"^{archive_path}: member 'w' is {found}$"):
            archive.array("w", shape, dtype)
        with pytest.raises(FileRefused, match=rf"^{archive_path}: member 'missing' is missing$"):
            archive.array("missing", (1,), np.float32)


def test_a_fortran_ordered_member_is_refused(tmp_path):
    path = tmp_path / "f.npz"
    with open(path, "wb") as f:
        np.savez(f, w=np.asfortranarray(np.zeros((2, 3), np.float32)))
    with Archive(path) as archive:
        with pytest.raises(FileRefused, match=r"member 'w' is float32\(2, 3\) \(Fortran order\)"):
            archive.array("w", (2, 3), np.float32)


def test_duplicate_member_names_are_refused(tmp_path):
    path = tmp_path / "dup.npz"
    write_zip(path, [("w.npy", npy_bytes((1,), np.float32, bytes(4))),
                     ("w.npy", npy_bytes((1,), np.float32, b"\x00\x00\x80\x7f"))])
    with pytest.raises(FileRefused) as info:
        with Archive(path):
            pass
    assert str(info.value) == f"{path}: it holds two members named 'w.npy'"


@pytest.mark.parametrize("name", ["notes.txt", "folder/"])
def test_a_member_that_is_not_an_npy_array_is_refused(tmp_path, name):
    path = tmp_path / "odd.npz"
    write_zip(path, [("w.npy", npy_bytes((1,), np.float32, bytes(4))), (name, b"")])
    with pytest.raises(FileRefused, match=rf"^{path}: member '{name}' is not a \.npy array$"):
        with Archive(path):
            pass


@pytest.mark.parametrize("compression", [zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED], ids=["deflated", "stored"])
def test_a_member_declaring_more_than_deflate_could_produce_is_refused_unread(tmp_path, compression):
    """A 2 GB array claimed by a member of a few bytes: refused from the sizes alone, fast and
    without allocating it (the header and the zip's directory agree, so only the ratio tells)."""
    path = tmp_path / "bomb.npz"
    shape = (2**28,)
    header = npy_bytes(shape, np.float64)
    write_zip(path, [("big.npy", header + bytes(1000))], compression)
    claim_size(path, "big.npy", len(header) + 8 * 2**28)
    tracemalloc.start()
    try:
        with Archive(path) as archive:
            assert archive.array_header("big") == (shape, np.dtype(np.float64))
            with pytest.raises(FileRefused) as info:
                archive.array("big", shape, np.float64)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(info.value).startswith(f"{path}: member 'big' claims 2.1 GB from ")
    assert str(info.value).endswith("more than deflate can produce: the file is corrupt")
    assert peak < 2**20, f"{peak} bytes allocated"


def test_a_member_claiming_more_bytes_than_the_file_holds_is_refused(tmp_path):
    path = tmp_path / "claims.npz"
    write_zip(path, [("w.npy", npy_bytes((4,), np.float32, bytes(16)))])
    raw = bytearray(path.read_bytes())
    at = raw.find(b"PK\x01\x02")
    struct.pack_into("<I", raw, at + 20, 10**9)   # the compressed size, in the central directory
    path.write_bytes(bytes(raw))
    with Archive(path) as archive:
        with pytest.raises(FileRefused, match=rf"^{path}: member 'w.npy' claims more bytes than the file holds"):
            archive.array("w", (4,), np.float32)


def test_a_member_shorter_than_its_header_says_is_refused(tmp_path):
    path = tmp_path / "short.npz"
    write_zip(path, [("w.npy", npy_bytes((10,), np.float64, bytes(40)))])
    with Archive(path) as archive:
        with pytest.raises(FileRefused, match=rf"^{path}: member 'w' is 168 bytes in the zip directory, "
                                              r"but its header needs 208$"):
            archive.array("w", (10,), np.float64)


def test_a_member_whose_stream_ends_early_is_refused_as_truncated(tmp_path):
    """Header and directory agree on 80 bytes of data; the deflate stream holds 40 (and their CRC)."""
    path = tmp_path / "cut.npz"
    header = npy_bytes((10,), np.float64)
    write_zip(path, [("w.npy", header + np.arange(5.0).tobytes())], zipfile.ZIP_DEFLATED)
    claim_size(path, "w.npy", len(header) + 80)
    with Archive(path) as archive:
        with pytest.raises(FileRefused, match=rf"^{path}: member 'w' is truncated$"):
            archive.array("w", (10,), np.float64)


@pytest.mark.parametrize("compression", [zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED], ids=["deflated", "stored"])
def test_a_corrupt_member_is_refused_naming_the_file(tmp_path, compression):
    path = tmp_path / "corrupt.npz"
    data = np.random.default_rng(0).random(1000)
    write_zip(path, [("w.npy", npy_bytes((1000,), np.float64, data.tobytes()))], compression)
    raw = bytearray(path.read_bytes())
    for k in range(400, 420):
        raw[k] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(FileRefused, match=rf"^{path}: member 'w' is corrupt \("):
        with Archive(path) as archive:
            archive.array("w", (1000,), np.float64)


@pytest.mark.parametrize("cut", [0.1, 0.5, 0.9, -1])
def test_a_truncated_archive_is_refused_naming_the_file(archive_path, cut):
    raw = archive_path.read_bytes()
    archive_path.write_bytes(raw[:cut if cut == -1 else int(cut * len(raw))])
    with pytest.raises(ValueError) as info:
        with Archive(archive_path) as archive:
            archive.metadata()
            archive.array("w", (2, 3), np.float32)
    assert isinstance(info.value, FileRefused)
    assert str(info.value) == f"{archive_path}: truncated or corrupt (File is not a zip file)"


@pytest.mark.parametrize("content, why", [
    (b"", "it is empty"),
    (b"\x93NUMPY\x01\x00" + bytes(100), r"it is a single \.npy array, not an \.npz archive"),
    (pickle.dumps({"w": 1}), r"it is not an \.npz \(zip\) archive"),
    (b"PK\x03\x04" + bytes(40), r"truncated or corrupt \("),
])
def test_what_is_not_an_npz_is_refused_before_any_parser_sees_it(tmp_path, content, why):
    path = tmp_path / "x.npz"
    path.write_bytes(content)
    with pytest.raises(FileRefused, match=rf"^{path}: {why}"):
        with Archive(path):
            pass


def test_a_missing_archive_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file: .*absent.npz"):
        with Archive(tmp_path / "absent.npz"):
            pass


class _Marker:
    """Unpickling this creates a file: proof that code ran."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.path),))


def test_an_object_array_is_refused_and_never_unpickled(tmp_path):
    marker = tmp_path / "code-ran"
    path = tmp_path / "objects.npz"
    with open(path, "wb") as f:
        np.savez(f, w=np.array([_Marker(str(marker))], dtype=object), __npae__=np.array("{}"))
    with Archive(path) as archive:
        assert archive.names == {"w"}
        for read in (lambda: archive.array("w", (1,), np.float64), lambda: archive.array_header("w")):
            with pytest.raises(FileRefused) as info:
                read()
            assert str(info.value).startswith(f"{path}: member 'w' ")
    assert not marker.exists()
    with Archive(path) as archive:
        with pytest.raises(FileRefused, match=r"member 'w' holds Python objects \(npae never unpickles\)"):
            archive.array("w", (1,), np.float64)
    with np.load(path, allow_pickle=True) as archive:    # the marker works when unpickled
        archive["w"]
    assert marker.exists()


def test_a_header_is_parsed_never_evaluated(tmp_path):
    marker = tmp_path / "code-ran"
    header = (b"{'descr': __import__('pathlib').Path('" + str(marker).encode() + b"').touch(), "
              b"'fortran_order': False, 'shape': (1,)}")
    header += b" " * (15 - (len(header) + 10) % 16) + b"\n"
    path = tmp_path / "code.npz"
    write_zip(path, [("w.npy", b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + bytes(8))])
    with Archive(path) as archive:
        with pytest.raises(FileRefused, match=rf"^{path}: member 'w' has no valid \.npy header"):
            archive.array("w", (1,), np.float64)
    assert not marker.exists()


@pytest.mark.parametrize("header", [
    b"{'descr': '<f8', 'fortran_order': False, 'shape': (1,), 'extra': 1}",
    b"{'descr': '<f8', 'fortran_order': 0, 'shape': (1,)}",
    b"{'descr': '<f8', 'fortran_order': False, 'shape': (-1,)}",
    b"{'descr': '<f8', 'fortran_order': False, 'shape': (2**60,)}",
    b"{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (1,)}",
    b"{'descr': '<f8', 'fortran_order': False, 'shape': " + b"(1," * 20 + b")" * 20 + b"}",
    b"[1, 2, 3]",
])
def test_a_header_that_is_not_a_plain_array_header_is_refused(tmp_path, header):
    header += b" " * (15 - (len(header) + 10) % 16) + b"\n"
    path = tmp_path / "odd.npz"
    write_zip(path, [("w.npy", b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + bytes(8))])
    with Archive(path) as archive:
        with pytest.raises(FileRefused, match=rf"^{path}: member 'w' has no valid \.npy header"):
            archive.array_header("w")


def test_an_overlong_header_is_refused_unread(tmp_path):
    path = tmp_path / "long.npz"
    write_zip(path, [("w.npy", b"\x93NUMPY\x02\x00" + struct.pack("<I", 2**31) + b"{")])
    with Archive(path) as archive:
        with pytest.raises(FileRefused, match=r"has no valid \.npy header \(a header of 2147483648 bytes\)"):
            archive.array_header("w")


@pytest.mark.parametrize("meta, why", [
    (np.array("{not json"), r"its npae metadata is not valid JSON \("),
    (np.array('{"loss": NaN}'), r"its npae metadata is not valid JSON \(NaN is not a number JSON allows\)"),
    (np.array('{"loss": 1e999}'), r"its npae metadata is not valid JSON \(1e999 is beyond the largest float\)"),
    (np.array('{"n": ' + "9" * 60 + "}"), r"its npae metadata is not valid JSON \(an integer of 60 digits\)"),
    (np.array("[" * 100000 + "]" * 100000), r"its npae metadata is not valid JSON \("),
    (np.array("[1, 2]"), "its npae metadata is not a JSON object"),
    (np.arange(3), "its npae metadata is not a JSON string"),
    (np.array(["{}", "{}"]), "its npae metadata is not a JSON string"),
])
def test_bad_metadata_is_refused(tmp_path, meta, why):
    path = tmp_path / "meta.npz"
    with open(path, "wb") as f:
        np.savez(f, __npae__=meta)
    with Archive(path) as archive:
        with pytest.raises(FileRefused, match=rf"^{path}: {why}"):
            archive.metadata()


def test_metadata_beyond_the_limit_is_refused_unread(tmp_path):
    path = tmp_path / "meta.npz"
    with open(path, "wb") as f:
        np.savez(f, __npae__=np.array(json.dumps({"pad": "x" * 5000})))
    with Archive(path) as archive:
        with pytest.raises(FileRefused, match=r"its metadata declares .* more than the 4\.0 KB npae reads"):
            archive.metadata(limit=4000)
        assert archive.metadata()["pad"] == "x" * 5000


def test_an_archive_without_metadata_is_refused_when_it_is_asked_for(tmp_path):
    path = tmp_path / "other.npz"
    with open(path, "wb") as f:
        np.savez(f, weights=np.zeros(3))
    with Archive(path) as archive:
        assert archive.names == {"weights"}
        with pytest.raises(FileRefused, match=r"it has no npae metadata \(an \.npz written by something else\?\)"):
            archive.metadata()


@pytest.mark.parametrize("write", ["bytes", "archive", "npy"])
def test_a_write_removes_the_temporary_files_of_killed_runs_and_leaves_live_ones(tmp_path, write):
    path = tmp_path / "model.npz"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    stale = files.temporary_name(path, pid=int(dead.stdout))   # a run killed mid-write
    live = files.temporary_name(path, pid=os.getppid())        # a write under way elsewhere
    other = files.temporary_name(tmp_path / "other.npz", pid=int(dead.stdout))
    for name in (stale, live, other):
        open(name, "wb").close()
    if write == "bytes":
        files.write_bytes(path, b"one")
    elif write == "archive":
        files.write_archive(path, {"x": np.zeros(1)}, {})
    else:
        with NpyWriter(path, (2,), np.float32) as out:
            out[:] = 5
    assert not os.path.exists(stale)
    assert os.path.exists(live) and os.path.exists(other)
