"""The shell's builtins and the toybox applets installed as ``/system/bin/NAME``.

Each command is a function ``(shell, argv, io) -> exit status`` registered with
:func:`~latprof.loopback._shell._applet`. Output, error messages and exit
statuses follow mksh and toybox as found on Android phones (``cat: PATH: No such
file or directory``, ``taskset: sched_setaffinity: Invalid argument``, ...).
Every path goes through the sandbox; the shell user may write only in
``/data/local/tmp`` and ``/sdcard``.
"""

from __future__ import annotations

import errno
import hashlib
import os
import posixpath
import re
import stat
import time
from collections.abc import Iterable

from latprof.loopback._fs import Sandbox, device_error
from latprof.loopback._shell import (
    _BUILTINS,
    APPLETS,
    SH,
    Applet,
    NullSink,
    Shell,
    ShellIO,
    _applet,
    _encode,
    _Exit,
)

__all__: list[str] = []

_ID = (
    "uid=2000(shell) gid=2000(shell) groups=2000(shell),1004(input),1007(log),1011(adb),1015(sdcard_rw),"
    "1028(sdcard_r),3001(net_bt_admin),3002(net_bt),3003(inet),3006(net_bw_stats),3009(readproc),3011(uhid) "
    "context=u:r:shell:s0"
)


def _flags(argv: list[str], allowed: str, io: ShellIO, name: str) -> tuple[set[str], list[str]] | None:
    """Split ``-abc`` style flags off the front of argv[1:]; None (after an error) on an unknown one."""
    flags: set[str] = set()
    rest = argv[1:]
    while rest and rest[0].startswith("-") and rest[0] != "-":
        arg = rest.pop(0)
        if arg == "--":
            break
        for ch in arg[1:]:
            if ch not in allowed:
                io.err(f"{name}: Unknown option '{ch}'\n")
                return None
            flags.add(ch)
    return flags, rest


def _error(io: ShellIO, name: str, path: str, exc: OSError) -> None:
    io.err(f"{name}: {path}: {exc.strerror}\n")


# -- shell builtins ----------------------------------------------------------------------------------
@_applet("true", ":", builtin=True)
@_applet("true")
def _true(shell: Shell, argv: list[str], io: ShellIO) -> int:
    return 0


@_applet("false", builtin=True)
@_applet("false")
def _false(shell: Shell, argv: list[str], io: ShellIO) -> int:
    return 1


@_applet("echo", builtin=True)
@_applet("echo")
def _echo(shell: Shell, argv: list[str], io: ShellIO) -> int:
    args, newline, escapes = argv[1:], True, False
    while args and re.fullmatch(r"-[neE]+", args[0]):
        for ch in args.pop(0)[1:]:
            if ch == "n":
                newline = False
            elif ch == "e":
                escapes = True
            else:
                escapes = False
    text = " ".join(args)
    if escapes:
        text, stop = _unescape(text)
        if stop:
            newline = False
    io.out(text + ("\n" if newline else ""))
    return 0


def _unescape(text: str) -> tuple[str, bool]:
    """Backslash escapes of ``echo -e``/``printf``; True when ``\\c`` stops output."""
    out, i = [], 0
    simple = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "a": "\a", "b": "\b", "f": "\f", "v": "\v", "e": "\x1b"}
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt in simple:
                out.append(simple[nxt])
                i += 2
                continue
            if nxt == "c":
                return "".join(out), True
            if nxt == "0":
                match = re.match(r"[0-7]{0,3}", text[i + 2:])
                digits = match.group(0) if match else ""
                out.append(chr(int(digits or "0", 8)))
                i += 2 + len(digits)
                continue
        out.append(c)
        i += 1
    return "".join(out), False


