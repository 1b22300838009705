"""The device's file system: a sandbox folder on the host.

Device paths are absolute POSIX paths (``/data/local/tmp/x``) and map to
``<root>/data/local/tmp/x``. A path is normalised lexically first, with ``..``
stopping at ``/`` as it does on any Unix, so no spelling of a path can leave the
root; and no symlink is ever followed: the device never creates one, and a path
through one someone placed in the root by hand is refused. Only the folders a
phone's ``shell`` user may write (``/data/local/tmp``, ``/sdcard``) are writable
through the shell and the sync service; everything else is read-only.

Errors are :class:`OSError` with a real ``errno``, so callers can print them the
way toybox and adbd do (``strerror``).
"""

from __future__ import annotations

import errno
import fnmatch
import os
import posixpath
import shutil
import stat
from pathlib import Path
from typing import BinaryIO

__all__ = ["Sandbox", "WRITABLE_ROOTS", "PRIVATE_ROOTS", "device_error"]

WRITABLE_ROOTS = ("/data/local/tmp", "/sdcard")
PRIVATE_ROOTS = ("/data/misc",)  # adbd's key store and friends: not for the shell user


def device_error(code: int, path: str) -> OSError:
    """An OSError as the device would raise it for ``path``."""
    return OSError(code, os.strerror(code), path)


