"""The FBNet search space (Wu et al., CVPR 2019), as benchmarked by HW-NAS-Bench and HELP.

22 searchable layers in seven stages of [1, 4, 4, 4, 4, 4, 1] layers with
[16, 24, 32, 64, 112, 184, 352] output filters; each layer is one of
``k3_e1, k3_e1_g2, k3_e3, k3_e6, k5_e1, k5_e1_g2, k5_e3, k5_e6, skip``. An
architecture's string form is the 22 op names joined by ``-``, exactly as in
HW-NAS-Bench's and HELP's FBNet data (``k5_e6-skip-k3_e1_g2-...``).

Network, from HW-NAS-Bench's PyTorch builder (GATECH-EIC/HW-NAS-Bench,
``hw_nas_bench_api/fbnet_models/model_infer.py``, class ``FBNet_Infer``):

* stem: 3x3 conv, 16 filters, BN, ReLU; stride 2 at 224 (ImageNet), 1 at 32
  (its "unofficial CIFAR-10/100 setting");
* stage strides: ``1, 2, 2, 2, 1, 2, 1`` at 224 (FBNet's), ``1, 1, 2, 2, 1, 2, 1``
  at 32; the first layer of a stage has the stride and takes the previous
  stage's filters;
* ``kK_eE[_g2]`` (``ConvBlock``, FBNet's IRF block): 1x1 conv to ``in * E``
  (grouped, ``g2``) + BN + ReLU, a channel shuffle if grouped, KxK depthwise
  with the stride + BN + ReLU, 1x1 conv (grouped) + BN; residual add when the
  stride is 1 and the filters are unchanged. ``E = 1`` keeps the first 1x1 conv;
* ``skip`` (``Skip``): identity when stride 1 and filters unchanged, otherwise
  a 1x1 conv with the stride + BN + ReLU;
* head: 1x1 conv to 1504 filters (32) / 1984 (224) + BN + ReLU, global
  average pooling, fully connected to 100 (CIFAR-100) / 1000 classes.

latprof adds a softmax after the classifier, as for every space; HW-NAS-Bench's
model ends at the logits. The padding of the strided convs is TFLite's
``SAME`` rather than PyTorch's symmetric padding: same shapes, same cost.

Representation: :class:`FBNetArch` holds the 22 choices and the resolution;
:meth:`FBNetArch.architecture` gives the generic :class:`Architecture` (one
block per non-identity layer, ``ir`` blocks with ``e1`` and ``g2``, ``cn``
``k1`` blocks for the shape-changing skips, stem stride in the header), which
the layer lists, lookup tables, .tflite writer, Keras builder and NASWOT use.
Identity skips build nothing, so several token sequences (an identity moved
within a stage) build the same network; :class:`FBNetArch` keeps the positions,
so tokens, strings and architectures map one to one and :meth:`FBNetSpace.size`
is 9**22, the count the FBNet papers and HW-NAS-Bench give.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from latprof.errors import ArchitectureError
from latprof.space._arch import Architecture, BlockSpec
from latprof.space._base import Decision, SearchSpace, TokenSlot, register_space
from latprof.space._layers import LayerConfig, named_layers

OPS = ("k3_e1", "k3_e1_g2", "k3_e3", "k3_e6", "k5_e1", "k5_e1_g2", "k5_e3", "k5_e6", "skip")
STAGE_LAYERS = (1, 4, 4, 4, 4, 4, 1)
STAGE_FILTERS = (16, 24, 32, 64, 112, 184, 352)
STEM_FILTERS = 16
NUM_LAYERS = sum(STAGE_LAYERS)


@dataclass(frozen=True)
class _Setting:
    stem_stride: int
    strides: tuple[int, ...]
    head_filters: int
    num_classes: int


SETTINGS = {
    32: _Setting(1, (1, 1, 2, 2, 1, 2, 1), 1504, 100),  # HW-NAS-Bench's CIFAR-100 setting
    224: _Setting(2, (1, 2, 2, 2, 1, 2, 1), 1984, 1000),  # FBNet's ImageNet setting
}


def _op_fields(op: str) -> tuple[int, int, int]:
    """(kernel, expansion, groups) of a non-skip op name such as ``k5_e1_g2``."""
    parts = op.split("_")
    return int(parts[0][1:]), int(parts[1][1:]), int(parts[2][1:]) if len(parts) > 2 else 1


def _positions() -> list[tuple[int, int]]:
    """(stage, layer in stage) of each of the 22 searchable layers, 0-based."""
    return [(s, j) for s, n in enumerate(STAGE_LAYERS) for j in range(n)]


@dataclass(frozen=True)
class FBNetArch:
    """An FBNet architecture: one op name per searchable layer, and the input resolution (32 or 224)."""

    ops: tuple[str, ...]
    resolution: int = 32
    # Set by the space's from_tokens: (space key, token bytes), so that SearchSpace.encode need not call to_tokens.
    # Not an __init__ argument, so dataclasses.replace (a changed architecture) drops it.
    origin: tuple[str, bytes] | None = field(default=None, init=False, compare=False, hash=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ops", tuple(self.ops))
        if self.resolution not in SETTINGS:
            raise ArchitectureError(f"FBNet resolution {self.resolution!r} is not supported; allowed: "
                                    f"{', '.join(str(r) for r in SETTINGS)}")
        if len(self.ops) != NUM_LAYERS:
            raise ArchitectureError(f"an FBNet architecture has {NUM_LAYERS} layers, got {len(self.ops)}; "
                                    f"give {NUM_LAYERS} op names joined by '-'")
        for i, op in enumerate(self.ops, 1):
            if op not in OPS:
                raise ArchitectureError(f"FBNet layer {i}: unknown op {op!r}; allowed: {', '.join(OPS)}")

    def __str__(self) -> str:
        return "-".join(self.ops)

    def layer_blocks(self) -> list[tuple[str, BlockSpec | None]]:
        """(position name ``s{stage}.{layer}``, 1-based, and its block) per layer; None for an identity skip."""
        setting = SETTINGS[self.resolution]
        out: list[tuple[str, BlockSpec | None]] = []
        prev = STEM_FILTERS
        for op, (s, j) in zip(self.ops, _positions()):
            cout = STAGE_FILTERS[s]
            stride = setting.strides[s] if j == 0 else 1
            if op == "skip":
                shape_kept = stride == 1 and prev == cout
                block = None if shape_kept else BlockSpec("cn", 1, 1, stride, prev, cout, skip="none")
            else:
                k, e, g = _op_fields(op)
                block = BlockSpec("ir", 1, k, stride, prev, cout, expansion=e, skip="id", groups=g)
            out.append((f"s{s + 1}.{j + 1}", block))
            prev = cout
        return out

    def architecture(self) -> Architecture:
        """The generic :class:`Architecture` this builds (identity skips dropped)."""
        setting = SETTINGS[self.resolution]
        return Architecture(
            blocks=tuple(b for _, b in self.layer_blocks() if b is not None), resolution=self.resolution,
            stem_filters=STEM_FILTERS, head_filters=setting.head_filters, num_classes=setting.num_classes,
            activation="relu", name=f"fbnet:{self}", stem_stride=setting.stem_stride,
        )


class FBNetSpace(SearchSpace[FBNetArch]):
    """The FBNet space at input resolution 32 (CIFAR-100, HW-NAS-Bench) or 224 (ImageNet)."""

    name = "fbnet"

    def __init__(self, resolution: int = 32) -> None:
        if resolution not in SETTINGS:
            raise ArchitectureError(f"FBNet resolution {resolution!r} is not supported; allowed: "
                                    f"{', '.join(str(r) for r in SETTINGS)}")
        self.resolution = resolution
        self.setting = SETTINGS[resolution]
        self._decisions = [Decision(f"s{s + 1}.{j + 1}", OPS) for s, j in _positions()]

    def __repr__(self) -> str:
        return f"FBNetSpace(resolution={self.resolution})"

    def params(self) -> dict[str, Any]:
        return {"resolution": self.resolution}

    # ------------------------------------------------------------ tokens and strings

    def decisions(self) -> list[Decision]:
        return list(self._decisions)

    def from_tokens(self, tokens: Sequence[int]) -> FBNetArch:
        tokens = self.check_tokens(tokens)
        return self._with_origin(FBNetArch(tuple(OPS[t] for t in tokens), self.resolution), tokens)

    def to_tokens(self, arch: FBNetArch) -> list[int]:
        if not isinstance(arch, FBNetArch):
            raise ArchitectureError(f"{self!r} takes FBNetArch architectures, not {type(arch).__name__}; "
                                    f"parse an FBNet string with this space")
        if arch.resolution != self.resolution:
            raise ArchitectureError(f"not in {self!r}: the architecture is at resolution {arch.resolution}; "
                                    f"use FBNetSpace(resolution={arch.resolution})")
        return [OPS.index(op) for op in arch.ops]

    def parse(self, text: str) -> FBNetArch:
        """An architecture from its string form: 22 op names joined by ``-``."""
        if not isinstance(text, str) or not text.strip():
            raise ArchitectureError(f"empty FBNet architecture string; give {NUM_LAYERS} op names joined by '-', "
                                    f"e.g. '{'-'.join(['k3_e1'] * 3)}-...'")
        return FBNetArch(tuple(op.strip() for op in text.strip().split("-")), self.resolution)

    def format(self, arch: FBNetArch) -> str:
        self.to_tokens(arch)
        return str(arch)

    # ------------------------------------------------------------ layers and models

    def layers(self, arch: FBNetArch) -> list[LayerConfig]:
        return [layer for _, layer in self.named_layers(arch)]

    def named_layers(self, arch: FBNetArch) -> list[tuple[str, LayerConfig]]:
        """Stem, every non-identity layer (named ``s{stage}.{layer}``), head and classifier."""
        self.to_tokens(arch)
        names = [name for name, block in arch.layer_blocks() if block is not None]
        generic = named_layers(arch.architecture())
        return [generic[0]] + list(zip(names, (layer for _, layer in generic[1:-2]))) + generic[-2:]

    def token_slots(self) -> list[TokenSlot]:
        """Stem ``()``, one slot per searchable layer (its own token; an identity skip has no layer), head ``()``
        and classifier ``()``: every position's input shape is fixed, whatever the other layers are."""
        by_op = [dict(self.named_layers(FBNetArch((op,) * NUM_LAYERS, self.resolution))) for op in OPS]

        def fixed(name: str) -> TokenSlot:
            return TokenSlot((), (), lambda values: [(name, by_op[0][name])])

        def position(name: str) -> Callable[[tuple[int, ...]], list[tuple[str, LayerConfig]]]:
            return lambda values: [(name, by_op[values[0]][name])] if name in by_op[values[0]] else []

        searchable = [TokenSlot((i,), (len(OPS),), position(d.name)) for i, d in enumerate(self._decisions)]
        return [fixed("stem")] + searchable + [fixed("head"), fixed("classifier")]

    def tflite_bytes(self, arch: FBNetArch, seed: int = 0, dtype: str = "float32") -> bytes:
        from latprof.space._flatbuffer import arch_tflite_bytes

        self.to_tokens(arch)
        return arch_tflite_bytes(arch.architecture(), seed, dtype)

    def keras_model(self, arch: FBNetArch):
        from latprof.space._build import build_keras_model

        self.to_tokens(arch)
        return build_keras_model(arch.architecture(), name="fbnet")

    # ------------------------------------------------------------ counting

    @cached_property
    def _unique(self) -> list[LayerConfig]:
        # Every position's input shape is fixed, so each (position, op) pair gives one layer, whatever the others.
        order = {name: i for i, name in enumerate(["stem"] + [d.name for d in self._decisions] + ["head"])}
        unique: dict[LayerConfig, int] = {}
        for op in OPS:
            for name, layer in self.named_layers(FBNetArch((op,) * NUM_LAYERS, self.resolution)):
                unique.setdefault(layer, order.get(name, len(order)))
        return sorted(unique, key=unique.__getitem__)

    def unique_layer_configs(self) -> list[LayerConfig]:
        """Every distinct LayerConfig (stem, searchable layers, head, classifier), from the input towards the head."""
        return list(self._unique)

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d["stages"] = [{"stage": s + 1, "layers": n, "filters": f, "stride": st}
                       for s, (n, f, st) in enumerate(zip(STAGE_LAYERS, STAGE_FILTERS, self.setting.strides))]
        d["fixed"] = {"stem_filters": STEM_FILTERS, "stem_stride": self.setting.stem_stride,
                      "head_filters": self.setting.head_filters, "num_classes": self.setting.num_classes,
                      "activation": "relu"}
        return d


register_space("fbnet", FBNetSpace)