@_applet("printf", builtin=True)
def _printf(shell: Shell, argv: list[str], io: ShellIO) -> int:
    if len(argv) < 2:
        io.err("printf: Needs 1 argument\n")
        return 1
    fmt, args = argv[1], argv[2:]
    out: list[str] = []
    while True:
        consumed = 0

        def conv(match: re.Match[str], args: list[str] = args) -> str:
            nonlocal consumed
            spec = match.group(0)
            if spec == "%%":
                return "%"
            value = args[consumed] if consumed < len(args) else ""
            consumed += 1
            kind = spec[-1]
            try:
                if kind in "di":
                    return (spec[:-1] + "d") % int(value or 0)
                if kind in "xXo":
                    return spec % int(value or 0)
                if kind in "feg":
                    return spec % float(value or 0)
                if kind == "c":
                    return value[:1]
                if kind == "b":
                    return _unescape(value)[0]
                return (spec[:-1] + "s") % value
            except ValueError:
                return value

        body = re.sub(r"%%|%[-+ 0#]*\d*(?:\.\d+)?[sdiouxXfegcb]", conv, fmt)
        out.append(_unescape(body)[0])
        args = args[consumed:]
        if not args or consumed == 0:
            break
    io.out("".join(out))
    return 0


@_applet("pwd", builtin=True)
def _pwd(shell: Shell, argv: list[str], io: ShellIO) -> int:
    io.out(shell.cwd + "\n")
    return 0


@_applet("cd", builtin=True)
def _cd(shell: Shell, argv: list[str], io: ShellIO) -> int:
    target = shell.path(argv[1] if len(argv) > 1 else shell.vars.get("HOME", "/"))
    if not shell.fs.is_dir(target):
        io.err(f"{SH}: cd: /{target.lstrip('/')}: No such file or directory\n")
        return 2
    shell.cwd = target
    return 0


@_applet("exit", builtin=True)
def _exit(shell: Shell, argv: list[str], io: ShellIO) -> int:
    try:
        status = int(argv[1]) & 0xFF if len(argv) > 1 else shell.status
    except ValueError:
        io.err(f"{SH}: exit: {argv[1]}: bad number\n")
        status = 1
    raise _Exit(status)


@_applet("export", builtin=True)
def _export(shell: Shell, argv: list[str], io: ShellIO) -> int:
    for arg in argv[1:]:
        name, eq, value = arg.partition("=")
        if eq:
            shell.vars[name] = value
    return 0


@_applet("unset", builtin=True)
def _unset(shell: Shell, argv: list[str], io: ShellIO) -> int:
    for name in argv[1:]:
        shell.vars.pop(name, None)
    return 0


@_applet("wait", builtin=True)
def _wait(shell: Shell, argv: list[str], io: ShellIO) -> int:
    return 0


@_applet("exec", builtin=True)
def _exec(shell: Shell, argv: list[str], io: ShellIO) -> int:
    if len(argv) < 2:
        return 0
    raise _Exit(shell.execute(argv[1:], io))


@_applet("command", builtin=True)
def _command(shell: Shell, argv: list[str], io: ShellIO) -> int:
    args = argv[1:]
    if args[:1] == ["-v"]:
        status = 0
        for name in args[1:]:
            found = name if name in _BUILTINS else shell.which(name)
            if found:
                io.out(found + "\n")
            else:
                status = 1
        return status
    return shell.execute(args, io) if args else 0


@_applet("kill", builtin=True)
@_applet("kill")
def _kill(shell: Shell, argv: list[str], io: ShellIO) -> int:
    pids = [a for a in argv[1:] if not a.startswith("-")]
    if not pids:
        io.err("kill: usage: kill [-s signal | -signum] pid...\n")
        return 1
    for pid in pids:
        io.err(f"kill: {pid}: No such process\n")
    return 1


@_applet("test", "[", builtin=True)
def _test(shell: Shell, argv: list[str], io: ShellIO) -> int:
    args = argv[1:]
    if argv[0] == "[":
        if not args or args[-1] != "]":
            io.err(f"{SH}: [: missing ]\n")
            return 2
        args = args[:-1]
    try:
        return 0 if _test_expr(shell, args) else 1
    except ValueError as exc:
        io.err(f"{SH}: {argv[0]}: {exc}\n")
        return 2