class Sandbox:
    """Maps device paths into ``root`` and refuses anything that would leave it."""

    def __init__(
        self, root: Path, writable: tuple[str, ...] = WRITABLE_ROOTS, private: tuple[str, ...] = PRIVATE_ROOTS,
    ) -> None:
        self.root = Path(os.path.realpath(root))
        self.writable = writable
        self.private = private

    # -- paths ------------------------------------------------------------------------------
    @staticmethod
    def normalize(path: str, cwd: str = "/") -> str:
        """The absolute, normalised device path (``..`` above ``/`` stays at ``/``)."""
        joined = posixpath.join(cwd, path) if not path.startswith("/") else path
        parts: list[str] = []
        for part in joined.split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                if parts:
                    parts.pop()
                continue
            parts.append(part)
        return "/" + "/".join(parts)

    def host(self, path: str, cwd: str = "/", internal: bool = False) -> Path:
        """The host path of a device path; raises EACCES when a symlink lies on the way.

        Paths under the private folders are refused too, unless ``internal`` (the
        device itself setting up or keeping its own files).
        """
        device_path = self.normalize(path, cwd)
        if not internal and any(device_path == p or device_path.startswith(p + "/") for p in self.private):
            raise device_error(errno.EACCES, device_path)
        current = self.root
        for part in device_path.strip("/").split("/") if device_path != "/" else []:
            current = current / part
            if current.is_symlink():
                raise device_error(errno.EACCES, device_path)
        resolved = os.path.realpath(current)
        if resolved != str(self.root) and not resolved.startswith(str(self.root) + os.sep):
            raise device_error(errno.EACCES, device_path)
        return current

    def is_writable(self, path: str, cwd: str = "/") -> bool:
        """Whether the shell user may create, change or remove ``path``."""
        device_path = self.normalize(path, cwd)
        return any(device_path == top or device_path.startswith(top + "/") for top in self.writable)

    def check_writable(self, path: str, cwd: str = "/") -> None:
        """Raise the error a phone gives when the shell user writes outside its folders."""
        device_path = self.normalize(path, cwd)
        if not self.is_writable(device_path):
            read_only = device_path == "/system" or device_path.startswith(("/system/", "/vendor/", "/product/"))
            raise device_error(errno.EROFS if read_only else errno.EACCES, device_path)

    # -- queries ----------------------------------------------------------------------------
    def lstat(self, path: str, cwd: str = "/") -> os.stat_result:
        """``lstat`` of a device path; FileNotFoundError when absent."""
        device_path = self.normalize(path, cwd)
        try:
            return os.lstat(self.host(device_path))
        except FileNotFoundError:
            raise device_error(errno.ENOENT, device_path) from None
        except NotADirectoryError:
            raise device_error(errno.ENOTDIR, device_path) from None

    def exists(self, path: str, cwd: str = "/") -> bool:
        try:
            self.lstat(path, cwd)
        except OSError:
            return False
        return True

    def is_dir(self, path: str, cwd: str = "/") -> bool:
        try:
            return stat.S_ISDIR(self.lstat(path, cwd).st_mode)
        except OSError:
            return False

    def is_file(self, path: str, cwd: str = "/") -> bool:
        try:
            return stat.S_ISREG(self.lstat(path, cwd).st_mode)
        except OSError:
            return False

    def listdir(self, path: str, cwd: str = "/") -> list[str]:
        """Names in a device folder, sorted; ENOTDIR / ENOENT as the device would say."""
        device_path = self.normalize(path, cwd)
        st = self.lstat(device_path)
        if not stat.S_ISDIR(st.st_mode):
            raise device_error(errno.ENOTDIR, device_path)
        return sorted(os.listdir(self.host(device_path)))

    def read_bytes(self, path: str, cwd: str = "/", limit: int | None = None) -> bytes:
        """A file's content (its first ``limit`` bytes when given)."""
        device_path = self.normalize(path, cwd)
        st = self.lstat(device_path)
        if stat.S_ISDIR(st.st_mode):
            raise device_error(errno.EISDIR, device_path)
        with open(self.host(device_path), "rb") as handle:
            return handle.read() if limit is None else handle.read(limit)

    def open_read(self, path: str, cwd: str = "/") -> BinaryIO:
        device_path = self.normalize(path, cwd)
        if stat.S_ISDIR(self.lstat(device_path).st_mode):
            raise device_error(errno.EISDIR, device_path)
        return open(self.host(device_path), "rb")

    def glob(self, pattern: str, cwd: str = "/") -> list[str]:
        """Device paths matching a shell pattern (``*``, ``?``, ``[...]`` per component), sorted.

        Relative patterns give relative results, as in sh. Names starting with a dot
        match only a pattern component that starts with one.
        """
        absolute = pattern.startswith("/")
        parts = [p for p in pattern.split("/") if p]
        results = ["/" if absolute else ""]
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            next_results = []
            for base in results:
                base_device = self.normalize(base or ".", cwd)
                if not any(c in part for c in "*?["):
                    candidate = posixpath.join(base, _unescape(part)) if base else _unescape(part)
                    if last or self.is_dir(candidate, cwd):
                        next_results.append(candidate)
                    continue
                try:
                    names = self.listdir(base_device)
                except OSError:
                    continue
                for name in names:
                    if name.startswith(".") and not part.startswith("."):
                        continue
                    if fnmatch.fnmatchcase(name, part):
                        candidate = posixpath.join(base, name) if base else name
                        if last or self.is_dir(candidate, cwd):
                            next_results.append(candidate)
            results = next_results
        return sorted(r for r in results if r and self.exists(r, cwd))

    # -- changes (callers check writability first; the server uses these to set up the device)
    def open_write(self, path: str, cwd: str = "/", append: bool = False, mode: int = 0o666) -> BinaryIO:
        device_path = self.normalize(path, cwd)
        host = self.host(device_path)
        if host.is_dir():
            raise device_error(errno.EISDIR, device_path)
        if not host.parent.is_dir():
            raise device_error(errno.ENOENT, device_path)
        fd = os.open(host, os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC), mode)
        return os.fdopen(fd, "ab" if append else "wb")

    def write_bytes(self, path: str, data: bytes, mode: int | None = None) -> None:
        """Create or replace a file, making its folders (set-up only; no writability check)."""
        host = self.host(path, internal=True)
        host.parent.mkdir(parents=True, exist_ok=True)
        host.write_bytes(data)
        if mode is not None:
            os.chmod(host, mode)

    def mkdir(self, path: str, cwd: str = "/", parents: bool = False, mode: int = 0o771) -> None:
        device_path = self.normalize(path, cwd)
        host = self.host(device_path)
        if parents:
            if host.exists() and not host.is_dir():
                raise device_error(errno.EEXIST, device_path)
            current = "/"
            for part in device_path.strip("/").split("/"):
                current = posixpath.join(current, part)
                current_host = self.host(current)
                if not current_host.exists():
                    os.mkdir(current_host, mode)
                elif not current_host.is_dir():
                    raise device_error(errno.ENOTDIR, current)
            return
        if host.exists():
            raise device_error(errno.EEXIST, device_path)
        if not host.parent.is_dir():
            raise device_error(errno.ENOENT, device_path)
        os.mkdir(host, mode)

    def remove(self, path: str, cwd: str = "/", recursive: bool = False) -> None:
        device_path = self.normalize(path, cwd)
        st = self.lstat(device_path)
        host = self.host(device_path)
        if stat.S_ISDIR(st.st_mode):
            if not recursive:
                raise device_error(errno.EISDIR, device_path)
            shutil.rmtree(host)
        else:
            os.unlink(host)

    def rmdir(self, path: str, cwd: str = "/") -> None:
        device_path = self.normalize(path, cwd)
        if not stat.S_ISDIR(self.lstat(device_path).st_mode):
            raise device_error(errno.ENOTDIR, device_path)
        try:
            os.rmdir(self.host(device_path))
        except OSError as exc:
            raise device_error(exc.errno or errno.ENOTEMPTY, device_path) from None

    def chmod(self, path: str, mode: int, cwd: str = "/") -> None:
        """Set permission bits (the owner keeps read/write so the sandbox stays manageable)."""
        device_path = self.normalize(path, cwd)
        self.lstat(device_path)
        host = self.host(device_path)
        keep = 0o700 if host.is_dir() else 0o600
        os.chmod(host, (mode & 0o7777) | keep)

    def utime(self, path: str, mtime: float, cwd: str = "/") -> None:
        os.utime(self.host(path, cwd), (mtime, mtime))

    def rename(self, source: str, target: str, cwd: str = "/") -> None:
        src, dst = self.normalize(source, cwd), self.normalize(target, cwd)
        self.lstat(src)
        os.replace(self.host(src), self.host(dst))


def _unescape(part: str) -> str:
    """Undo the ``[*]``-style escaping the shell applies to quoted glob characters."""
    out, i = [], 0
    while i < len(part):
        if part[i] == "[" and i + 2 < len(part) and part[i + 2] == "]":
            out.append(part[i + 1])
            i += 3
        else:
            out.append(part[i])
            i += 1
    return "".join(out)
