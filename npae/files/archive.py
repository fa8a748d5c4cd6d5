"""Archives read without pickle and with bounded memory, whatever the file claims.

An archive is a zip of ``.npy`` members, as ``numpy.savez`` writes it, with one
member holding a JSON record.  Reading never unpickles and never trusts a
declared size: the caller names each member's expected shape and dtype; the zip
directory, the ``.npy`` header and the ratio deflate can reach are checked
against it before anything is allocated, and a member is read up to its size
and no further.  Duplicate names and every corrupt or truncated stream are a
:class:`FileRefused` (a ``ValueError``) naming the file.  The module knows
nothing of models: it reads ``name → array`` and JSON.
"""

import ast
import json
import math
import os
import zipfile
import zlib

import numpy as np

from .atomic import readable_size

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a zip with members / an empty zip
NPY_MAGIC = b"\x93NUMPY"
DEFLATE_MAX_RATIO = 1032  # deflate cannot expand a stream more than this (zlib's own bound)
META_LIMIT = 16 * 2**20   # bytes of JSON metadata: ~400,000 epochs of history
MAX_INT_DIGITS = 50       # longer integers in metadata are refused (a 128-bit generator state has 39)


class FileRefused(ValueError):
    """A file refused for a reason worded for the user (a ValueError naming the file)."""


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
            meta = json.loads(str(text), parse_constant=_refuse_constant, parse_int=_bounded_int,
                              parse_float=_finite_float)
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


def _finite_float(text):  # 1e999 is valid JSON, and Python reads it as infinity
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:20]} is beyond the largest float")
    return value


def _bounded_int(text):
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"an integer of {len(text)} digits")
    return int(text)


def _reason(exc):
    return " ".join(str(exc).split())[:200] or type(exc).__name__
