"""A small sandboxed ``/system/bin/sh``: enough of mksh and toybox for what ADB clients run.

Nothing here ever runs a host program or touches a host path outside the
sandbox: every command is a Python function and every path goes through
:class:`~latprof.loopback._fs.Sandbox`.

The language: words with sh quoting (``'…'``, ``"…"``, ``\\``); ``$?``, ``$$``,
``$#``, ``$0``-``$9``, ``$@``, ``$*``, ``$NAME``, ``${NAME}``; ``$(…)`` and
backquote substitution (run by this same interpreter); field splitting of
unquoted expansions; globbing (``*``, ``?``, ``[…]``) against the sandbox, a
pattern that matches nothing staying as it is; ``NAME=value``; ``;``, newlines,
``&&``, ``||``, ``|`` (each stage runs to completion and feeds the next), ``!``;
redirections ``>``, ``>>``, ``<``, ``N>``, ``N>>``, ``N>&M`` (``2>&1``,
``>&2``) including ``/dev/null``; ``#`` comments. Compound commands (``if``,
``for``, ``while``, ``case``, ``(…)``, ``{…}``), here-documents, ``&`` and
arithmetic are refused with a syntax error, exit status 2.

Commands (defined in :mod:`._commands`): the shell builtins ``:``, ``[``, ``cd``, ``command -v``, ``echo``,
``exec``, ``exit``, ``export``, ``false``, ``kill``, ``printf``, ``pwd``,
``test``, ``true``, ``unset``, ``wait``; and the toybox applets installed as
``/system/bin/NAME``: ``cat``, ``chmod``, ``cp``, ``date``, ``echo``, ``env``,
``false``, ``getprop``, ``grep``, ``head``, ``id``, ``kill``, ``ls``,
``md5sum``, ``sha1sum``, ``mkdir``, ``mv``, ``nproc``, ``pkill``, ``rm``, ``rmdir``, ``sh``,
``sha256sum``, ``sleep``, ``taskset``, ``touch``, ``true``, ``uname``, ``wc``,
``which``, ``whoami``. A file marked as the loopback's ``benchmark_model`` runs
the model on the host; a text file runs as a script; an ELF file cannot run
(``not executable: 64-bit ELF file``, 126); an unknown name gives mksh's
``/system/bin/sh: NAME: inaccessible or not found``, 127.
"""

from __future__ import annotations

import errno
import posixpath
import re
import stat
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

from latprof.loopback._fs import Sandbox

if TYPE_CHECKING:
    from latprof.loopback._server import LoopbackDevice

__all__ = [
    "Shell", "ShellIO", "Sink", "NullSink", "BufferSink", "CallbackSink", "ShellSyntaxError",
    "APPLETS", "applet_file", "applet_of", "SH",
]

SH = "/system/bin/sh"
PATH = ":".join([
    "/product/bin", "/apex/com.android.runtime/bin", "/apex/com.android.art/bin", "/system_ext/bin", "/system/bin",
    "/system/xbin", "/odm/bin", "/vendor/bin", "/vendor/xbin",
])
_APPLET_MARK = b"#!/system/bin/toybox\n# latprof loopback applet: "
_MAX_DEPTH = 16


class ShellSyntaxError(Exception):
    """The command line cannot be parsed (or uses a construct this shell does not have)."""


class _RedirectError(Exception):
    """A redirection's file cannot be opened; the command does not run."""


class _Exit(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


# -- output sinks ---------------------------------------------------------------------------------
class Sink:
    """Where a file descriptor's bytes go."""

    def write(self, data: bytes) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class NullSink(Sink):
    def write(self, data: bytes) -> None:
        pass


class BufferSink(Sink):
    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes) -> None:
        self.data += data


class CallbackSink(Sink):
    def __init__(self, callback: Callable[[bytes], None]) -> None:
        self.callback = callback

    def write(self, data: bytes) -> None:
        if data:
            self.callback(data)