def _test_expr(shell: Shell, args: list[str]) -> bool:
    if not args:
        return False
    if args[0] == "!":
        return not _test_expr(shell, args[1:])
    for joiner in ("-o", "-a"):
        if joiner in args[1:-1]:
            index = args.index(joiner, 1)
            first, second = _test_expr(shell, args[:index]), _test_expr(shell, args[index + 1:])
            return (first or second) if joiner == "-o" else (first and second)
    if len(args) == 1:
        return args[0] != ""
    if len(args) == 2:
        op, operand = args
        if op == "-z":
            return operand == ""
        if op == "-n":
            return operand != ""
        try:
            st = shell.fs.lstat(operand, shell.cwd)
        except OSError:
            return False
        checks = {
            "-e": True, "-f": stat.S_ISREG(st.st_mode), "-d": stat.S_ISDIR(st.st_mode),
            "-x": bool(st.st_mode & 0o111), "-s": st.st_size > 0, "-r": True,
            "-w": shell.fs.is_writable(operand, shell.cwd), "-L": False, "-h": False,
            "-c": False, "-b": False, "-p": False, "-S": False,
        }
        if op not in checks:
            raise ValueError(f"{op}: unknown operand")
        return checks[op]
    if len(args) == 3:
        left, op, right = args
        if op in ("=", "=="):
            return left == right
        if op == "!=":
            return left != right
        numeric = {"-eq": int.__eq__, "-ne": int.__ne__, "-lt": int.__lt__, "-le": int.__le__,
                   "-gt": int.__gt__, "-ge": int.__ge__}
        if op in numeric:
            try:
                return bool(numeric[op](int(left), int(right)))
            except ValueError:
                raise ValueError("bad number") from None
    raise ValueError("unexpected operator")


# -- toybox applets --------------------------------------------------------------------------------------
@_applet("sh")
def _sh(shell: Shell, argv: list[str], io: ShellIO) -> int:
    args = argv[1:]
    if args[:1] == ["-c"]:
        if len(args) < 2:
            io.err(f"{SH}: -c: option requires an argument\n")
            return 1
        return shell.child([args[2] if len(args) > 2 else SH, *args[3:]]).run(args[1], io)
    if args:
        path = args[0]
        try:
            script = shell.fs.read_bytes(path, shell.cwd).decode("utf-8", "surrogateescape")
        except OSError:
            io.err(f"{SH}: {path}: No such file or directory\n")
            return 127
        return shell.child(args).run(script, io)
    return shell.child().run(io.stdin.decode("utf-8", "surrogateescape"), io.with_fds(io.fds, b""))


def _read_inputs(shell: Shell, name: str, paths: list[str], io: ShellIO) -> Iterable[tuple[str, bytes | None]]:
    """(path, content) per operand, ``-`` or none meaning stdin; content None after printing an error."""
    for path in paths or ["-"]:
        if path == "-":
            yield path, io.stdin
            continue
        try:
            yield path, (b"" if shell.path(path) == "/dev/null" else shell.fs.read_bytes(path, shell.cwd))
        except OSError as exc:
            _error(io, name, path, exc)
            yield path, None


@_applet("cat")
def _cat(shell: Shell, argv: list[str], io: ShellIO) -> int:
    parsed = _flags(argv, "uvAet", io, "cat")
    if parsed is None:
        return 1
    status = 0
    for _, data in _read_inputs(shell, "cat", parsed[1], io):
        if data is None:
            status = 1
        else:
            io.out(data)
    return status


