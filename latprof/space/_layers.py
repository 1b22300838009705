"""Layer configurations: the unit a latency lookup table is keyed on.

An architecture expands into a list of :class:`LayerConfig`, in run order: the
stem conv, every layer of every block, the head 1x1 conv and the classifier
(global average pooling, fully connected, softmax).

The lookup-table key (:meth:`LayerConfig.layer_key`) is canonical: every
field is always written, in a fixed order, and fields that cannot change the
computed graph are normalised before the key is made (an identity skip that
cannot apply becomes ``none``; ``cn``/``ds``/``fc`` layers have expansion 1)::

    {op}_k{kernel}_s{stride}_e{expansion}_i{in}_o{out}_se{se_ratio:g}_{skip}_{act}_r{resolution}[_g{groups}]

e.g. ``ir_k3_s2_e6_i16_o24_se0_none_relu_r112`` (``resolution`` is the input
height = width of the layer; ``_g{groups}`` only for an ``ir`` layer whose 1x1
convs are grouped, with a channel shuffle after the first, as in FBNet). Two
layers with equal keys compile to the same TFLite operators with the same shapes.

Ops: ``cn`` (conv), ``ds`` (depthwise-separable), ``ir`` (inverted residual),
``fc`` (classifier), and the cell-space pieces of NAS-Bench-201: ``relu`` (a
ReLU that no conv absorbs), ``pool`` (3x3 average pooling, stride 1), ``add``
(one binary addition of two feature maps), ``res`` (the ResNet basic reduction
block: ReLU -> 3x3 conv with the stride -> ReLU -> 3x3 conv, plus a 2x2
average-pool + 1x1 conv shortcut, added) and ``bnrelu`` (a BatchNorm + ReLU
that follows no conv: the converter folds the shift upstream and leaves a
per-channel MUL with the ReLU fused).

Counting convention (:meth:`LayerConfig.params`, :meth:`LayerConfig.macs`):
parameters after BatchNorm folding, i.e. conv/FC weights plus one bias per
output channel (exactly the constant tensors of the converted .tflite);
multiply-adds of convolutions and fully connected layers (including the SE
FCs), not of element-wise ops, pooling or biases -- the papers' convention.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from latprof.errors import ArchitectureError
from latprof.space._arch import Architecture, BlockSpec
from latprof.space._ops import layer_operators

LAYER_OPS = ("cn", "ds", "ir", "fc", "relu", "pool", "add", "res", "bnrelu")
# Ops whose every field but the channels and resolution is fixed (value: the kernel).
_PLAIN_OPS = {"relu": 1, "add": 1, "bnrelu": 1, "pool": 3}
# Fields an op fixes, besides no SE, no skip and no activation.
_FIXED_FIELDS = {"fc": {"kernel": 1, "stride": 1}, "res": {"kernel": 3},
                 **{op: {"kernel": kernel, "stride": 1} for op, kernel in _PLAIN_OPS.items()}}
_KEY = re.compile(
    r"^(?P<op>[a-z]+)_k(?P<k>\d+)_s(?P<s>\d+)_e(?P<e>\d+)_i(?P<i>\d+)_o(?P<o>\d+)_se(?P<se>[0-9.e+-]+)"
    r"_(?P<skip>id|pool|none)_(?P<act>relu|relu6|none)_r(?P<r>\d+)(?:_g(?P<g>\d+))?$"
)


def _out_size(size: int, stride: int) -> int:
    return -(-size // stride)  # 'same' padding


@dataclass(frozen=True)
class LayerConfig:
    """One layer of a network, with everything that determines its latency."""

    op: str  # one of LAYER_OPS (fc: global average pool + fully connected + softmax)
    kernel: int
    stride: int
    expansion: int
    se_ratio: float
    skip: str  # effective skip: "id" | "pool" | "none"
    in_channels: int
    out_channels: int
    resolution: int  # input height = width
    activation: str  # "relu" | "relu6" | "none"
    groups: int = 1  # "ir" only: groups of both 1x1 convs; > 1 adds a channel shuffle after the first

    def __post_init__(self) -> None:
        if self.op not in LAYER_OPS:
            raise ArchitectureError(f"unknown layer op {self.op!r}; allowed: {', '.join(LAYER_OPS)}")
        # Canonical form: drop what cannot change the graph.
        if self.op != "ir":
            object.__setattr__(self, "expansion", 1)
            object.__setattr__(self, "groups", 1)
        if self.groups != 1 and (self.mid_channels % self.groups or self.out_channels % self.groups):
            raise ArchitectureError(f"groups {self.groups} do not divide the layer's channels "
                                    f"{self.mid_channels} and {self.out_channels}; choose divisible channels")
        if self.op in _FIXED_FIELDS:
            fixed = {"se_ratio": 0.0, "skip": "none", "activation": "none", **_FIXED_FIELDS[self.op]}
            for name, value in fixed.items():
                object.__setattr__(self, name, value)
        if self.op in _PLAIN_OPS and self.in_channels != self.out_channels:
            raise ArchitectureError(f"a {self.op!r} layer keeps its channels; got {self.in_channels} -> "
                                    f"{self.out_channels}")
        object.__setattr__(self, "se_ratio", float(self.se_ratio))
        if self.skip == "id" and not (self.stride == 1 and self.in_channels == self.out_channels):
            object.__setattr__(self, "skip", "none")

    # ----------------------------------------------------------- derived

    def layer_key(self) -> str:
        """The canonical lookup-table key (see the module docstring)."""
        return (
            f"{self.op}_k{self.kernel}_s{self.stride}_e{self.expansion}_i{self.in_channels}"
            f"_o{self.out_channels}_se{format(self.se_ratio, 'g')}_{self.skip}_{self.activation}"
            f"_r{self.resolution}" + (f"_g{self.groups}" if self.groups != 1 else "")
        )

    @classmethod
    def from_key(cls, key: str) -> "LayerConfig":
        """Inverse of :meth:`layer_key`."""
        m = _KEY.match(key)
        if not m:
            raise ArchitectureError(
                f"{key!r} is not a layer key; expected "
                f"'{{op}}_k{{kernel}}_s{{stride}}_e{{expansion}}_i{{in}}_o{{out}}_se{{ratio}}_{{skip}}_{{act}}_r{{res}}"
                f"[_g{{groups}}]'"
            )
        g = m.groupdict()
        layer = cls(g["op"], int(g["k"]), int(g["s"]), int(g["e"]), float(g["se"]), g["skip"], int(g["i"]),
                    int(g["o"]), int(g["r"]), g["act"], int(g["g"] or 1))
        if layer.layer_key() != key:
            raise ArchitectureError(f"{key!r} is not canonical; the canonical key is {layer.layer_key()!r}")
        return layer

    @property
    def out_resolution(self) -> int:
        return 1 if self.op == "fc" else _out_size(self.resolution, self.stride)

    @property
    def is_cell_piece(self) -> bool:
        """Whether this is one of the NAS-Bench-201 pieces (relu, pool, add, res, bnrelu)."""
        return self.op in _CELL_OPS

    @property
    def mid_channels(self) -> int:
        """Channels of the depthwise/SE stage: in*expansion for ir, in for ds, out for cn."""
        return {"ir": self.in_channels * self.expansion, "ds": self.in_channels}.get(self.op, self.out_channels)

    @property
    def se_channels(self) -> int:
        """SE bottleneck width: ``max(1, int(in_channels * se_ratio))``, as in the MnasNet reference code."""
        return max(1, int(self.in_channels * self.se_ratio)) if self.se_ratio > 0 else 0

    @property
    def has_projection_shortcut(self) -> bool:
        return self.skip == "pool" and self.in_channels != self.out_channels

    def tflite_ops(self) -> tuple[str, ...]:
        """The TFLite builtin operators this layer becomes after conversion, in run order
        (the kinds of :func:`latprof.space.layer_operators`; checked against converted models in
        tests/test_space_build.py)."""
        return tuple(op.kind for op in layer_operators(self))

    def params(self) -> int:
        """Parameters after BN folding (weights + one bias per output channel)."""
        return sum(p for p, _ in self._parts())

    def macs(self) -> int:
        """Multiply-adds of convolutions and fully connected layers."""
        return sum(m for _, m in self._parts())

    def _parts(self) -> list[tuple[int, int]]:
        """(params, macs) per weighted operator."""
        cin, cout, k = self.in_channels, self.out_channels, self.kernel
        hw_in = self.resolution * self.resolution
        hw_out = self.out_resolution * self.out_resolution
        if self.op == "fc":
            return [(cin * cout + cout, cin * cout)]
        if self.op == "res":
            return [(9 * cin * cout + cout, hw_out * 9 * cin * cout), (9 * cout * cout + cout, hw_out * 9 * cout * cout),
                    (cin * cout + cout, hw_out * cin * cout)]
        if self.op == "bnrelu":
            return [(cout, 0)]
        if self.op in _PLAIN_OPS:
            return []
        parts = []
        mid = self.mid_channels
        if self.op == "cn":
            parts.append((k * k * cin * cout + cout, hw_out * k * k * cin * cout))
        else:
            if self.op == "ir":
                parts.append((cin * mid // self.groups + mid, hw_in * cin * mid // self.groups))
            parts.append((k * k * mid + mid, hw_out * k * k * mid))
        if self.se_ratio > 0:
            r = self.se_channels
            parts += [(mid * r + r, mid * r), (r * mid + mid, r * mid)]
        if self.op in ("ds", "ir"):
            parts.append((mid * cout // self.groups + cout, hw_out * mid * cout // self.groups))
        if self.has_projection_shortcut:
            parts.append((cin * cout + cout, hw_out * cin * cout))
        return parts

    def describe(self) -> str:
        """A short human-readable description, e.g. ``ir e6 k3 s2 SE0.25 16->24 @112``."""
        if self.op == "fc":
            return f"pool+fc {self.in_channels}->{self.out_channels} @{self.resolution}"
        if self.op in _CELL_OPS:
            what = {"relu": "relu", "pool": "avgpool k3", "add": "add",
                    "res": f"resblock s{self.stride}", "bnrelu": "bn+relu"}[self.op]
            return f"{what} {self.in_channels}->{self.out_channels} @{self.resolution}"
        bits = [self.op + (f" e{self.expansion}" if self.op == "ir" else ""), f"k{self.kernel}", f"s{self.stride}"]
        if self.groups > 1:
            bits.append(f"g{self.groups}+shuffle")
        if self.se_ratio:
            bits.append(f"se{format(self.se_ratio, 'g')}")
        if self.skip != "none":
            bits.append(f"skip={self.skip}")
        return f"{' '.join(bits)} {self.in_channels}->{self.out_channels} @{self.resolution}"


_CELL_OPS = frozenset({"relu", "pool", "add", "res", "bnrelu"})


def arch_layers(arch: Architecture) -> list[LayerConfig]:
    """Stem, every block layer, head conv and classifier of ``arch``, in run order."""
    return [layer for _, layer in named_layers(arch)]


def named_layers(arch: Architecture) -> list[tuple[str, LayerConfig]]:
    """Like :func:`arch_layers`, each with a position name: ``stem``, ``b3.2``, ``head``, ``classifier``."""
    act = arch.activation
    res = arch.resolution
    out = [("stem", LayerConfig("cn", 3, arch.stem_stride, 1, 0.0, "none", 3, arch.stem_filters, res, act))]
    res = _out_size(res, arch.stem_stride)
    for n, b in enumerate(arch.blocks, 1):
        out += block_layers(n, b, res, act)
        res = out[-1][1].out_resolution
    out += head_layers(arch.blocks[-1].out_filters, arch.head_filters, arch.num_classes, res, act)
    return out


def block_layers(n: int, b: BlockSpec, resolution: int, activation: str) -> list[tuple[str, LayerConfig]]:
    """The named layers ``b{n}.1``, ``b{n}.2``, ... of block ``b`` (the ``n``-th) at input ``resolution``."""
    out = []
    for j in range(b.repeats):
        first = j == 0
        layer = LayerConfig(
            op=b.op, kernel=b.kernel, stride=b.stride if first else 1, expansion=b.expansion,
            se_ratio=b.se_ratio, skip=b.skip, in_channels=b.in_filters if first else b.out_filters,
            out_channels=b.out_filters, resolution=resolution, activation=activation, groups=b.groups,
        )
        out.append((f"b{n}.{j + 1}", layer))
        resolution = layer.out_resolution
    return out


def head_layers(in_filters: int, head_filters: int, num_classes: int, resolution: int,
                activation: str) -> list[tuple[str, LayerConfig]]:
    """The named ``head`` 1x1 conv and ``classifier`` after the last block."""
    return [("head", LayerConfig("cn", 1, 1, 1, 0.0, "none", in_filters, head_filters, resolution, activation)),
            ("classifier", LayerConfig("fc", 1, 1, 1, 0.0, "none", head_filters, num_classes, resolution, "none"))]


def count_params_macs(arch: Architecture) -> tuple[int, int]:
    """(parameters, multiply-adds) of ``arch`` without building it (see the module's counting convention)."""
    params = macs = 0
    for layer in arch_layers(arch):
        params += layer.params()
        macs += layer.macs()
    return params, macs
