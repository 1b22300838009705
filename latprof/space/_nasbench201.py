"""The NAS-Bench-201 cell space (Dong & Yang, ICLR 2020), in its CIFAR setting.

A cell has 4 nodes; node ``j`` is the sum of one operation per earlier node
``i`` (6 edges), each one of ``none, skip_connect, nor_conv_1x1, nor_conv_3x3,
avg_pool_3x3``: 5**6 = 15,625 cells. The network (NAS-Bench-201's
``TinyNetwork``, C=16, N=5, 32x32 input, 10 classes) is a 3x3 conv stem + BN,
three stages of 5 copies of the cell at 16, 32 and 64 channels, a ResNet basic
block with stride 2 between stages, BN + ReLU, global pooling and a classifier.
An architecture's string form is NAS-Bench-201's own, e.g.
``|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|``;
tokens are the 6 edge choices in that order (1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2).

Layers (:mod:`latprof.space._layers`): ``cn`` per convolution edge (its conv
+ BN) and one ``relu`` per node that feeds convolution edges (every edge's
``ReLUConvBN`` starts with the same ReLU of the same node, which the TFLite
converter computes once), ``pool`` per pooling edge, ``add`` per binary
addition of a node sum, ``res`` per reduction block, ``bnrelu`` + ``fc`` for
the head. Where a ReLU's input feeds nothing else the converter may fuse it into
the op before; the writers keep it separate. What runs
depends on how ``none`` edges are executed, and the published phone data holds
both behaviours, so the space comes in two registered forms:

* ``nasbench201``: every non-``none`` edge runs, as in NAS-Bench-201's PyTorch
  code; a ``none`` edge adds nothing, a node whose edges are all ``none`` is a
  zero map that later edges still read. HELP's Pixel 2 and Galaxy A50
  latencies behave like this (its ~340 cells with no path from input to output
  take as long as the others). The builders keep results that no later op
  reads as extra model outputs, so that a graph compiler cannot drop them;
  the .tflite writer (what latprof measures) also runs the ops that read a
  zero map, which TensorFlow's converter folds away from the Keras model.
* ``nasbench201-pruned``: the graph is pruned as a graph compiler prunes it:
  an edge whose result never reaches the cell's output (a dead end) is
  dropped; an edge that reads a zero map still runs (TFLite's converter does
  not fold a convolution of a constant); a network with a cell that has no
  path from input to output has a constant output, and nothing runs.
  HW-NAS-Bench's Pixel 3 and Raspberry Pi 4 latencies behave like this: those
  ~340 cells take ~0 ms, and counting only the edges that reach the output
  explains the rest best (in-sample Spearman's rho of latprof's additive fit
  on all 15,625 cells, benchmarks/predictor_quality.py: Pixel 3 0.967 vs 0.913
  counting every edge; on HELP's Pixel 2 the other way round, 0.834 vs 0.905).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any

from latprof.errors import ArchitectureError
from latprof.space._base import Decision, SearchSpace, register_space
from latprof.space._layers import LayerConfig

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))  # (to, from), in token and string order
CHANNELS = 16
CELLS_PER_STAGE = 5
RESOLUTION = 32
NUM_CLASSES = 10


@dataclass(frozen=True)
class NASBench201Arch:
    """A NAS-Bench-201 cell: one op name per edge, in :data:`EDGES` order."""

    ops: tuple[str, ...]
    # Set by the space's from_tokens: (space key, token bytes), so that SearchSpace.encode need not call to_tokens.
    # Not an __init__ argument, so dataclasses.replace (a changed architecture) drops it.
    origin: tuple[str, bytes] | None = field(default=None, init=False, compare=False, hash=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ops", tuple(self.ops))
        if len(self.ops) != len(EDGES):
            raise ArchitectureError(f"a NAS-Bench-201 cell has {len(EDGES)} edges, got {len(self.ops)}")
        for (to, frm), op in zip(EDGES, self.ops):
            if op not in OPS:
                raise ArchitectureError(f"NAS-Bench-201 edge {frm}->{to}: unknown op {op!r}; allowed: {', '.join(OPS)}")

    def __str__(self) -> str:
        nodes = [[f"{op}~{frm}" for (to, frm), op in zip(EDGES, self.ops) if to == j] for j in (1, 2, 3)]
        return "+".join("|" + "|".join(n) + "|" for n in nodes)

    @classmethod
    def from_string(cls, text: str) -> "NASBench201Arch":
        """Parse ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``."""
        example = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|none~2|"
        parts = text.strip().split("+") if isinstance(text, str) else []
        found: dict[tuple[int, int], str] = {}
        for to, part in enumerate(parts, 1):
            for item in filter(None, part.strip().strip("|").split("|")):
                op, _, frm = item.partition("~")
                if not frm.isdigit():
                    raise ArchitectureError(f"{item!r} is not an edge 'op~node' in the NAS-Bench-201 string {text!r}; "
                                            f"expected e.g. {example!r}")
                found[(to, int(frm))] = op
        if len(parts) != 3 or set(found) != set(EDGES):
            raise ArchitectureError(f"{text!r} is not a NAS-Bench-201 cell string; expected 3 nodes with edges from "
                                    f"every earlier node, e.g. {example!r}")
        return cls(tuple(found[e] for e in EDGES))

    def is_connected(self) -> bool:
        """Whether a chain of non-``none`` edges leads from the cell's input (node 0) to its output (node 3)."""
        return 3 in _reachable(self.ops)