@_applet("head")
def _head(shell: Shell, argv: list[str], io: ShellIO) -> int:
    count, paths, args = 10, [], argv[1:]
    while args:
        arg = args.pop(0)
        if arg == "-n" and args:
            count = int(args.pop(0))
        elif re.fullmatch(r"-n?\d+", arg):
            count = int(arg.lstrip("-n"))
        else:
            paths.append(arg)
    status = 0
    for _, data in _read_inputs(shell, "head", paths, io):
        if data is None:
            status = 1
            continue
        io.out(b"".join(data.splitlines(keepends=True)[:count]))
    return status


@_applet("wc")
def _wc(shell: Shell, argv: list[str], io: ShellIO) -> int:
    parsed = _flags(argv, "lwc", io, "wc")
    if parsed is None:
        return 1
    flags, paths = parsed
    flags = flags or {"l", "w", "c"}
    status = 0
    for path, data in _read_inputs(shell, "wc", paths, io):
        if data is None:
            status = 1
            continue
        counts = {"l": data.count(b"\n"), "w": len(data.split()), "c": len(data)}
        numbers = [str(counts[f]) for f in "lwc" if f in flags]
        io.out(" ".join(numbers if len(numbers) == 1 else [n.rjust(7) for n in numbers])
               + ("" if path == "-" else f" {path}") + "\n")
    return status


def _digest(algorithm: str) -> Applet:
    def applet(shell: Shell, argv: list[str], io: ShellIO) -> int:
        status = 0
        for path, data in _read_inputs(shell, argv[0], argv[1:], io):
            if data is None:
                status = 1
                continue
            io.out(f"{hashlib.new(algorithm, data).hexdigest()}  {path}\n")
        return status
    return applet


APPLETS["sha256sum"] = _digest("sha256")
APPLETS["sha1sum"] = _digest("sha1")
APPLETS["md5sum"] = _digest("md5")