class _FileSink(Sink):
    def __init__(self, handle) -> None:  # noqa: ANN001 - a binary file object
        self.handle = handle

    def write(self, data: bytes) -> None:
        self.handle.write(data)

    def close(self) -> None:
        self.handle.close()


def _encode(data: str | bytes) -> bytes:
    return data if isinstance(data, bytes) else data.encode("utf-8", "surrogateescape")


@dataclass
class ShellIO:
    """The file descriptors of one command: 1 and 2 are sinks, stdin is bytes."""

    fds: dict[int, Sink]
    stdin: bytes = b""

    def out(self, data: str | bytes) -> None:
        self.fds.get(1, NullSink()).write(_encode(data))

    def err(self, data: str | bytes) -> None:
        self.fds.get(2, NullSink()).write(_encode(data))

    def with_fds(self, fds: dict[int, Sink], stdin: bytes | None = None) -> ShellIO:
        return ShellIO(fds, self.stdin if stdin is None else stdin)


# -- lexer ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Lit:
    text: str
    quoted: bool


@dataclass(frozen=True)
class _Var:
    name: str
    quoted: bool


@dataclass(frozen=True)
class _Sub:
    script: str
    quoted: bool


_Seg = _Lit | _Var | _Sub
_Word = tuple[_Seg, ...]


@dataclass(frozen=True)
class _Redir:
    fd: int
    op: str  # ">", ">>", "<", ">&", "<&"
    target: _Word | None = None
    dup: int | None = None


@dataclass
class _Command:
    assigns: list[tuple[str, _Word]] = field(default_factory=list)
    words: list[_Word] = field(default_factory=list)
    redirs: list[_Redir] = field(default_factory=list)


@dataclass
class _Pipeline:
    commands: list[_Command]
    negate: bool = False