def _reachable(ops: Sequence[str]) -> set[int]:
    """Nodes a chain of non-``none`` edges reaches from node 0."""
    seen = {0}
    for (to, frm), op in zip(EDGES, ops):  # EDGES is in topological order
        if op != "none" and frm in seen:
            seen.add(to)
    return seen


def _live_edges(ops: Sequence[str], prune: bool) -> list[bool]:
    """Which edges run: every non-``none`` one, or (pruned) those whose result reaches node 3."""
    if not prune:
        return [op != "none" for op in ops]
    backward = {3}
    for (to, frm), op in reversed(list(zip(EDGES, ops))):
        if op != "none" and to in backward:
            backward.add(frm)
    return [op != "none" and to in backward for (to, frm), op in zip(EDGES, ops)]


@dataclass(frozen=True)
class Step:
    """One step of the network program the layer list and both model writers follow.

    ``layer`` applied to value ``src`` (and ``other``, an ``add``'s second
    operand) gives value ``out``; with ``layer`` None the step makes ``out`` a
    constant zero map of ``shape`` (a node whose edges are all ``none``).
    Value 0 is the model input.
    """

    name: str
    layer: LayerConfig | None
    src: int | None
    other: int | None
    out: int
    shape: tuple[int, int, int] = (0, 0, 0)


@lru_cache(maxsize=None)
def _piece(op: str, kernel: int, channels: int, resolution: int) -> LayerConfig:
    """A channel-keeping, stride-1 layer of a cell (made once: a network holds ~150 of them)."""
    return LayerConfig(op, kernel, 1, 1, 0.0, "none", channels, channels, resolution, "none")


def run_program(steps: Sequence[Step], model_input: Any, zeros: Callable[[Step], Any],
                apply: Callable[[Step, Any, Any], Any]) -> dict[int, Any]:
    """Every value of a program: ``zeros(step)`` for a zero map, ``apply(step, x, other)`` for a layer (``other``:
    an ``add``'s second operand, else None); value 0 is ``model_input``."""
    values = {0: model_input}
    for step in steps:
        if step.layer is None:
            values[step.out] = zeros(step)
        else:
            values[step.out] = apply(step, values[step.src], values.get(step.other))
    return values


_EDGE_PIECES = {"avg_pool_3x3": ("pool", 3), "nor_conv_1x1": ("cn", 1), "nor_conv_3x3": ("cn", 3)}