def _bre_to_re(pattern: str) -> str:
    """A POSIX basic regular expression as a Python one (the common subset)."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            out.append(nxt if nxt in "(){}|+?" else "\\" + nxt)
            i += 2
            continue
        out.append("\\" + c if c in "(){}|+?" else c)
        i += 1
    return "".join(out)


@_applet("grep", "egrep", "fgrep")
def _grep(shell: Shell, argv: list[str], io: ShellIO) -> int:
    args, flags, patterns = argv[1:], set(), []
    if argv[0] == "egrep":
        flags.add("E")
    if argv[0] == "fgrep":
        flags.add("F")
    rest: list[str] = []
    while args:
        arg = args.pop(0)
        if arg == "--":
            rest.extend(args)
            break
        if arg == "-e" and args:
            patterns.append(args.pop(0))
        elif arg.startswith("-") and len(arg) > 1 and not rest:
            for ch in arg[1:]:
                if ch not in "HhqsvicnlEFwx":
                    io.err(f"grep: Unknown option '{ch}'\n")
                    return 2
                flags.add(ch)
        else:
            rest.append(arg)
    if not patterns:
        if not rest:
            io.err("grep: Need 1 argument\n")
            return 2
        patterns.append(rest.pop(0))
    regexes = []
    for pattern in patterns:
        text = re.escape(pattern) if "F" in flags else (pattern if "E" in flags else _bre_to_re(pattern))
        if "w" in flags:
            text = rf"\b(?:{text})\b"
        if "x" in flags:
            text = rf"^(?:{text})$"
        try:
            regexes.append(re.compile(text.encode("utf-8", "surrogateescape"), re.I if "i" in flags else 0))
        except re.error as exc:
            io.err(f"grep: bad regex '{pattern}': {exc}\n")
            return 2
    show_names = "H" in flags or (len(rest) > 1 and "h" not in flags)
    matched, failed = False, False
    quiet_io = io if "s" not in flags else io.with_fds({**io.fds, 2: NullSink()})
    for path, data in _read_inputs(shell, "grep", rest, quiet_io):
        if data is None:
            failed = True
            continue
        label = "(standard input)" if path == "-" else path
        count = 0
        for number, line in enumerate(data.splitlines(), 1):
            hit = any(r.search(line) for r in regexes) != ("v" in flags)
            if not hit:
                continue
            matched = True
            count += 1
            if "q" in flags:
                return 0
            if "l" in flags:
                io.out(label + "\n")
                break
            if "c" not in flags:
                prefix = (label + ":" if show_names else "") + (f"{number}:" if "n" in flags else "")
                io.out(_encode(prefix) + line + b"\n")
        if "c" in flags:
            io.out((label + ":" if show_names else "") + f"{count}\n")
    if failed and not ("q" in flags and matched):
        return 2
    return 0 if matched else 1


def _mode_string(st: os.stat_result) -> str:
    kind = "d" if stat.S_ISDIR(st.st_mode) else "l" if stat.S_ISLNK(st.st_mode) else "-"
    bits = "".join(
        ch if st.st_mode & mask else "-"
        for ch, mask in zip("rwxrwxrwx", (0o400, 0o200, 0o100, 0o40, 0o20, 0o10, 0o4, 0o2, 0o1))
    )
    return kind + bits


@_applet("ls")
def _ls(shell: Shell, argv: list[str], io: ShellIO) -> int:
    parsed = _flags(argv, "laAd1FhnsRt", io, "ls")
    if parsed is None:
        return 1
    flags, operands = parsed
    fs = shell.fs

    def line(name: str, device_path: str) -> str:
        if "l" not in flags and "n" not in flags:
            return name
        st = fs.lstat(device_path)
        owner = "shell" if fs.is_writable(device_path) else "root"
        if "n" in flags:
            owner = "2000" if owner == "shell" else "0"
        when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(st.st_mtime))
        return f"{_mode_string(st)} {st.st_nlink:>2} {owner:<5} {owner:<5} {st.st_size:>8} {when} {name}"

    status, files, folders = 0, list[str](), list[str]()
    for operand in operands or ["."]:
        try:
            st = fs.lstat(operand, shell.cwd)
        except OSError as exc:
            _error(io, "ls", operand, exc)
            status = 1
            continue
        (folders if stat.S_ISDIR(st.st_mode) and "d" not in flags else files).append(operand)
    out = [line(name, shell.path(name)) for name in sorted(files)]
    for index, folder in enumerate(sorted(folders)):
        device_folder = shell.path(folder)
        try:
            names = fs.listdir(device_folder)
        except OSError as exc:
            _error(io, "ls", folder, exc)
            status = 1
            continue
        if "a" in flags:
            names = [".", ".."] + names
        elif "A" not in flags:
            names = [n for n in names if not n.startswith(".")]
        if len(operands) > 1 or files:
            if out or index:
                out.append("")
            out.append(f"{folder}:")
        if "l" in flags or "n" in flags:
            out.append(f"total {len(names) * 4}")
        for name in names:
            device_path = fs.normalize(posixpath.join(device_folder, name))
            try:
                out.append(line(name, device_path))
            except OSError:
                out.append(name)
    if out:
        io.out("\n".join(out) + "\n")
    return status


def _writable(shell: Shell, path: str, io: ShellIO, name: str) -> bool:
    try:
        shell.fs.check_writable(path, shell.cwd)
    except OSError as exc:
        io.err(f"{name}: {path}: {exc.strerror}\n")
        return False
    return True


@_applet("mkdir")
def _mkdir(shell: Shell, argv: list[str], io: ShellIO) -> int:
    args, parents, mode = argv[1:], False, 0o771
    paths = []
    while args:
        arg = args.pop(0)
        if arg == "-m" and args:
            mode = _parse_mode(args.pop(0), 0o777) or mode
        elif arg.startswith("-") and len(arg) > 1:
            if set(arg[1:]) - {"p", "v"}:
                io.err(f"mkdir: Unknown option '{arg[1:]}'\n")
                return 1
            parents = parents or "p" in arg
        else:
            paths.append(arg)
    if not paths:
        io.err("mkdir: Needs 1 argument\n")
        return 1
    status = 0
    for path in paths:
        if parents and shell.fs.is_dir(path, shell.cwd):
            continue
        try:
            shell.fs.check_writable(path, shell.cwd)
            shell.fs.mkdir(path, shell.cwd, parents=parents, mode=mode)
        except OSError as exc:
            io.err(f"mkdir: '{path}': {exc.strerror}\n")
            status = 1
    return status


@_applet("rm")
def _rm(shell: Shell, argv: list[str], io: ShellIO) -> int:
    parsed = _flags(argv, "rRfiv", io, "rm")
    if parsed is None:
        return 1
    flags, paths = parsed
    force, recursive = "f" in flags, bool({"r", "R"} & flags)
    if not paths and not force:
        io.err("rm: Needs 1 argument\n")
        return 1
    status = 0
    for path in paths:
        device_path = shell.path(path)
        if not shell.fs.exists(device_path):
            if not force:
                io.err(f"rm: {path}: No such file or directory\n")
                status = 1
            continue
        try:
            shell.fs.check_writable(device_path)
            if device_path in shell.fs.writable:  # the folder itself belongs to the system
                if not recursive:
                    raise device_error(errno.EISDIR, device_path)
                for name in shell.fs.listdir(device_path):
                    shell.fs.remove(posixpath.join(device_path, name), recursive=True)
                raise device_error(errno.EACCES, device_path)
            shell.fs.remove(device_path, recursive=recursive)
        except OSError as exc:
            io.err(f"rm: {path}: {exc.strerror}\n")
            status = 1
    return status


@_applet("rmdir")
def _rmdir(shell: Shell, argv: list[str], io: ShellIO) -> int:
    status = 0
    for path in argv[1:]:
        try:
            shell.fs.check_writable(path, shell.cwd)
            if shell.path(path) in shell.fs.writable:
                raise device_error(errno.EACCES, shell.path(path))
            shell.fs.rmdir(path, shell.cwd)
        except OSError as exc:
            _error(io, "rmdir", path, exc)
            status = 1
    return status


@_applet("touch")
def _touch(shell: Shell, argv: list[str], io: ShellIO) -> int:
    status = 0
    for path in [a for a in argv[1:] if not a.startswith("-")]:
        try:
            shell.fs.check_writable(path, shell.cwd)
            if shell.fs.exists(path, shell.cwd):
                shell.fs.utime(path, time.time(), shell.cwd)
            else:
                shell.fs.open_write(path, shell.cwd).close()
        except OSError as exc:
            _error(io, "touch", path, exc)
            status = 1
    return status


def _parse_mode(text: str, current: int) -> int | None:
    """An octal or symbolic (``u+x,go-w``, ``+x``, ``a=rw``) chmod mode applied to ``current``."""
    if re.fullmatch(r"[0-7]{1,4}", text):
        return int(text, 8)
    mode = current
    for clause in text.split(","):
        match = re.fullmatch(r"([ugoa]*)([-+=])([rwxXst]*)", clause)
        if not match:
            return None
        who, op, perms = match.groups()
        who = who or "a"
        mask = 0
        for w in who:
            for p in perms:
                shift = {"u": 6, "g": 3, "o": 0}
                targets = "ugo" if w == "a" else w
                for t in targets:
                    if p in "rwxX":
                        mask |= {"r": 4, "w": 2, "x": 1, "X": 1}[p] << shift[t]
        if op == "+":
            mode |= mask
        elif op == "-":
            mode &= ~mask
        else:
            clear = 0
            for w in ("ugo" if who == "a" else who):
                clear |= 0o7 << {"u": 6, "g": 3, "o": 0}[w]
            mode = (mode & ~clear) | mask
    return mode


@_applet("chmod")
def _chmod(shell: Shell, argv: list[str], io: ShellIO) -> int:
    args = [a for a in argv[1:] if a not in ("-R", "-v", "-f")]
    recursive = "-R" in argv[1:]
    if len(args) < 2:
        io.err("chmod: Needs 2 arguments\n")
        return 1
    text, paths = args[0], args[1:]
    status = 0
    for path in paths:
        targets = [shell.path(path)]
        if recursive and shell.fs.is_dir(path, shell.cwd):
            targets += [shell.fs.normalize(p, targets[0]) for p in _walk(shell.fs, targets[0])]
        for target in targets:
            try:
                st = shell.fs.lstat(target)
                mode = _parse_mode(text, stat.S_IMODE(st.st_mode))
                if mode is None:
                    io.err(f"chmod: bad mode '{text}'\n")
                    return 1
                shell.fs.check_writable(target)
                shell.fs.chmod(target, mode)
            except OSError as exc:
                _error(io, "chmod", path, exc)
                status = 1
    return status


def _walk(fs: Sandbox, folder: str) -> list[str]:
    out = []
    for name in fs.listdir(folder):
        path = posixpath.join(folder, name)
        out.append(path)
        if fs.is_dir(path):
            out.extend(_walk(fs, path))
    return out


def _copy(shell: Shell, source: str, target: str, recursive: bool) -> None:
    fs = shell.fs
    if fs.is_dir(source):
        if not recursive:
            raise device_error(errno.EISDIR, source)
        if not fs.exists(target):
            fs.mkdir(target, mode=0o771)
        for name in fs.listdir(source):
            _copy(shell, posixpath.join(source, name), posixpath.join(target, name), recursive)
        return
    data = fs.read_bytes(source)
    mode = stat.S_IMODE(fs.lstat(source).st_mode)
    with fs.open_write(target) as handle:
        handle.write(data)
    fs.chmod(target, mode)


def _copy_or_move(shell: Shell, argv: list[str], io: ShellIO, move: bool) -> int:
    name = argv[0]
    flags = {ch for a in argv[1:] if a.startswith("-") for ch in a[1:]}
    paths = [a for a in argv[1:] if not a.startswith("-")]
    if len(paths) < 2:
        io.err(f"{name}: Needs 2 arguments\n")
        return 1
    *sources, dest = paths
    dest_path = shell.path(dest)
    into = shell.fs.is_dir(dest_path)
    if len(sources) > 1 and not into:
        io.err(f"{name}: '{dest}' not directory\n")
        return 1
    status = 0
    for source in sources:
        source_path = shell.path(source)
        target = posixpath.join(dest_path, posixpath.basename(source_path)) if into else dest_path
        try:
            if not shell.fs.exists(source_path):
                raise device_error(errno.ENOENT, source)
            shell.fs.check_writable(target)
            if move:
                shell.fs.check_writable(source_path)
                shell.fs.rename(source_path, target)
            else:
                _copy(shell, source_path, target, recursive=bool({"r", "R", "a"} & flags))
        except OSError as exc:
            io.err(f"{name}: {exc.filename or source}: {exc.strerror}\n")
            status = 1
    return status


APPLETS["cp"] = lambda shell, argv, io: _copy_or_move(shell, argv, io, move=False)
APPLETS["mv"] = lambda shell, argv, io: _copy_or_move(shell, argv, io, move=True)


@_applet("getprop")
def _getprop(shell: Shell, argv: list[str], io: ShellIO) -> int:
    props = shell.device.properties()
    if len(argv) == 1:
        io.out("".join(f"[{k}]: [{v}]\n" for k, v in sorted(props.items())))
        return 0
    io.out(props.get(argv[1], argv[2] if len(argv) > 2 else "") + "\n")
    return 0


@_applet("taskset")
def _taskset(shell: Shell, argv: list[str], io: ShellIO) -> int:
    args = argv[1:]
    pid_mode = False
    while args and args[0].startswith("-"):
        opt = args.pop(0)
        if set(opt[1:]) - {"p", "a"}:
            io.err(f"taskset: Unknown option '{opt[1:]}'\n")
            return 1
        pid_mode = pid_mode or "p" in opt
    if not args or (not pid_mode and len(args) < 2):
        io.err("usage: taskset [-ap] [mask] [PID | cmd [args...]]\n")
        return 1
    text = args[0][2:] if args[0].lower().startswith("0x") else args[0]
    try:
        mask = int(text, 16)
    except ValueError:
        io.err(f"taskset: bad mask '{args[0]}'\n")
        return 1
    valid = mask & ((1 << shell.device.profile.cpu_count) - 1)
    if pid_mode:
        if len(args) == 1:
            io.err(f"taskset: {args[0]}: No such process\n")
            return 1
        io.err(f"taskset: {args[1]}: No such process\n")
        return 1
    if not valid:
        io.err("taskset: sched_setaffinity: Invalid argument\n")
        return 1
    return shell.execute(args[1:], io, via="taskset")


@_applet("sleep")
def _sleep(shell: Shell, argv: list[str], io: ShellIO) -> int:
    total = 0.0
    for arg in argv[1:] or ["x"]:
        match = re.fullmatch(r"(\d*\.?\d+)([smhd]?)", arg)
        if not match:
            io.err(f"sleep: Not a number '{arg}'\n" if argv[1:] else "sleep: Needs 1 argument\n")
            return 1
        total += float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
    return 0 if shell.sleep(total) else 130


@_applet("pkill")
def _pkill(shell: Shell, argv: list[str], io: ShellIO) -> int:
    return 1  # no process of the shell user matches: nothing runs on this device between commands


@_applet("uname")
def _uname(shell: Shell, argv: list[str], io: ShellIO) -> int:
    parsed = _flags(argv, "asnrvmpio", io, "uname")
    if parsed is None:
        return 1
    flags = parsed[0] or {"s"}
    fields = [
        ("s", "Linux"), ("n", "localhost"), ("r", "4.19.0-latprof-loopback"),
        ("v", "#1 SMP PREEMPT Mon Jan 2 00:00:00 UTC 2023"), ("m", shell.device.profile.machine), ("o", "Toybox"),
    ]
    io.out(" ".join(value for key, value in fields if key in flags or "a" in flags) + "\n")
    return 0


@_applet("id")
def _id(shell: Shell, argv: list[str], io: ShellIO) -> int:
    if "-u" in argv:
        io.out("2000\n")
    elif "-un" in argv or "-nu" in argv:
        io.out("shell\n")
    else:
        io.out(_ID + "\n")
    return 0


@_applet("whoami")
def _whoami(shell: Shell, argv: list[str], io: ShellIO) -> int:
    io.out("shell\n")
    return 0


@_applet("date")
def _date(shell: Shell, argv: list[str], io: ShellIO) -> int:
    fmt = next((a[1:] for a in argv[1:] if a.startswith("+")), "%a %b %e %H:%M:%S UTC %Y")
    io.out(time.strftime(fmt, time.gmtime()) + "\n")
    return 0


@_applet("nproc")
def _nproc(shell: Shell, argv: list[str], io: ShellIO) -> int:
    io.out(f"{shell.device.profile.cpu_count}\n")
    return 0


@_applet("env")
def _env(shell: Shell, argv: list[str], io: ShellIO) -> int:
    if len(argv) > 1:
        return shell.execute(argv[1:], io, via="env")
    io.out("".join(f"{k}={v}\n" for k, v in sorted(shell.vars.items())))
    return 0


@_applet("which")
def _which(shell: Shell, argv: list[str], io: ShellIO) -> int:
    status = 0
    for name in argv[1:]:
        found = shell.which(name) if "/" not in name else (name if shell.fs.is_file(name, shell.cwd) else None)
        if found:
            io.out(found + "\n")
        else:
            status = 1
    return status

