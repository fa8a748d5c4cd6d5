"""Files: written atomically, read without pickle and with bounded memory.

npae writes three kinds of file, all through this module: archives of named
arrays with a JSON record (model files and checkpoints), ``.npy`` arrays
streamed chunk by chunk (codes, samples), and plain bytes (PNG pictures).

**Writing.**  Every file is written to a temporary file beside its target,
flushed to disk, then moved onto the target with ``os.replace``, and the
folder is synced: a crash, a full disk or a signal mid-write leaves the
previous file intact, and the temporary file is removed on every path out.
New files get the permissions the user's umask gives (mode 0666 & ~umask); a
file that is replaced keeps its own.
A target that is a symbolic link is written *through* the link: the link
stays and its target gets the new content.  Temporary names stay within the
file system's limit on name length.

**Reading archives** (zips of ``.npy`` members, as ``numpy.savez`` writes)
never unpickles and never trusts a declared size: the caller names each
member's expected shape and dtype; the zip directory, the ``.npy`` header and
the ratio deflate can reach are checked against it before anything is
allocated, and a member is read up to its size and no further.  Duplicate
names and every corrupt or truncated stream are a ``ValueError`` naming the
file.  The module knows nothing of models: it moves ``name → array`` and JSON.
"""

import ast
import errno
import json
import math
import os
import secrets
import shutil
import stat
import zipfile
import zlib

import numpy as np

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a zip with members / an empty zip
NPY_MAGIC = b"\x93NUMPY"
DEFLATE_MAX_RATIO = 1032  # deflate cannot expand a stream more than this (zlib's own bound)
META_LIMIT = 16 * 2**20   # bytes of JSON metadata: ~400,000 epochs of history
MAX_INT_DIGITS = 50       # longer integers in metadata are refused (a 128-bit generator state has 39)


class FileRefused(ValueError):
    """A file refused for a reason worded for the user (a ValueError naming the file)."""


# -- writing -----------------------------------------------------------------
def target_of(path):
    """The file a write to ``path`` replaces: the link's target for a symbolic link."""
    return os.path.realpath(path) if os.path.islink(path) else path


def temporary_name(path):
    """A fresh hidden name beside ``path`` whose length stays within the folder's limit."""
    folder, name = os.path.split(os.path.abspath(path))
    try:
        limit = os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        limit = 255
    suffix = f".{secrets.token_hex(4)}.tmp"
    stem = os.fsencode("." + name)[: limit - len(suffix)]
    return os.path.join(folder, os.fsdecode(stem).rstrip("\udcff") + suffix)