class _Program:
    def __init__(self) -> None:
        self.steps: list[Step] = []

    def emit(self, name: str, layer: LayerConfig, src: int | None, other: int | None = None) -> int:
        """Append ``layer`` reading ``src`` (None: a zero map); return the value it makes."""
        src = self.zeros(layer.resolution, layer.in_channels) if src is None else src
        self.steps.append(Step(name, layer, src, other, len(self.steps) + 1))
        return len(self.steps)

    def zeros(self, resolution: int, channels: int) -> int:
        self.steps.append(Step("zeros", None, None, None, len(self.steps) + 1, (resolution, resolution, channels)))
        return len(self.steps)

    def cell(self, ops: Sequence[str], live: Sequence[bool], x: int | None, channels: int, resolution: int,
             prefix: str) -> int | None:
        """Append one cell reading ``x`` with ``live`` edges (:func:`_live_edges`); return its output value."""
        nodes: dict[int, int | None] = {0: x}
        relu_of: dict[int, int] = {}  # value -> its ReLU, shared by every conv edge that reads it
        for j in (1, 2, 3):
            terms: list[int] = []
            for (to, frm), op, runs in zip(EDGES, ops, live):
                if to != j or not runs:
                    continue
                if nodes[frm] is None:  # a node with no input, read: a zero map, made once
                    nodes[frm] = self.zeros(resolution, channels)
                src = nodes[frm]
                if op == "skip_connect":
                    terms.append(src)
                    continue
                kind, kernel = _EDGE_PIECES[op]
                if kind == "cn":
                    if src not in relu_of:
                        relu_of[src] = self.emit(f"{prefix}.n{frm}relu", _piece("relu", 1, channels, resolution), src)
                    src = relu_of[src]
                terms.append(self.emit(f"{prefix}.e{frm}{to}", _piece(kind, kernel, channels, resolution), src))
            node = terms[0] if terms else None
            for k, term in enumerate(terms[1:], 1):
                node = self.emit(f"{prefix}.n{j}+{k}", _piece("add", 1, channels, resolution), node, term)
            nodes[j] = node
        return nodes[3]


