"""The MnasNet factorized hierarchical search space (Tan et al., CVPR 2019, section 4.1).

A fixed stem (3x3 conv, stride 2, 32 filters x depth multiplier) and head
(1x1 conv to 1280, global average pooling, classifier), and 7 blocks whose
strides, reference filters and reference layer counts are MobileNetV2's seven
bottleneck stages. Each block chooses, independently:

* ConvOp: ``cn`` regular conv, ``ds`` depthwise separable conv,
  ``ir3``/``ir6`` mobile inverted bottleneck with expansion 3 / 6;
* kernel 3 or 5; SE ratio 0 or 0.25;
* skip: ``pool`` (3x3 average-pooling shortcut, 1x1 projection if the filters
  change), ``id`` (identity residual where stride is 1 and filters are
  unchanged, otherwise nothing), ``none``;
* output filters 0.75, 1.0 or 1.25 x the reference, times the depth multiplier,
  rounded to a multiple of 4 (the MnasNet/MobileNetV2 rounding rule with
  divisor 4, so that all three choices stay distinct at multiplier 1.0);
* layers: reference + {-1, 0, +1}, at least 1 (the two one-layer stages
  choose between 1 and 2 layers; the paper's "-1" would delete them).

Every layer of a block repeats its choice; the first has the block's stride.
Activation is ReLU. Tokens: six per block, in the order op, kernel, se, skip,
filters, layers.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from functools import cached_property, partial
from typing import Any, Sequence

from latprof.errors import ArchitectureError
from latprof.space._arch import Architecture, BlockSpec, format_arch, round_filters
from latprof.space._base import Decision, SearchSpace, TokenSlot, register_space
from latprof.space._layers import LayerConfig, _out_size, arch_layers, block_layers, head_layers, named_layers
from latprof.space._references import parse_arch

# MobileNetV2's seven bottleneck stages: (reference output filters, reference layers, stride).
MOBILENET_V2_STAGES = ((16, 1, 1), (24, 2, 2), (32, 3, 2), (64, 4, 2), (96, 3, 1), (160, 3, 2), (320, 1, 1))

CONV_OPS = ("cn", "ds", "ir3", "ir6")
KERNEL_CHOICES = (3, 5)
SE_CHOICES = (0.0, 0.25)
SKIP_CHOICES = ("pool", "id", "none")
FILTER_MULTIPLIERS = (0.75, 1.0, 1.25)
LAYER_DELTAS = (-1, 0, 1)
FIELDS = ("op", "kernel", "se", "skip", "filters", "layers")
FILTER_DIVISOR = 4


def _op_of(conv_op: str) -> tuple[str, int]:
    return ("ir", int(conv_op[2:])) if conv_op.startswith("ir") else (conv_op, 1)


@dataclass(frozen=True)
class _Block:
    ref_filters: int
    ref_layers: int
    stride: int
    filters: tuple[int, ...]  # concrete output filters, one per FILTER_MULTIPLIERS entry
    layers: tuple[int, ...]


class MnasNetSpace(SearchSpace[Architecture]):
    """The MnasNet search space at a given depth multiplier and input resolution."""

    name = "mnasnet"

    def __init__(self, depth_multiplier: float = 1.0, resolution: int = 224) -> None:
        if not isinstance(depth_multiplier, (int, float)) or not 0 < depth_multiplier <= 4:
            raise ArchitectureError(f"depth multiplier {depth_multiplier!r} is out of range; allowed: 0 < m <= 4")
        if not isinstance(resolution, int) or not 32 <= resolution <= 2048:
            raise ArchitectureError(f"resolution {resolution!r} is out of range; allowed: 32..2048")
        self.depth_multiplier = float(depth_multiplier)
        self.resolution = resolution
        self.stem_filters = round_filters(32, self.depth_multiplier) if self.depth_multiplier != 1 else 32
        self.head_filters = 1280
        self.num_classes = 1000
        self.activation = "relu"
        blocks = []
        for ref, n, stride in MOBILENET_V2_STAGES:
            filters = tuple(round_filters(ref * f, self.depth_multiplier, FILTER_DIVISOR) for f in FILTER_MULTIPLIERS)
            layers = tuple(sorted({max(1, n + d) for d in LAYER_DELTAS}))
            blocks.append(_Block(ref, n, stride, filters, layers))
        self.blocks = tuple(blocks)
        self._decisions = [
            Decision(f"b{i}.{fld}", choices)
            for i, b in enumerate(self.blocks, 1)
            for fld, choices in zip(FIELDS, (CONV_OPS, KERNEL_CHOICES, SE_CHOICES, SKIP_CHOICES, b.filters, b.layers))
        ]

    def __repr__(self) -> str:
        return f"MnasNetSpace(depth_multiplier={self.depth_multiplier:g}, resolution={self.resolution})"

    def params(self) -> dict[str, Any]:
        return {"depth_multiplier": self.depth_multiplier, "resolution": self.resolution}

    # ------------------------------------------------------------ tokens

    def decisions(self) -> list[Decision]:
        return list(self._decisions)

    def from_tokens(self, tokens: Sequence[int]) -> Architecture:
        tokens = self.check_tokens(tokens)
        specs = []
        prev = self.stem_filters
        for i, b in enumerate(self.blocks):
            t_op, t_k, t_se, t_skip, t_f, t_n = tokens[6 * i: 6 * i + 6]
            op, expansion = _op_of(CONV_OPS[t_op])
            out = b.filters[t_f]
            specs.append(BlockSpec(
                op=op, repeats=b.layers[t_n], kernel=KERNEL_CHOICES[t_k], stride=b.stride, in_filters=prev,
                out_filters=out, expansion=expansion, se_ratio=SE_CHOICES[t_se], skip=SKIP_CHOICES[t_skip],
            ))
            prev = out
            tokens[6 * i + 4] = b.filters.index(out)  # equal filter choices (small multipliers): as to_tokens
        return self._with_origin(self._arch(specs), tokens)

    def _arch(self, specs) -> Architecture:
        return Architecture(
            blocks=tuple(specs), resolution=self.resolution, stem_filters=self.stem_filters,
            head_filters=self.head_filters, num_classes=self.num_classes, activation=self.activation,
        )

    def to_tokens(self, arch: Architecture) -> list[int]:
        where = f"not in {self!r}"
        checks = (("resolution", arch.resolution, self.resolution, "res"),
                  ("stem filters", arch.stem_filters, self.stem_filters, "stem"),
                  ("head filters", arch.head_filters, self.head_filters, "head"),
                  ("number of classes", arch.num_classes, self.num_classes, "cls"),
                  ("activation", arch.activation, self.activation, "act"),
                  ("stem stride", arch.stem_stride, 2, "ss"))
        for what, got, want, fld in checks:
            if got != want:
                raise ArchitectureError(f"{where}: header {what} is {got}, the space has {want} (field '{fld}')")
        if len(arch.blocks) != len(self.blocks):
            raise ArchitectureError(f"{where}: the architecture has {len(arch.blocks)} blocks, the space has "
                                    f"{len(self.blocks)}")
        tokens: list[int] = []
        for n, (spec, b) in enumerate(zip(arch.blocks, self.blocks), 1):
            conv_op = spec.op if spec.op != "ir" else f"ir{spec.expansion}"

            def index(value, choices, what, fld):
                if value not in choices:
                    raise ArchitectureError(
                        f"{where}: block {n} ({spec.to_string()}): {what} {value} is not a choice of the space; "
                        f"allowed: {', '.join(str(c) for c in choices)} (field '{fld}')"
                    )
                return choices.index(value)

            if spec.stride != b.stride:
                raise ArchitectureError(f"{where}: block {n} ({spec.to_string()}): stride {spec.stride} is fixed "
                                        f"to {b.stride} in this space (field 's')")
            tokens += [
                index(conv_op, CONV_OPS, "conv op", "op"),
                index(spec.kernel, KERNEL_CHOICES, "kernel", "k"),
                index(float(spec.se_ratio), SE_CHOICES, "SE ratio", "se"),
                index(spec.skip, SKIP_CHOICES, "skip", "skip"),
                index(spec.out_filters, b.filters, "output filters", "o"),
                index(spec.repeats, b.layers, "layer count", "r"),
            ]
        return tokens

    # ------------------------------------------------------------ strings and layers

    def parse(self, text: str) -> Architecture:
        return parse_arch(text)

    def format(self, arch: Architecture) -> str:
        return format_arch(arch)

    def layers(self, arch: Architecture) -> list[LayerConfig]:
        return arch_layers(arch)

    def named_layers(self, arch: Architecture) -> list[tuple[str, LayerConfig]]:
        return named_layers(arch)

    def token_slots(self) -> list[TokenSlot]:
        """Stem ``()``; block ``i``: (filters of block ``i - 1``, then op, kernel, se, skip, filters, layers of
        block ``i``); head ``(filters of block 7,)``; classifier ``()``."""
        base = named_layers(self.from_tokens([0] * len(self._decisions)))
        stem, classifier = base[0], base[-1]
        slots = [TokenSlot((), (), lambda values: [stem])]
        for i, res in enumerate(self._block_resolutions()):
            own = tuple(range(6 * i, 6 * i + 6))
            columns = own if i == 0 else (6 * i - 2,) + own  # 6i - 2: the previous block's filters
            sizes = tuple(len(self._decisions[c].choices) for c in columns)
            slots.append(TokenSlot(columns, sizes, partial(self._block_slot_layers, i, res)))
        last = self.blocks[-1]
        res = _out_size(self._block_resolutions()[-1], last.stride)

        def head(values: tuple[int, ...]) -> list[tuple[str, LayerConfig]]:
            return head_layers(last.filters[values[0]], self.head_filters, self.num_classes, res, self.activation)[:1]

        slots.append(TokenSlot((len(self._decisions) - 2,), (len(last.filters),), head))
        slots.append(TokenSlot((), (), lambda values: [classifier]))
        return slots

    def _block_slot_layers(self, i: int, resolution: int, values: tuple[int, ...]) -> list[tuple[str, LayerConfig]]:
        b = self.blocks[i]
        prev = self.stem_filters if i == 0 else self.blocks[i - 1].filters[values[0]]
        t_op, t_k, t_se, t_skip, t_f, t_n = values[-6:]
        op, expansion = _op_of(CONV_OPS[t_op])
        spec = BlockSpec(op=op, repeats=b.layers[t_n], kernel=KERNEL_CHOICES[t_k], stride=b.stride, in_filters=prev,
                         out_filters=b.filters[t_f], expansion=expansion, se_ratio=SE_CHOICES[t_se],
                         skip=SKIP_CHOICES[t_skip])
        return block_layers(i + 1, spec, resolution, self.activation)

    def tflite_bytes(self, arch: Architecture, seed: int = 0, dtype: str = "float32") -> bytes:
        from latprof.space._flatbuffer import arch_tflite_bytes

        return arch_tflite_bytes(arch, seed, dtype)

    def keras_model(self, arch: Architecture):
        from latprof.space._build import build_keras_model

        return build_keras_model(arch)

    # ------------------------------------------------------------ counting

    def _block_resolutions(self) -> list[int]:
        res = _out_size(self.resolution, 2)
        out = []
        for b in self.blocks:
            out.append(res)
            res = _out_size(res, b.stride)
        return out

    def _block_variants(self, index: int, in_filters: int):
        """Yield (out_filters, first-layer config, repeat-layer config, layers) for every choice of a block."""
        b = self.blocks[index]
        res = self._block_resolutions()[index]
        for conv_op in CONV_OPS:
            op, e = _op_of(conv_op)
            for k in KERNEL_CHOICES:
                for se in SE_CHOICES:
                    for skip in SKIP_CHOICES:
                        for out in dict.fromkeys(b.filters):
                            first = LayerConfig(op, k, b.stride, e, se, skip, in_filters, out, res, self.activation)
                            rest = LayerConfig(op, k, 1, e, se, skip, out, out, first.out_resolution,
                                               self.activation)
                            for n in b.layers:
                                yield out, first, rest, n

    @cached_property
    def _counts(self) -> tuple[int, list[LayerConfig]]:
        unique: dict[LayerConfig, None] = {}
        res = self.resolution
        unique[LayerConfig("cn", 3, 2, 1, 0.0, "none", 3, self.stem_filters, res, self.activation)] = None
        # ways[c]: number of distinct networks up to the current block that end with c filters.
        ways: dict[int, int] = {self.stem_filters: 1}
        for i in range(len(self.blocks)):
            new_ways: dict[int, int] = defaultdict(int)
            for cin, w in ways.items():
                distinct: dict[int, set] = defaultdict(set)
                for out, first, rest, n in self._block_variants(i, cin):
                    unique.setdefault(first, None)
                    if n > 1:
                        unique.setdefault(rest, None)
                    distinct[out].add((first, rest if n > 1 else None, n))
                for out, variants in distinct.items():
                    new_ways[out] += w * len(variants)
            ways = dict(new_ways)
        res_final = _out_size(self._block_resolutions()[-1], self.blocks[-1].stride)
        for c in ways:
            unique.setdefault(LayerConfig("cn", 1, 1, 1, 0.0, "none", c, self.head_filters, res_final,
                                          self.activation), None)
        unique.setdefault(LayerConfig("fc", 1, 1, 1, 0.0, "none", self.head_filters, self.num_classes, res_final,
                                      "none"), None)
        return sum(ways.values()), list(unique)

    def size(self) -> int:
        """Distinct architectures: token sequences that build different networks.

        Smaller than :meth:`num_combinations` because, e.g., an identity skip on a
        one-layer block that changes the filters builds the same network as no skip.
        """
        return self._counts[0]

    def unique_layer_configs(self) -> list[LayerConfig]:
        """Every distinct LayerConfig (stem, block layers, head, classifier), in network order."""
        return list(self._counts[1])

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d["blocks"] = [
            {"block": i, "stride": b.stride, "reference_filters": b.ref_filters, "reference_layers": b.ref_layers,
             "filters": list(b.filters), "layers": list(b.layers), "input_resolution": r}
            for i, (b, r) in enumerate(zip(self.blocks, self._block_resolutions()), 1)
        ]
        d["fixed"] = {"stem_filters": self.stem_filters, "head_filters": self.head_filters,
                      "num_classes": self.num_classes, "activation": self.activation}
        return d


register_space("mnasnet", MnasNetSpace)