def _create(path):
    """Create ``path`` exclusively, mode 0666 before the umask, and open it for writing."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    return os.fdopen(fd, "wb")


class AtomicFile:
    """``with AtomicFile(path) as f: f.write(...)`` — ``path`` holds all of it or is untouched.

    On leaving the block normally the temporary file is synced and moved onto
    the target; on any exception (KeyboardInterrupt and SystemExit included)
    it is removed and the exception goes on.
    """

    def __init__(self, path):
        self.path = target_of(os.fspath(path))
        self.temporary = temporary_name(self.path)
        self.file = None

    def __enter__(self):
        self.file = _create(self.temporary)
        return self.file

    def __exit__(self, kind, error, traceback):
        try:
            if kind is None:
                self.file.flush()
                os.fsync(self.file.fileno())
            self.file.close()
            if kind is None:
                _move_into_place(self.temporary, self.path)
        finally:
            remove_quietly(self.temporary)
        return False


def _move_into_place(temporary, target):
    """``os.replace`` a finished temporary file onto ``target`` and make the rename durable;
    a file that is replaced keeps its permissions (a new one has the umask's)."""
    try:
        os.chmod(temporary, stat.S_IMODE(os.stat(target).st_mode))
    except FileNotFoundError:
        pass
    os.replace(temporary, target)
    sync_folder(os.path.dirname(os.path.abspath(target)))


def remove_quietly(path):
    """Remove ``path`` if it is there; a file that cannot be removed (a read-only file
    system says so even of a missing file) is left, without an error."""
    try:
        os.unlink(path)
    except OSError:
        pass


def sync_folder(folder):
    """Make a rename durable (POSIX); nothing where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_bytes(path, data):
    """Write ``data`` to ``path`` atomically."""
    with AtomicFile(path) as f:
        f.write(data)


def write_archive(path, arrays, meta, *, meta_name="__npae__"):
    """Write ``name → array`` and the JSON-able ``meta`` to ``path`` as one ``.npz``, atomically.

    Members are stored uncompressed (``numpy.savez``); ``meta`` is the 0-d
    unicode array ``meta_name``.  Every array must be numeric (no objects).
    """
    for name, value in arrays.items():
        if not isinstance(value, np.ndarray) or value.dtype.kind not in "biuf":
            raise TypeError(f"archive member {name!r} must be a numeric ndarray")
    members = dict(arrays)
    members[meta_name] = np.array(json.dumps(meta, allow_nan=False))
    with AtomicFile(path) as f:
        np.savez(f, **members)


class NpyWriter:
    """Stream an array of known shape into a ``.npy`` file, chunk by chunk, atomically.

    ``with NpyWriter(path, shape, dtype) as out: out[i:j] = chunk`` — ``out`` is a memory
    map of the temporary file, so memory stays bounded by a chunk.  The space is reserved
    first (``posix_fallocate``): a disk that cannot hold the result is refused before any
    work, never found full half-way (a write to a memory map of a full disk kills the process).
    """

    def __init__(self, path, shape, dtype):
        self.path = target_of(os.fspath(path))
        self.shape, self.dtype = tuple(int(s) for s in shape), np.dtype(dtype)
        self.temporary = temporary_name(self.path)
        self.array = None

    def __enter__(self):
        nbytes = math.prod(self.shape) * self.dtype.itemsize
        header = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False,
                  "shape": self.shape}
        try:
            with _create(self.temporary) as f:
                np.lib.format.write_array_header_1_0(f, header)
                offset = f.tell()
                _reserve(f, offset + nbytes, self.path)
            self.array = (np.memmap(self.temporary, dtype=self.dtype, mode="r+", offset=offset,
                                    shape=self.shape) if nbytes else np.empty(self.shape, self.dtype))
        except BaseException:
            remove_quietly(self.temporary)
            raise
        return self.array

    def __exit__(self, kind, error, traceback):
        try:
            if kind is None and isinstance(self.array, np.memmap):
                self.array.flush()
            self.array = None
            if kind is None:
                with open(self.temporary, "rb+") as f:
                    os.fsync(f.fileno())
                _move_into_place(self.temporary, self.path)
        finally:
            remove_quietly(self.temporary)
        return False


def _reserve(f, size, path):
    """Give the open file ``size`` bytes of real disk space, or refuse: ValueError."""
    free = shutil.disk_usage(os.path.dirname(os.path.abspath(path))).free
    if size > free:
        raise ValueError(f"{path}: the output needs {readable_size(size)}, but the disk has only "
                         f"{readable_size(free)} free")
    try:
        os.posix_fallocate(f.fileno(), 0, size)
    except (AttributeError, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
            raise ValueError(f"{path}: cannot reserve {readable_size(size)} on the disk "
                             f"({exc.strerror})") from None
        f.truncate(size)  # this file system cannot reserve space: the free-space check stands


def probe_writable(name, path):
    """Create and remove a file beside ``path``; OSError (say, read-only folder) as ValueError.

    Run before long work whose result goes to ``path``, so that it is refused
    up front rather than lost at the end.
    """
    probe = temporary_name(target_of(path))
    try:
        with _create(probe):
            pass
    except OSError as exc:
        raise ValueError(f"{name}: cannot write {path} ({exc.strerror or exc})") from None
    remove_quietly(probe)


def same_file(a, b):
    """``a`` and ``b`` name the same existing file (through links, other spellings)."""
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError, TypeError):
        return False


def readable_size(n):
    """``n`` bytes in words: "512 bytes", "3.1 GB" (powers of 1000)."""
    for unit in ("bytes", "KB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000


# -- reading archives --------------------------------------------------------
class Archive:
    """An ``.npz`` opened for checked reading; use as a context manager.

    ``names`` is the set of members (without ``.npy``); :meth:`metadata`
    reads the JSON record, :meth:`array` one member of an expected shape and
    dtype.  Every problem is a :class:`FileRefused` naming the file.
    """

    def __init__(self, path, *, meta_name="__npae__"):
        self.path = os.fspath(path)
        self.meta_name = meta_name
        self.zip = None

    def __enter__(self):
        if not os.path.isfile(self.path):
            raise FileNotFoundError(f"no such file: {self.path}")
        with open(self.path, "rb") as f:
            magic = f.read(len(NPY_MAGIC))
        if magic.startswith(NPY_MAGIC):
            self.refuse("it is a single .npy array, not an .npz archive")
        if magic[:4] not in ZIP_MAGIC:
            self.refuse("it is empty" if not magic else "it is not an .npz (zip) archive")
        self.file_size = os.path.getsize(self.path)
        try:
            self.zip = zipfile.ZipFile(self.path)
            infos = self.zip.infolist()
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError,
                NotImplementedError) as exc:
            self.refuse(f"truncated or corrupt ({_reason(exc)})")
        self.members = {}
        for info in infos:
            name = info.filename[:-4] if info.filename.endswith(".npy") else None
            if name is None or info.is_dir():
                self.refuse(f"member {info.filename!r} is not a .npy array")
            if name in self.members:
                self.refuse(f"it holds two members named {info.filename!r}")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                self.refuse(f"member {info.filename!r} uses an unsupported compression")
            self.members[name] = info
        self.names = set(self.members) - {self.meta_name}
        return self

    def __exit__(self, *exc):
        if self.zip is not None:
            self.zip.close()

    def refuse(self, why):
        raise FileRefused(f"{self.path}: {why}")

    def metadata(self, *, limit=META_LIMIT):
        """The JSON record as a dict (its members' contents are the caller's to check)."""
        if self.meta_name not in self.members:
            self.refuse("it has no npae metadata (an .npz written by something else?)")
        with self._open(self.meta_name) as f:
            shape, _, dtype = self._header(f, self.meta_name)
            if dtype.kind != "U" or shape != ():
                self.refuse("its npae metadata is not a JSON string")
            if dtype.itemsize > limit:
                self.refuse(f"its metadata declares {readable_size(dtype.itemsize)}, more than the "
                            f"{readable_size(limit)} npae reads")
            raw = self._read_exactly(f, dtype.itemsize, self.meta_name)
        text = np.frombuffer(raw, dtype=dtype)[0]
        try:
            meta = json.loads(str(text), parse_constant=_refuse_constant, parse_int=_bounded_int)
        except (ValueError, RecursionError) as exc:
            self.refuse(f"its npae metadata is not valid JSON ({_reason(exc)})")
        if not isinstance(meta, dict):
            self.refuse("its npae metadata is not a JSON object")
        return meta

    def array(self, name, shape, dtype):
        """Member ``name``, which must be a C-ordered array of exactly ``shape`` and ``dtype``."""
        if name not in self.members:
            self.refuse(f"member {name!r} is missing")
        shape, dtype = tuple(shape), np.dtype(dtype)
        with self._open(name) as f:
            found_shape, fortran, found_dtype = self._header(f, name)
            if found_shape != shape or found_dtype != dtype or fortran:
                self.refuse(f"member {name!r} is {found_dtype.name}{found_shape}"
                            f"{' (Fortran order)' if fortran else ''}, expected "
                            f"{dtype.name}{shape}")
            nbytes = math.prod(shape) * dtype.itemsize
            self._check_declared_size(name, f.tell() + nbytes)
            value = np.empty(shape, dtype=dtype)
            view = memoryview(value.reshape(-1).view(np.uint8)) if nbytes else memoryview(b"")
            got = 0
            try:
                while got < nbytes:
                    n = f.readinto(view[got:])
                    if not n:
                        self.refuse(f"member {name!r} is truncated")
                    got += n
                if f.read(1):
                    self.refuse(f"member {name!r} holds more data than its header declares")
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
                if isinstance(exc, FileRefused):
                    raise
                self.refuse(f"member {name!r} is corrupt ({_reason(exc)})")
        return value

    def array_header(self, name):
        """``(shape, dtype)`` that member ``name`` declares, read without its data."""
        if name not in self.members:
            self.refuse(f"member {name!r} is missing")
        with self._open(name) as f:
            shape, fortran, dtype = self._header(f, name)
        return shape, dtype

    # -- details -------------------------------------------------------------
    def _open(self, name):
        info = self.members[name]
        if info.compress_size > self.file_size:
            self.refuse(f"member {info.filename!r} claims more bytes than the file holds")
        try:
            return self.zip.open(info)
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError,
                NotImplementedError) as exc:
            self.refuse(f"member {info.filename!r} cannot be read ({_reason(exc)})")

    def _check_declared_size(self, name, total):
        """A member must hold what its header says, and deflate must be able to make it."""
        info = self.members[name]
        if info.file_size != total:
            self.refuse(f"member {name!r} is {info.file_size} bytes in the zip directory, but "
                        f"its header needs {total}")
        ceiling = info.compress_size * (DEFLATE_MAX_RATIO if info.compress_type else 1) + 64
        if total > ceiling:
            self.refuse(f"member {name!r} claims {readable_size(total)} from {readable_size(info.compress_size)} "
                        "of compressed data, more than deflate can produce: the file is corrupt")

    def _header(self, f, name):
        try:
            version = np.lib.format.read_magic(f)
            shape, fortran, dtype = _read_header(f, version)
        except (ValueError, zipfile.BadZipFile, zlib.error, EOFError, OSError, SyntaxError,
                TypeError) as exc:
            self.refuse(f"member {name!r} has no valid .npy header ({_reason(exc)})")
        if dtype.hasobject:
            self.refuse(f"member {name!r} holds Python objects (npae never unpickles)")
        return shape, fortran, dtype

    def _read_exactly(self, f, n, name):
        try:
            data = f.read(n)
            extra = f.read(1)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
            self.refuse(f"member {name!r} is corrupt ({_reason(exc)})")
        if len(data) != n:
            self.refuse(f"member {name!r} is truncated")
        if extra:
            self.refuse(f"member {name!r} holds more data than its header declares")
        return data


def _read_header(f, version):
    """``(shape, fortran_order, dtype)`` of a ``.npy`` header, parsed without evaluating code.

    The header is a Python dict literal; it is read with a length limit and
    ``ast.literal_eval``, and a dtype that is not a plain number or unicode
    type (records, objects) is refused.
    """
    length_size = 2 if version == (1, 0) else 4
    raw = f.read(length_size)
    if len(raw) != length_size:
        raise ValueError("truncated header")
    length = int.from_bytes(raw, "little")
    if length > 4096:
        raise ValueError(f"a header of {length} bytes")
    text = f.read(length)
    if len(text) != length:
        raise ValueError("truncated header")
    header = ast.literal_eval(text.decode("latin1" if version < (3, 0) else "utf8"))
    if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
        raise ValueError("not an array header")
    descr, fortran, shape = header["descr"], header["fortran_order"], header["shape"]
    if not isinstance(descr, str) or not isinstance(fortran, bool) or not isinstance(shape, tuple):
        raise ValueError("not an array header")
    if not all(type(s) is int and 0 <= s < 2**48 for s in shape) or len(shape) > 32:
        raise ValueError(f"shape {shape!r}")
    dtype = np.dtype(descr)  # (an object dtype is returned, for the caller to refuse by name)
    if dtype.kind not in "biufUO" or dtype.fields is not None or dtype.subdtype is not None:
        raise ValueError(f"dtype {descr!r}")
    if math.prod(shape) * dtype.itemsize > 2**48:
        raise ValueError(f"shape {shape!r} of {descr!r}")
    return shape, fortran, dtype


def _refuse_constant(name):  # NaN, Infinity: not JSON, though Python's json reads them
    raise ValueError(f"{name} is not a number JSON allows")


def _bounded_int(text):
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"an integer of {len(text)} digits")
    return int(text)


def _reason(exc):
    return " ".join(str(exc).split())[:200] or type(exc).__name__
