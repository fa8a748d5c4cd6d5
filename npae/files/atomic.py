"""Files written atomically: a crash, a full disk or a signal mid-write never leaves half a file.

npae writes three kinds of file, all through this module: archives of named
arrays with a JSON record (model files and checkpoints), ``.npy`` arrays
streamed chunk by chunk (codes, samples), and plain bytes (PNG pictures).

Every file is written to a temporary file beside its target, flushed to disk,
then moved onto the target with ``os.replace``, and the folder is synced: the
previous file stays intact until the new one is whole, and the temporary file
is removed on every path out — and, for a process killed outright (SIGKILL), by
the next write to the same file, which removes the temporary files of processes
no longer running.  New files get the permissions the user's umask
gives (mode 0666 & ~umask); a file that is replaced keeps its own.  A target
that is a symbolic link is written *through* the link: the link stays and its
target gets the new content.  Temporary names stay within the file system's
limit on name length.  (Reading is :mod:`npae.files.archive`.)
"""

import errno
import json
import math
import os
import re
import secrets
import shutil
import stat

import numpy as np


# -- writing -----------------------------------------------------------------
def target_of(path):
    """The file a write to ``path`` replaces: the link's target for a symbolic link."""
    return os.path.realpath(path) if os.path.islink(path) else path


def temporary_name(path, *, pid=None):
    """A fresh hidden name beside ``path`` whose length stays within the folder's limit:
    ``.<name>.<pid>-<random>.tmp``, the process id telling a stale one (:func:`remove_stale`)."""
    folder, stem = _temporary_stem(path)
    return os.path.join(folder, stem + f".{os.getpid() if pid is None else pid}-"
                                       f"{secrets.token_hex(4)}.tmp")


def _temporary_stem(path):
    """``(folder, stem)``: a temporary name of ``path`` is the stem, a process id and a token."""
    folder, name = os.path.split(os.path.abspath(path))
    try:
        limit = os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        limit = 255
    longest_suffix = len(f".{2**22}-{'0' * 8}.tmp")  # pids stay below 2**22 on Linux
    stem = os.fsencode("." + name)[: limit - longest_suffix]
    return folder, os.fsdecode(stem).rstrip("\udcff")


STALE = re.compile(r"\.([0-9]+)-[0-9a-f]{8}\.tmp")


def remove_stale(path):
    """Remove the temporary files of ``path`` that processes no longer running left behind
    (a write cut short by SIGKILL or a power cut leaves one).  A temporary file of a process
    still running — another write under way — is left alone."""
    folder, stem = _temporary_stem(path)
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        match = STALE.fullmatch(name[len(stem):]) if name.startswith(stem) else None
        if match and not _running(int(match.group(1))):
            remove_quietly(os.path.join(folder, name))


def _running(pid):
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):  # another user's process (EPERM), or not a pid at all
        return True
    return True


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
        remove_stale(self.path)
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
        remove_stale(self.path)
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