_AndOr = list[tuple[str | None, _Pipeline]]
_DELIMS = set(" \t\n;&|<>()")
_RESERVED = {"if", "then", "else", "elif", "fi", "for", "while", "until", "do", "done", "case", "esac",
             "function", "select", "{", "}", "[[", "]]", "time", "coproc"}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class _Lexer:
    """Turns a command line into words, operators and redirections."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0

    def tokens(self) -> list[tuple[str, object]]:
        out: list[tuple[str, object]] = []
        text = self.text
        while self.i < len(text):
            c = text[self.i]
            if c in " \t":
                self.i += 1
            elif c == "\\" and text[self.i:self.i + 2] == "\\\n":
                self.i += 2
            elif c == "\n":
                out.append(("op", ";"))
                self.i += 1
            elif c == "#":
                end = text.find("\n", self.i)
                self.i = len(text) if end < 0 else end
            elif text.startswith(("&&", "||"), self.i):
                out.append(("op", text[self.i:self.i + 2]))
                self.i += 2
            elif c in ";|":
                if text.startswith(";;", self.i):
                    raise ShellSyntaxError("';;' unexpected")
                out.append(("op", c))
                self.i += 1
            elif c == "&":
                if text.startswith("&>", self.i):
                    raise ShellSyntaxError("'&>' is not supported; use '>FILE 2>&1'")
                raise ShellSyntaxError("'&' (background jobs) is not supported")
            elif c in "()":
                raise ShellSyntaxError(f"'{c}' (subshells) is not supported")
            elif c in "<>" or (c.isdigit() and re.match(r"\d+[<>]", text[self.i:])):
                out.append(("redir", self._redir()))
            else:
                out.append(("word", self._word()))
        return out

    def _redir(self) -> _Redir:
        text = self.text
        match = re.match(r"(\d*)(>>|>&|<&|<<|>\||>|<)", text[self.i:])
        assert match is not None
        self.i += match.end()
        digits, op = match.group(1), match.group(2)
        if op == "<<":
            raise ShellSyntaxError("here-documents are not supported")
        if op == ">|":
            op = ">"
        fd = int(digits) if digits else (0 if op[0] == "<" else 1)
        if op in (">&", "<&"):
            dup = re.match(r"\s*(\d+|-)", text[self.i:])
            if not dup:
                raise ShellSyntaxError(f"bad file descriptor after '{op}'")
            self.i += dup.end()
            if dup.group(1) == "-":
                return _Redir(fd, "close")
            return _Redir(fd, op, dup=int(dup.group(1)))
        while self.i < len(text) and text[self.i] in " \t":
            self.i += 1
        if self.i >= len(text) or text[self.i] in _DELIMS:
            raise ShellSyntaxError(f"missing file name after '{op}'")
        return _Redir(fd, op, target=self._word())

    def _word(self) -> _Word:
        text = self.text
        segs: list[_Seg] = []
        lit: list[str] = []

        def flush(quoted: bool = False) -> None:
            if lit:
                segs.append(_Lit("".join(lit), quoted))
                lit.clear()

        while self.i < len(text) and text[self.i] not in _DELIMS:
            c = text[self.i]
            if c == "'":
                end = text.find("'", self.i + 1)
                if end < 0:
                    raise ShellSyntaxError("unterminated single quote")
                flush()
                segs.append(_Lit(text[self.i + 1:end], True))
                self.i = end + 1
            elif c == '"':
                flush()
                self.i += 1
                segs.extend(self._double_quoted())
            elif c == "\\":
                flush()
                if self.i + 1 < len(text):
                    if text[self.i + 1] != "\n":
                        segs.append(_Lit(text[self.i + 1], True))
                    self.i += 2
                else:
                    self.i += 1
            elif c == "$" or c == "`":
                seg = self._dollar(quoted=False)
                if seg is None:
                    lit.append("$")
                else:
                    flush()
                    segs.append(seg)
            else:
                lit.append(c)
                self.i += 1
        flush()
        return tuple(segs)

    def _double_quoted(self) -> list[_Seg]:
        text = self.text
        segs: list[_Seg] = []
        lit: list[str] = []
        while True:
            if self.i >= len(text):
                raise ShellSyntaxError("unterminated double quote")
            c = text[self.i]
            if c == '"':
                self.i += 1
                break
            if c == "\\" and self.i + 1 < len(text) and text[self.i + 1] in '$`"\\\n':
                if text[self.i + 1] != "\n":
                    lit.append(text[self.i + 1])
                self.i += 2
            elif c in "$`":
                seg = self._dollar(quoted=True)
                if seg is None:
                    lit.append("$")
                else:
                    if lit:
                        segs.append(_Lit("".join(lit), True))
                        lit.clear()
                    segs.append(seg)
            else:
                lit.append(c)
                self.i += 1
        if lit or not segs:  # "" is an empty quoted word; "$@" alone may be no word at all
            segs.append(_Lit("".join(lit), True))
        return segs

    def _dollar(self, quoted: bool) -> _Seg | None:
        """Parse ``$…`` or a backquote at self.i; None for a lone ``$``."""
        text = self.text
        if text[self.i] == "`":
            end = self.i + 1
            while end < len(text) and text[end] != "`":
                end += 2 if text[end] == "\\" else 1
            if end >= len(text):
                raise ShellSyntaxError("unterminated '`'")
            script = re.sub(r"\\([$`\\])", r"\1", text[self.i + 1:end])
            self.i = end + 1
            return _Sub(script, quoted)
        nxt = text[self.i + 1:self.i + 2]
        if text.startswith("$((", self.i):
            raise ShellSyntaxError("arithmetic expansion '$((' is not supported")
        if nxt == "(":
            end = _matching_paren(text, self.i + 2)
            script = text[self.i + 2:end]
            self.i = end + 1
            return _Sub(script, quoted)
        if nxt == "{":
            end = text.find("}", self.i + 2)
            if end < 0:
                raise ShellSyntaxError("unterminated '${'")
            name = text[self.i + 2:end]
            if not (_NAME.fullmatch(name) or name in ("?", "$", "#", "@", "*", "!", "-") or name.isdigit()):
                raise ShellSyntaxError(f"'${{{name}}}': this parameter expansion is not supported")
            self.i = end + 1
            return _Var(name, quoted)
        if nxt and nxt in "?$#@*!-0123456789":
            self.i += 2
            return _Var(nxt, quoted)
        match = _NAME.match(text, self.i + 1)
        if match:
            self.i = match.end()
            return _Var(match.group(0), quoted)
        self.i += 1
        return None


def _matching_paren(text: str, start: int) -> int:
    """Index of the ``)`` closing a ``$(`` whose body starts at ``start``."""
    depth, i = 1, start
    while i < len(text):
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == "'":
            end = text.find("'", i + 1)
            if end < 0:
                break
            i = end + 1
            continue
        if c == '"':
            i += 1
            while i < len(text) and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            i += 1
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise ShellSyntaxError("unterminated '$('")


def _parse(text: str) -> list[_AndOr]:
    """Command line -> list of and-or lists."""
    tokens = _Lexer(text).tokens()
    script: list[_AndOr] = []
    andor: _AndOr = []
    pipeline = _Pipeline([])
    command = _Command()
    connector: str | None = None

    def end_command() -> None:
        nonlocal command
        if not (command.words or command.assigns or command.redirs):
            raise ShellSyntaxError("syntax error: unexpected operator")
        pipeline.commands.append(command)
        command = _Command()

    def end_pipeline() -> None:
        nonlocal pipeline, connector
        end_command()
        andor.append((connector, pipeline))
        pipeline = _Pipeline([])
        connector = None

    for kind, value in tokens:
        if kind == "word":
            word = cast(_Word, value)
            first = word[0] if word else None
            unquoted = isinstance(first, _Lit) and not first.quoted
            if not command.words and unquoted and len(word) == 1:
                plain = cast(_Lit, first).text
                if plain in _RESERVED:
                    raise ShellSyntaxError(f"'{plain}' (compound commands) is not supported")
                if plain == "!" and not pipeline.commands and not command.assigns:
                    pipeline.negate = not pipeline.negate
                    continue
            if not command.words and unquoted:
                text = cast(_Lit, first).text
                match = re.match(r"([A-Za-z_][A-Za-z0-9_]*)=", text)
                if match:  # NAME=value, NAME=$(…), NAME="…"
                    command.assigns.append((match.group(1), (_Lit(text[match.end():], False), *word[1:])))
                    continue
            command.words.append(word)
        elif kind == "redir":
            command.redirs.append(cast(_Redir, value))
        elif value == "|":
            end_command()
        elif value in ("&&", "||"):
            end_pipeline()
            connector = cast(str, value)
        else:  # ";"
            if command.words or command.assigns or command.redirs or pipeline.commands:
                end_pipeline()
            elif andor and connector is None:
                pass
            elif connector is not None:
                raise ShellSyntaxError(f"syntax error: '{connector}' unexpected")
            if andor:
                script.append(andor)
                andor = []
    if command.words or command.assigns or command.redirs or pipeline.commands:
        end_pipeline()
    elif connector is not None:
        raise ShellSyntaxError(f"syntax error: unexpected end of line after '{connector}'")
    if andor:
        script.append(andor)
    return script


# -- applets installed in /system/bin ---------------------------------------------------------------
Applet = Callable[["Shell", list[str], ShellIO], int]
APPLETS: dict[str, Applet] = {}
_BUILTINS: dict[str, Applet] = {}


def _applet(*names: str, builtin: bool = False) -> Callable[[Applet], Applet]:
    def register(fn: Applet) -> Applet:
        for name in names:
            (_BUILTINS if builtin else APPLETS)[name] = fn
        return fn
    return register


def applet_file(name: str) -> bytes:
    """The content of the ``/system/bin/NAME`` stand-in for a toybox applet."""
    return _APPLET_MARK + name.encode() + b"\n"


def applet_of(head: bytes) -> str | None:
    """The applet a ``/system/bin`` stand-in file runs, or None for any other file."""
    if head.startswith(_APPLET_MARK):
        name = head[len(_APPLET_MARK):].split(b"\n", 1)[0].decode("ascii", "replace")
        return name if name in APPLETS else None
    return None


class Shell:
    """One ``sh -c`` (or script) run: variables, working folder, last status."""

    def __init__(
        self, device: LoopbackDevice, *, cancel: threading.Event | None = None,
        abort: Callable[[], None] | None = None, env: dict[str, str] | None = None,
        args: list[str] | None = None, depth: int = 0, cwd: str = "/",
    ) -> None:
        self.device = device
        self.fs: Sandbox = device.fs
        self.cancel = cancel or threading.Event()
        self.abort = abort or (lambda: None)
        self.vars = {
            "PATH": PATH, "HOME": "/", "USER": "shell", "LOGNAME": "shell", "SHELL": SH, "HOSTNAME": "localhost",
            "ANDROID_DATA": "/data", "ANDROID_ROOT": "/system", "EXTERNAL_STORAGE": "/sdcard",
            "TMPDIR": "/data/local/tmp", "ANDROID_SOCKET_adbd": "3",
        }
        self.vars.update(env or {})
        self.args = args or [SH]
        self.depth = depth
        self.cwd = cwd
        self.status = 0
        self.exited = False  # an `exit` ran: an interactive session ends
        self._sub_status: int | None = None  # status of the last command substitution

    def child(self, args: list[str] | None = None) -> Shell:
        """A subshell: same device and variables, its own status and exit."""
        if self.depth >= _MAX_DEPTH:
            raise ShellSyntaxError("too many nested shells")
        shell = Shell(self.device, cancel=self.cancel, abort=self.abort, env=dict(self.vars),
                      args=args or list(self.args), depth=self.depth + 1, cwd=self.cwd)
        return shell

    # -- running ------------------------------------------------------------------------------
    def run(self, script: str, io: ShellIO) -> int:
        """Run a command line; returns its exit status."""
        try:
            parsed = _parse(script)
        except ShellSyntaxError as exc:
            io.err(f"{SH}: {exc}\n")
            self.status = 2
            return 2
        try:
            for andor in parsed:
                self._run_andor(andor, io)
        except _Exit as exc:
            self.status = exc.status
            self.exited = True
        except ShellSyntaxError as exc:
            io.err(f"{SH}: {exc}\n")
            self.status = 2
        return self.status

    def _run_andor(self, andor: _AndOr, io: ShellIO) -> None:
        for connector, pipeline in andor:
            if connector == "&&" and self.status != 0:
                continue
            if connector == "||" and self.status == 0:
                continue
            self.status = self._run_pipeline(pipeline, io)

    def _run_pipeline(self, pipeline: _Pipeline, io: ShellIO) -> int:
        data = io.stdin
        status = 0
        for index, command in enumerate(pipeline.commands):
            last = index == len(pipeline.commands) - 1
            if last:
                status = self._run_command(command, io.with_fds(dict(io.fds), data))
            else:
                buffer = BufferSink()
                self._run_command(command, io.with_fds({**io.fds, 1: buffer}, data))
                data = bytes(buffer.data)
        if pipeline.negate:
            status = 0 if status else 1
        return status

    def _run_command(self, command: _Command, io: ShellIO) -> int:
        if self.cancel.is_set():
            raise _Exit(130)
        self._sub_status = None
        values = [(name, "".join(self._expand_word(word, split=False, io=io))) for name, word in command.assigns]
        argv: list[str] = []
        for word in command.words:
            argv.extend(self._expand_word(word, split=True, io=io))
        opened: list[Sink] = []
        try:
            try:
                redirected = self._redirect(command.redirs, io, opened)
            except _RedirectError as exc:
                io.err(f"{SH}: {exc}\n")
                return 1
            if not argv:
                self.vars.update(values)
                return self._sub_status or 0
            return self.execute(argv, redirected)
        finally:
            for sink in opened:
                sink.close()

    def _redirect(self, redirs: list[_Redir], io: ShellIO, opened: list[Sink]) -> ShellIO:
        fds = dict(io.fds)
        stdin = io.stdin
        for redir in redirs:
            if redir.op == "close":
                fds.pop(redir.fd, None)
                continue
            if redir.op in (">&", "<&"):
                fds[redir.fd] = fds.get(redir.dup if redir.dup is not None else 1, NullSink())
                continue
            target = " ".join(self._expand_word(redir.target or (), split=False, io=io))
            path = self.fs.normalize(target, self.cwd)
            if redir.op == "<":
                if path == "/dev/null":
                    data = b""
                else:
                    try:
                        data = self.fs.read_bytes(path)
                    except OSError as exc:
                        raise _RedirectError(f"can't open {target}: {exc.strerror}") from None
                if redir.fd == 0:
                    stdin = data
                continue
            if path in ("/dev/null", "/dev/zero"):
                fds[redir.fd] = NullSink()
                continue
            if path in ("/dev/stdout", "/dev/stderr"):
                fds[redir.fd] = fds.get(1 if path.endswith("out") else 2, NullSink())
                continue
            try:
                self.fs.check_writable(path)
                handle = self.fs.open_write(path, append=redir.op == ">>")
            except OSError as exc:
                raise _RedirectError(f"can't create {target}: {exc.strerror}") from None
            sink = _FileSink(handle)
            opened.append(sink)
            fds[redir.fd] = sink
        return io.with_fds(fds, stdin)

    # -- expansion ----------------------------------------------------------------------------
    def _param(self, name: str) -> str | list[str]:
        if name == "?":
            return str(self.status)
        if name == "$":
            return str(12345 + self.depth)
        if name == "#":
            return str(len(self.args) - 1)
        if name == "@":
            return list(self.args[1:])
        if name == "*":
            return " ".join(self.args[1:])
        if name == "!":
            return ""
        if name == "-":
            return "c" if self.depth == 0 else ""
        if name.isdigit():
            index = int(name)
            return self.args[index] if index < len(self.args) else ""
        return self.vars.get(name, "")

    def _substitute(self, script: str, io: ShellIO) -> str:
        buffer = BufferSink()
        child = self.child()
        status = child.run(script, io.with_fds({1: buffer, 2: io.fds.get(2, NullSink())}))
        self._sub_status = status
        return bytes(buffer.data).decode("utf-8", "surrogateescape").rstrip("\n")

    def _expand_word(self, word: _Word, split: bool, io: ShellIO) -> list[str]:
        """Expand one word into fields (several when split or ``"$@"``; none for an empty unquoted expansion)."""
        fields: list[list[tuple[str, bool]]] = [[]]  # pieces of (text, may glob)
        touched = [False]  # whether the current field exists even if empty (quotes)

        def add(text: str, glob: bool) -> None:
            fields[-1].append((text, glob))
            touched[-1] = True

        def new_field() -> None:
            if fields[-1] or touched[-1]:
                fields.append([])
                touched.append(False)

        for seg in word:
            if isinstance(seg, _Lit):
                add(seg.text, not seg.quoted)
                if seg.quoted:
                    touched[-1] = True
                continue
            value = self._param(seg.name) if isinstance(seg, _Var) else self._substitute(seg.script, io)
            if isinstance(value, list):  # $@
                if seg.quoted:
                    for index, item in enumerate(value):
                        if index:
                            new_field()
                        add(item, False)
                    if not value:
                        touched[-1] = touched[-1] or False
                    continue
                value = " ".join(value)
            if seg.quoted or not split:
                add(value, False)
                if seg.quoted:
                    touched[-1] = True
                continue
            parts = value.split()
            if value[:1].isspace():
                new_field()
            for index, part in enumerate(parts):
                if index:
                    new_field()
                add(part, True)
            if value[-1:].isspace() and parts:
                new_field()
        out: list[str] = []
        for pieces, exists in zip(fields, touched):
            if not pieces and not exists:
                continue
            text = "".join(t for t, _ in pieces)
            if split and any(g and any(c in t for c in "*?[") for t, g in pieces):
                pattern = "".join(t if g else re.sub(r"([*?\[])", r"[\1]", t) for t, g in pieces)
                matches = self.fs.glob(pattern, self.cwd)
                if matches:
                    out.extend(matches)
                    continue
            out.append(text)
        if not split:
            return [" ".join(out)] if out else [""]
        return out

    # -- commands -----------------------------------------------------------------------------
    def execute(self, argv: list[str], io: ShellIO, via: str | None = None) -> int:
        """Run ``argv`` as the shell would (builtins, then PATH); ``via`` names an applet exec'ing it."""
        name = argv[0]
        if via is None and name in _BUILTINS:
            return _BUILTINS[name](self, argv, io)
        if "/" in name:
            return self.exec_path(name, argv, io, via)
        path = self.which(name)
        if path is None:
            return self._exec_error(io, via, name, "missing")
        return self.exec_path(path, argv, io, via)

    def which(self, name: str) -> str | None:
        for folder in self.vars.get("PATH", "").split(":"):
            if not folder:
                continue
            candidate = posixpath.join(folder, name)
            try:
                st = self.fs.lstat(candidate)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode) and st.st_mode & 0o111:
                return candidate
        return None

    def _exec_error(self, io: ShellIO, via: str | None, name: str, kind: str) -> int:
        shell_text = {
            "missing": "inaccessible or not found", "denied": "can't execute: Permission denied",
            "isdir": "can't execute: Is a directory", "elf64": "not executable: 64-bit ELF file",
            "elf32": "not executable: 32-bit ELF file", "data": "not executable: data",
        }
        exec_text = {
            "missing": "No such file or directory", "denied": "Permission denied", "isdir": "Permission denied",
            "elf64": "Exec format error", "elf32": "Exec format error", "data": "Exec format error",
        }
        if via is None:
            io.err(f"{SH}: {name}: {shell_text[kind]}\n")
        else:
            io.err(f"{via}: exec {name}: {exec_text[kind]}\n")
        return 127 if kind == "missing" else 126

    def exec_path(self, path: str, argv: list[str], io: ShellIO, via: str | None = None) -> int:
        """Execute the file at a device path."""
        from latprof.loopback._benchmark import is_placeholder, run_benchmark_model

        shown = argv[0]
        try:
            st = self.fs.lstat(path, self.cwd)
        except OSError as exc:
            missing = exc.errno in (errno.ENOENT, errno.ENOTDIR)
            return self._exec_error(io, via, shown, "missing" if missing else "denied")
        if stat.S_ISDIR(st.st_mode):
            return self._exec_error(io, via, shown, "isdir")
        if not st.st_mode & 0o111:
            return self._exec_error(io, via, shown, "denied")
        head = self.fs.read_bytes(path, self.cwd, limit=4096)
        applet = applet_of(head)
        if applet is not None:
            return APPLETS[applet](self, [applet, *argv[1:]], io)
        if is_placeholder(head):
            return run_benchmark_model(self, argv, io)
        if head.startswith(b"\x7fELF"):
            return self._exec_error(io, via, shown, "elf64" if head[4:5] == b"\x02" else "elf32")
        if b"\0" in head:
            return self._exec_error(io, via, shown, "data")
        script = self.fs.read_bytes(path, self.cwd).decode("utf-8", "surrogateescape")
        return self.child([path, *argv[1:]]).run(script, io)

    # -- helpers for applets ------------------------------------------------------------------
    def sleep(self, seconds: float) -> bool:
        """Sleep unless the client goes away; False when cancelled."""
        return not self.cancel.wait(max(0.0, seconds))

    def path(self, name: str) -> str:
        return self.fs.normalize(name, self.cwd)


# The builtins and applets register themselves in APPLETS/_BUILTINS when imported.
from latprof.loopback import _commands  # noqa: E402,F401