class NASBench201Space(SearchSpace[NASBench201Arch]):
    """The NAS-Bench-201 space; ``prune=True`` is the ``nasbench201-pruned`` form (see the module docstring)."""

    def __init__(self, prune: bool = False, resolution: int = RESOLUTION) -> None:
        if resolution != RESOLUTION:
            raise ArchitectureError(f"the NAS-Bench-201 space is defined at resolution {RESOLUTION} only, "
                                    f"got {resolution}; drop --resolution")
        self.prune = bool(prune)
        self.name = "nasbench201-pruned" if self.prune else "nasbench201"
        self._decisions = [Decision(f"e{frm}{to}", OPS) for to, frm in EDGES]

    def __repr__(self) -> str:
        return f"NASBench201Space(prune={self.prune})"

    @property
    def family(self) -> str:
        return "nasbench201"

    # ------------------------------------------------------------ tokens and strings

    def decisions(self) -> list[Decision]:
        return list(self._decisions)

    def from_tokens(self, tokens: Sequence[int]) -> NASBench201Arch:
        tokens = self.check_tokens(tokens)
        return self._with_origin(NASBench201Arch(tuple(OPS[t] for t in tokens)), tokens)

    def to_tokens(self, arch: NASBench201Arch) -> list[int]:
        if not isinstance(arch, NASBench201Arch):
            raise ArchitectureError(f"{self!r} takes NASBench201Arch architectures, not {type(arch).__name__}; "
                                    f"parse a NAS-Bench-201 string with this space")
        return [OPS.index(op) for op in arch.ops]

    def parse(self, text: str) -> NASBench201Arch:
        return NASBench201Arch.from_string(text)

    def format(self, arch: NASBench201Arch) -> str:
        self.to_tokens(arch)
        return str(arch)

    # ------------------------------------------------------------ network

    def program(self, arch: NASBench201Arch) -> tuple[list[Step], int | None]:
        """The network as steps, and the value that is its output (None: in the pruned form, the output is a
        constant because a cell is disconnected, and nothing runs)."""
        self.to_tokens(arch)
        if self.prune and not arch.is_connected():  # every cell is the same, so every cell is cut
            return [], None
        p = _Program()
        live = _live_edges(arch.ops, self.prune)
        c, r = CHANNELS, RESOLUTION
        x: int | None = p.emit("stem", LayerConfig("cn", 3, 1, 1, 0.0, "none", 3, c, r, "none"), 0)
        for stage in range(3):
            if stage:
                x = p.emit(f"r{stage}", LayerConfig("res", 3, 2, 1, 0.0, "none", c, 2 * c, r, "none"), x)
                c, r = 2 * c, r // 2
            for i in range(CELLS_PER_STAGE):
                x = p.cell(arch.ops, live, x, c, r, f"s{stage + 1}.c{i + 1}")
        x = p.emit("lastact", LayerConfig("bnrelu", 1, 1, 1, 0.0, "none", c, c, r, "none"), x)
        x = p.emit("classifier", LayerConfig("fc", 1, 1, 1, 0.0, "none", c, NUM_CLASSES, r, "none"), x)
        return p.steps, x

    def named_layers(self, arch: NASBench201Arch) -> list[tuple[str, LayerConfig]]:
        """Every layer that runs, named ``stem``, ``s2.c4.e13`` (edge 1->3 of cell 4 of stage 2), ``s2.c4.n3+1``
        (an addition of node 3), ``r1``, ``lastact``, ``classifier``."""
        return [(s.name, s.layer) for s in self.program(arch)[0] if s.layer is not None]

    def layers(self, arch: NASBench201Arch) -> list[LayerConfig]:
        return [layer for _, layer in self.named_layers(arch)]

    def _checked_program(self, arch: NASBench201Arch) -> tuple[list[Step], int, list[int]]:
        """The program, its output, and the values no step reads (kept as extra outputs)."""
        steps, out = self.program(arch)
        if out is None:
            raise ArchitectureError(f"{arch} has a cell with no path from input to output; in {self.name} the whole "
                                    f"network folds to a constant and there is no model to build")
        read = {v for s in steps for v in (s.src, s.other) if v is not None}
        unread = [s.out for s in steps if s.layer is not None and s.out not in read and s.out != out]
        return steps, out, unread

    def tflite_bytes(self, arch: NASBench201Arch, seed: int = 0, dtype: str = "float32") -> bytes:
        import numpy as np

        from latprof.space._flatbuffer import _Graph

        steps, out, unread = self._checked_program(arch)
        g = _Graph(seed, dtype)

        def apply(s: Step, x: int, other: int | None) -> int:
            return g.cell_layer(x, s.layer, s.name, other) if other is not None else g.layer(x, s.layer, s.name)

        values = run_program(steps, g.activation((1, RESOLUTION, RESOLUTION, 3), "input"),
                             lambda s: g.float_const(np.zeros((1, *s.shape), np.float32), f"zeros{s.out}"), apply)
        return g.finish([values[0]], [values[out]] + [values[v] for v in unread], f"latprof nasbench201 {arch}")

    def keras_model(self, arch: NASBench201Arch):
        from latprof.space._build import _keras, apply_cell_layer, apply_layer

        keras = _keras()
        steps, out, unread = self._checked_program(arch)
        inp = keras.Input((RESOLUTION, RESOLUTION, 3), batch_size=1, name="input")

        def apply(s: Step, x, other):
            name = s.name.replace(".", "_").replace("+", "_add")
            return apply_cell_layer(x, s.layer, name, other) if other is not None else apply_layer(x, s.layer, name)

        def zeros(s: Step):  # input * 0, which the converter folds (a BROADCAST_TO may remain)
            return keras.ops.broadcast_to(keras.ops.multiply(keras.ops.mean(inp), 0.0), (1, *s.shape))

        values = run_program(steps, inp, zeros, apply)
        outputs = [values[out]] + [values[v] for v in unread]
        return keras.Model(inp, outputs if unread else outputs[0], name="nasbench201")

    # ------------------------------------------------------------ counting

    @cached_property
    def _unique(self) -> list[LayerConfig]:
        unique: dict[LayerConfig, None] = {}
        everything = NASBench201Arch(("nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3", "skip_connect",
                                      "nor_conv_1x1", "nor_conv_3x3"))
        for layer in NASBench201Space(prune=False).layers(everything):
            unique.setdefault(layer)
        return list(unique)

    def unique_layer_configs(self) -> list[LayerConfig]:
        """Every distinct LayerConfig: stem, per stage a ReLU, a 1x1 and a 3x3 conv edge, a pooling edge and an
        addition, the two reduction blocks, and the head."""
        return list(self._unique)

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d["fixed"] = {"channels": [CHANNELS, 2 * CHANNELS, 4 * CHANNELS], "cells_per_stage": CELLS_PER_STAGE,
                      "resolution": RESOLUTION, "num_classes": NUM_CLASSES,
                      "none_edges": "pruned as constant zeros" if self.prune else "add nothing; every other edge runs"}
        return d


register_space("nasbench201", NASBench201Space)
register_space("nasbench201-pruned", lambda **params: NASBench201Space(prune=True, **params))
