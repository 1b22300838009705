"""Architectures as immutable values, and their string and JSON forms.

An :class:`Architecture` is the whole network: input resolution, stem, a
sequence of :class:`BlockSpec` and the head. Filter counts are concrete (a
depth multiplier has already been applied), so the string form alone fully
determines the model that gets built.

String grammar (the ``:``-separated, ``_``-separated fields are in the spirit
of the MnasNet/EfficientNet reference block strings)::

    ARCH   := [HEADER ":"] BLOCK (":" BLOCK)*
    HEADER := "res" INT "_stem" INT ["_ss" INT] "_head" INT "_cls" INT "_" ACT
    ACT    := "relu" | "relu6"
    BLOCK  := OP "_r" INT "_k" INT "_s" INT ["_e" INT] "_i" INT "_o" INT ["_g" INT]
              ["_se" FLOAT] ["_noskip" | "_pool"]
    OP     := "cn"     regular KxK conv (K may be 1)
            | "ds"     depthwise separable conv (KxK depthwise, 1x1 projection)
            | "ir"     mobile inverted bottleneck (MBConv), needs "_e"; with e1 the 1x1
                       expansion conv is kept (FBNet's IRF block; MnasNet's e1 is "ds")

``r`` repeats (layers), ``k`` kernel, ``s`` stride of the first layer (the
reference ``s11``/``s22`` spelling is accepted too), ``e`` expansion, ``i``/``o``
input/output filters, ``g`` groups of an ``ir`` block's two 1x1 convs (absent: 1;
with ``g > 1`` a channel shuffle follows the expansion conv, as in FBNet and
ShuffleNet), ``se`` squeeze-and-excitation ratio (absent: no SE),
skip: absent = identity residual (applied where stride is 1 and input equals
output filters), ``noskip`` = none, ``pool`` = a 3x3 average-pooling shortcut
(with the block's stride, plus a 1x1 projection conv when filters change).
``ss`` is the stem conv's stride (absent: 2; ``ss1`` for 32x32 inputs as in
HW-NAS-Bench's CIFAR setting). Header fields may be omitted (defaults
``res224_stem32_head1280_cls1000_relu``);
:func:`format_arch` always writes the full, canonical form, and
``format_arch(parse_arch(s)) == s`` for every canonical ``s``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Iterable

from latprof.errors import ArchitectureError

OPS = ("cn", "ds", "ir")
OP_NAMES = {"cn": "regular conv", "ds": "depthwise separable conv", "ir": "mobile inverted bottleneck (MBConv)"}
SKIPS = ("id", "pool", "none")
ACTIVATIONS = ("relu", "relu6")
KERNELS = (3, 5, 7)
CONV_KERNELS = (1, 3, 5, 7)  # a 'cn' block may also be a 1x1 conv
STRIDES = (1, 2)
MAX_FILTERS = 8192
MAX_REPEATS = 16
MIN_RESOLUTION, MAX_RESOLUTION = 16, 2048
MAX_EXPANSION = 12

_DEFAULT_HEADER = {"res": 224, "stem": 32, "head": 1280, "cls": 1000, "act": "relu"}


@dataclass(frozen=True)
class BlockSpec:
    """One block: ``repeats`` identical layers, the first with ``stride`` and ``in_filters`` inputs."""

    op: str  # "cn" | "ds" | "ir"
    repeats: int
    kernel: int
    stride: int
    in_filters: int
    out_filters: int
    expansion: int = 1  # "ir": 1..12 (1 keeps the 1x1 expansion conv); always 1 otherwise
    se_ratio: float = 0.0  # 0 = no squeeze-and-excitation
    skip: str = "id"  # "id" | "pool" | "none"
    groups: int = 1  # groups of an "ir" block's two 1x1 convs (> 1: channel shuffle after the first)

    def to_string(self) -> str:
        parts = [self.op, f"r{self.repeats}", f"k{self.kernel}", f"s{self.stride}"]
        if self.op == "ir":
            parts.append(f"e{self.expansion}")
        parts += [f"i{self.in_filters}", f"o{self.out_filters}"]
        if self.groups != 1:
            parts.append(f"g{self.groups}")
        if self.se_ratio:
            parts.append(f"se{_fmt_float(self.se_ratio)}")
        if self.skip == "none":
            parts.append("noskip")
        elif self.skip == "pool":
            parts.append("pool")
        return "_".join(parts)

    def to_dict(self) -> dict[str, Any]:
        d = {
            "op": self.op, "repeats": self.repeats, "kernel": self.kernel, "stride": self.stride,
            "expansion": self.expansion, "in": self.in_filters, "out": self.out_filters,
            "se": self.se_ratio, "skip": self.skip,
        }
        if self.groups != 1:
            d["groups"] = self.groups
        return d


@dataclass(frozen=True)
class Architecture:
    """A whole network: stem conv (3x3, ``stem_stride``), ``blocks``, head 1x1 conv, pooling, classifier."""

    blocks: tuple[BlockSpec, ...]
    resolution: int = 224
    stem_filters: int = 32
    head_filters: int = 1280
    num_classes: int = 1000
    activation: str = "relu"
    name: str | None = field(default=None, compare=False, hash=False)  # display only, e.g. "mnasnet-a1"
    stem_stride: int = 2
    # Set by the space's from_tokens: (space key, token bytes), so that SearchSpace.encode need not call to_tokens.
    # Not an __init__ argument, so dataclasses.replace (a changed architecture) drops it.
    origin: tuple[str, bytes] | None = field(default=None, init=False, compare=False, hash=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "blocks", tuple(self.blocks))
        validate(self)

    def __str__(self) -> str:
        return format_arch(self)

    @property
    def num_layers(self) -> int:
        return sum(b.repeats for b in self.blocks)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "format": "latprof.arch/1",
            "resolution": self.resolution, "stem": self.stem_filters, "head": self.head_filters,
            "classes": self.num_classes, "activation": self.activation,
        }
        if self.stem_stride != 2:
            d["stem_stride"] = self.stem_stride
        d["blocks"] = [b.to_dict() for b in self.blocks]
        return d


def _fmt_float(x: float) -> str:
    """Shortest text that reads back as the same float ("0.25"), so strings round-trip exactly."""
    text = repr(float(x))
    return text[:-2] if text.endswith(".0") else text


# ---------------------------------------------------------------- validation


def _allowed(values: Iterable[Any]) -> str:
    return ", ".join(str(v) for v in values)


def _check_block(b: BlockSpec, where: str) -> None:
    def bad(fld: str, msg: str) -> ArchitectureError:
        return ArchitectureError(f"{where}: {msg} (field '{fld}')")

    if b.op not in OPS:
        raise bad("op", f"unknown op {b.op!r}; allowed: {_allowed(OPS)}")
    _int_field(b.repeats, "r", "repeats", 1, MAX_REPEATS, bad)
    kernels = CONV_KERNELS if b.op == "cn" else KERNELS
    if b.kernel not in kernels or isinstance(b.kernel, bool):
        raise bad("k", f"kernel {b.kernel} is not allowed; allowed: {_allowed(kernels)}")
    if b.stride not in STRIDES or isinstance(b.stride, bool):
        raise bad("s", f"stride {b.stride} is not allowed; allowed: {_allowed(STRIDES)}")
    _int_field(b.in_filters, "i", "input filters", 1, MAX_FILTERS, bad)
    _int_field(b.out_filters, "o", "output filters", 1, MAX_FILTERS, bad)
    if b.op == "ir":
        _int_field(b.expansion, "e", "expansion", 1, MAX_EXPANSION, bad)
    elif b.expansion != 1:
        raise bad("e", f"expansion {b.expansion} given for a '{b.op}' block; only 'ir' blocks have an expansion")
    _int_field(b.groups, "g", "groups", 1, MAX_FILTERS, bad)
    if b.groups != 1:
        if b.op != "ir":
            raise bad("g", f"groups {b.groups} given for a '{b.op}' block; only 'ir' blocks have grouped convs")
        if (b.in_filters * b.expansion) % b.groups or b.out_filters % b.groups:
            raise bad("g", f"groups {b.groups} do not divide the expanded filters {b.in_filters * b.expansion} "
                           f"and output filters {b.out_filters}; choose filters divisible by the groups")
    if not isinstance(b.se_ratio, (int, float)) or isinstance(b.se_ratio, bool) or not 0 <= b.se_ratio <= 1:
        raise bad("se", f"squeeze-and-excitation ratio {b.se_ratio!r} is out of range; allowed: 0 < se <= 1")
    if b.skip not in SKIPS:
        raise bad("skip", f"unknown skip {b.skip!r}; allowed: {_allowed(SKIPS)}")


def _int_field(value, fld, what, lo, hi, bad, hint=""):
    if not isinstance(value, int) or isinstance(value, bool):
        raise bad(fld, f"{what} must be an integer, got {value!r}")
    if not lo <= value <= hi:
        raise bad(fld, f"{what} {value} is out of range; allowed: {lo}..{hi}{hint}")


def validate(arch: Architecture) -> None:
    """Raise ArchitectureError (naming the block and field) unless ``arch`` is well formed."""

    def bad(fld: str, msg: str) -> ArchitectureError:
        return ArchitectureError(f"header: {msg} (field '{fld}')")

    _int_field(arch.resolution, "res", "resolution", MIN_RESOLUTION, MAX_RESOLUTION, bad)
    _int_field(arch.stem_filters, "stem", "stem filters", 1, MAX_FILTERS, bad)
    if arch.stem_stride not in STRIDES or isinstance(arch.stem_stride, bool):
        raise bad("ss", f"stem stride {arch.stem_stride!r} is not allowed; allowed: {_allowed(STRIDES)}")
    _int_field(arch.head_filters, "head", "head filters", 1, MAX_FILTERS, bad)
    _int_field(arch.num_classes, "cls", "number of classes", 1, 100_000, bad)
    if arch.activation not in ACTIVATIONS:
        raise bad("act", f"unknown activation {arch.activation!r}; allowed: {_allowed(ACTIVATIONS)}")
    if not arch.blocks:
        raise ArchitectureError("an architecture needs at least one block")
    prev = arch.stem_filters
    for n, b in enumerate(arch.blocks, 1):
        if not isinstance(b, BlockSpec):
            raise ArchitectureError(f"block {n}: expected a BlockSpec, got {type(b).__name__}")
        where = f"block {n} ({b.to_string()})" if _safe(b) else f"block {n}"
        _check_block(b, where)
        if b.in_filters != prev:
            src = "the stem's" if n == 1 else f"block {n - 1}'s"
            raise ArchitectureError(
                f"{where}: input filters {b.in_filters} do not match {src} output filters {prev} (field 'i')"
            )
        prev = b.out_filters


def _safe(b: BlockSpec) -> bool:
    try:
        b.to_string()
        return True
    except Exception:  # noqa: BLE001 - only used to decorate a message
        return False


# ---------------------------------------------------------------- string form

_FIELD = re.compile(r"^([a-z]+?)(-?\d.*)$")
_BLOCK_KEYS = ("se", "r", "k", "s", "e", "i", "o", "g")  # "se" before "s" and "e"


def format_arch(arch: Architecture) -> str:
    """The canonical string form of ``arch`` (see the module docstring for the grammar)."""
    stem_stride = f"_ss{arch.stem_stride}" if arch.stem_stride != 2 else ""
    header = (
        f"res{arch.resolution}_stem{arch.stem_filters}{stem_stride}_head{arch.head_filters}"
        f"_cls{arch.num_classes}_{arch.activation}"
    )
    return ":".join([header] + [b.to_string() for b in arch.blocks])


def parse_arch_string(text: str) -> Architecture:
    """Parse the string form (not a reference name). Errors name the block and field."""
    if not isinstance(text, str) or not text.strip():
        raise ArchitectureError("empty architecture string; pass a reference name or a string like "
                                "'res224_stem32_head1280_cls1000_relu:ds_r1_k3_s1_i32_o16:...'")
    segments = [s.strip() for s in text.strip().split(":")]
    header = dict(_DEFAULT_HEADER)
    if segments[0].split("_", 1)[0] not in OPS:
        header.update(_parse_header(segments[0]))
        segments = segments[1:]
    if not segments:
        raise ArchitectureError("the architecture string has a header but no blocks; add ':'-separated blocks")
    blocks = []
    prev = header["stem"]
    for n, seg in enumerate(segments, 1):
        b = _parse_block(seg, n)
        blocks.append(b)
        where = f"block {n} ({seg})"
        if b.in_filters != prev:
            src = "the stem's" if n == 1 else f"block {n - 1}'s"
            raise ArchitectureError(
                f"{where}: input filters {b.in_filters} do not match {src} output filters {prev} (field 'i')"
            )
        prev = b.out_filters
    return Architecture(
        blocks=tuple(blocks), resolution=header["res"], stem_filters=header["stem"],
        head_filters=header["head"], num_classes=header["cls"], activation=header["act"],
        stem_stride=header.get("ss", 2),
    )


def _parse_int(value: str, where: str, fld: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ArchitectureError(f"{where}: {value!r} is not an integer (field '{fld}')") from None


def _parse_header(seg: str) -> dict[str, Any]:
    where = f"header ({seg})"
    out: dict[str, Any] = {}
    for tok in seg.split("_"):
        if tok in ACTIVATIONS:
            key, val = "act", tok
        else:
            m = _FIELD.match(tok)
            if not m or m.group(1) not in ("res", "stem", "ss", "head", "cls"):
                raise ArchitectureError(
                    f"{where}: unknown field {tok!r}; header fields: res<INT>, stem<INT>, ss<stem stride>, "
                    f"head<INT>, cls<INT>, and an activation ({_allowed(ACTIVATIONS)})"
                )
            key = m.group(1)
            val = _parse_int(m.group(2), where, key)
            if key in ("stem", "head", "cls") and val <= 0:
                raise ArchitectureError(f"{where}: {key} must be a positive integer, got {val} (field '{key}')")
        if key in out:
            raise ArchitectureError(f"{where}: field '{key}' given twice")
        out[key] = val
    return out


def _parse_block(seg: str, n: int) -> BlockSpec:
    where = f"block {n} ({seg})"
    toks = seg.split("_")
    op = toks[0]
    if op not in OPS:
        raise ArchitectureError(f"{where}: unknown op {op!r}; allowed: {_allowed(OPS)} "
                                f"({', '.join(f'{k} = {v}' for k, v in OP_NAMES.items())}) (field 'op')")
    vals: dict[str, Any] = {}
    for tok in toks[1:]:
        if tok in ("noskip", "pool"):
            key, val = "skip", ("none" if tok == "noskip" else "pool")
        else:
            key = next((k for k in _BLOCK_KEYS if tok.startswith(k) and len(tok) > len(k)), None)
            if key is None:
                raise ArchitectureError(
                    f"{where}: unknown field {tok!r}; block fields: r<repeats>, k<kernel>, s<stride>, "
                    f"e<expansion>, i<in filters>, o<out filters>, g<groups>, se<ratio>, noskip, pool"
                )
            raw = tok[len(key):]
            if key == "se":
                try:
                    val = float(raw)
                except ValueError:
                    raise ArchitectureError(f"{where}: {raw!r} is not a number (field 'se')") from None
                if not 0 < val <= 1:
                    raise ArchitectureError(
                        f"{where}: squeeze-and-excitation ratio {raw} is out of range; allowed: 0 < se <= 1 "
                        f"(field 'se')"
                    )
            elif key == "s" and len(raw) == 2 and raw.isdigit():
                if raw[0] != raw[1]:
                    raise ArchitectureError(f"{where}: non-square stride {raw} is not supported; "
                                            f"allowed: {_allowed(STRIDES)} (field 's')")
                val = int(raw[0])
            else:
                val = _parse_int(raw, where, key)
        if key in vals:
            raise ArchitectureError(f"{where}: field '{key}' given twice")
        vals[key] = val
    required = ["r", "k", "s", "i", "o"] + (["e"] if op == "ir" else [])
    missing = [k for k in required if k not in vals]
    if missing:
        raise ArchitectureError(f"{where}: missing field(s) {', '.join(repr(k) for k in missing)}; "
                                f"a '{op}' block needs {', '.join(required)}")
    if op != "ir" and "e" in vals and vals["e"] != 1:
        raise ArchitectureError(f"{where}: expansion e{vals['e']} given for a '{op}' block; "
                                f"only 'ir' blocks have an expansion (field 'e')")
    b = BlockSpec(
        op=op, repeats=vals["r"], kernel=vals["k"], stride=vals["s"], in_filters=vals["i"],
        out_filters=vals["o"], expansion=vals.get("e", 1) if op == "ir" else 1,
        se_ratio=vals.get("se", 0.0), skip=vals.get("skip", "id"), groups=vals.get("g", 1),
    )
    _check_block(b, where)
    return b


# ---------------------------------------------------------------- JSON form


def arch_to_json(arch: Architecture, indent: int | None = None) -> str:
    """The JSON form: ``{"format": "latprof.arch/1", "resolution": ..., "blocks": [...]}``."""
    return json.dumps(arch.to_dict(), indent=indent)


def arch_from_json(data: str | dict) -> Architecture:
    """Inverse of :func:`arch_to_json`; accepts the JSON text or the decoded dict."""
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except json.JSONDecodeError as exc:
            raise ArchitectureError(f"architecture JSON is not valid JSON: {exc.msg} at position {exc.pos}") from None
    if not isinstance(data, dict):
        raise ArchitectureError("architecture JSON must be an object with 'blocks'")
    fmt = data.get("format", "latprof.arch/1")
    if fmt != "latprof.arch/1":
        raise ArchitectureError(f"unsupported architecture JSON format {fmt!r}; expected 'latprof.arch/1'")
    known = {"format", "resolution", "stem", "stem_stride", "head", "classes", "activation", "blocks"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ArchitectureError(f"architecture JSON: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    if not isinstance(data.get("blocks"), list):
        raise ArchitectureError("architecture JSON needs a 'blocks' list")
    blocks = []
    bkeys = {"op", "repeats", "kernel", "stride", "expansion", "in", "out", "se", "skip", "groups"}
    for n, d in enumerate(data["blocks"], 1):
        if not isinstance(d, dict):
            raise ArchitectureError(f"block {n}: expected a JSON object")
        extra = sorted(set(d) - bkeys)
        if extra:
            raise ArchitectureError(f"block {n}: unknown key(s) {', '.join(extra)}; known: {', '.join(sorted(bkeys))}")
        missing = [k for k in ("op", "repeats", "kernel", "stride", "in", "out") if k not in d]
        if missing:
            raise ArchitectureError(f"block {n}: missing key(s) {', '.join(missing)}")
        blocks.append(BlockSpec(
            op=d["op"], repeats=d["repeats"], kernel=d["kernel"], stride=d["stride"],
            in_filters=d["in"], out_filters=d["out"], expansion=d.get("expansion", 1),
            se_ratio=d.get("se", 0.0),
            skip=d.get("skip", "id"), groups=d.get("groups", 1),
        ))
    return Architecture(
        blocks=tuple(blocks), resolution=data.get("resolution", 224), stem_filters=data.get("stem", 32),
        head_filters=data.get("head", 1280), num_classes=data.get("classes", 1000),
        activation=data.get("activation", "relu"), stem_stride=data.get("stem_stride", 2),
    )


def round_filters(filters: float, multiplier: float = 1.0, divisor: int = 8) -> int:
    """Scale ``filters`` by ``multiplier`` and round to a multiple of ``divisor`` (never more than 10% down).

    The rule of the MnasNet/MobileNetV2 reference code (``round_filters`` / ``_make_divisible``).
    """
    value = filters * multiplier
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return int(new)
