"""The search-space interface and the registry of spaces.

A space is a list of categorical *decisions*; an architecture of the space is
one choice per decision, i.e. a flat token sequence (choice indices), which is
what a search controller emits and consumes. Subclasses implement seven small
methods; sampling, mutation, membership and counting come for free.
"""

from __future__ import annotations

import math
import random
import sys
from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Callable, Generic, Sequence, TypeVar

import numpy as np

from latprof.errors import ArchitectureError
from latprof.space._layers import LayerConfig

A = TypeVar("A")


@dataclass(frozen=True)
class Decision:
    """One categorical decision: its name (e.g. ``b3.kernel``) and its choices, in token order."""

    name: str
    choices: tuple[Any, ...]


@dataclass(frozen=True)
class TokenSlot:
    """A group of token columns that alone decides some consecutive layers of every architecture.

    ``layers(values)`` gives those named layers for the tokens ``values`` at ``columns`` (each
    ``0 <= values[i] < sizes[i]``); the slots of :meth:`SearchSpace.token_slots`, in order, give exactly
    :meth:`SearchSpace.named_layers`.
    """

    columns: tuple[int, ...]
    sizes: tuple[int, ...]
    layers: Callable[[tuple[int, ...]], list[tuple[str, LayerConfig]]]


def _rng(rng: random.Random | int | None) -> random.Random:
    if isinstance(rng, random.Random):
        return rng
    if rng is None or isinstance(rng, int):
        return random.Random(rng)
    raise TypeError(f"rng must be a random.Random, an int seed or None, not {type(rng).__name__}")


class SearchSpace(ABC, Generic[A]):
    """A search space over architectures of type ``A``."""

    name: str = ""

    @property
    def family(self) -> str:
        """The space this is a form of (its published data's name); the space's own name unless it has forms."""
        return self.name

    # ------------------------------------------------------------ abstract

    @abstractmethod
    def decisions(self) -> list[Decision]:
        """The decisions, in token order."""

    @abstractmethod
    def from_tokens(self, tokens: Sequence[int]) -> A:
        """The architecture for one choice index per decision."""

    @abstractmethod
    def to_tokens(self, arch: A) -> list[int]:
        """Inverse of :meth:`from_tokens`; raises ArchitectureError if ``arch`` is not in the space."""

    @abstractmethod
    def layers(self, arch: A) -> list[LayerConfig]:
        """The layers of ``arch`` in run order (what a lookup table is keyed on)."""

    @abstractmethod
    def unique_layer_configs(self) -> list[LayerConfig]:
        """Every distinct layer configuration any architecture of the space contains."""

    @abstractmethod
    def parse(self, text: str) -> A:
        """An architecture from its string form (or a reference name, where the space has them)."""

    @abstractmethod
    def format(self, arch: A) -> str:
        """The canonical string form of ``arch``."""

    # ------------------------------------------------------------ provided

    @cached_property
    def key(self) -> str:
        """A stable string naming the space and its parameters (equal spaces have equal keys)."""
        return sys.intern(f"{self!r}|{self.name}|{sorted(self.params().items())!r}")

    def _with_origin(self, arch: A, tokens: Sequence[int]) -> A:
        """``arch``, remembering that it is ``tokens`` of this space (see :meth:`encode`)."""
        object.__setattr__(arch, "origin", (self.key, bytes(tokens)))
        return arch

    def encode(self, archs: Sequence[A]) -> np.ndarray:
        """The token rows of ``archs``, uint8 ``(n, len(decisions()))``: an architecture made by this space's
        :meth:`from_tokens` is read from its ``origin``, any other goes through :meth:`to_tokens` (which raises
        ArchitectureError for one not in the space)."""
        key = self.key
        rows = [o[1] if (o := getattr(arch, "origin", None)) is not None and (o[0] is key or o[0] == key)
                else bytes(self.to_tokens(arch)) for arch in archs]
        return np.frombuffer(b"".join(rows), np.uint8).reshape(len(rows), len(self.decisions())).copy()

    def token_slots(self) -> list[TokenSlot] | None:
        """The layers as a function of groups of tokens (:class:`TokenSlot`), or None where they are not
        (a layer depends on all tokens jointly)."""
        return None

    def named_layers(self, arch: A) -> list[tuple[str, LayerConfig]]:
        """:meth:`layers`, each with a position name (``stem``, ``b3.2``, ``c2.e1-3`` ...). Default: ``l0, l1, ...``."""
        return [(f"l{i}", layer) for i, layer in enumerate(self.layers(arch))]

    def count_params_macs(self, arch: A) -> tuple[int, int]:
        """(parameters, multiply-adds) of ``arch``: the sums over its layers."""
        layers = self.layers(arch)
        return sum(layer.params() for layer in layers), sum(layer.macs() for layer in layers)

    def tflite_bytes(self, arch: A, seed: int = 0, dtype: str = "float32") -> bytes:
        """A ``dtype`` (float32 or int8) .tflite of the whole of ``arch`` (random weights), written without
        TensorFlow."""
        raise ArchitectureError(f"space {self.name!r} cannot write .tflite models of its architectures")

    def keras_model(self, arch: A):
        """A float32 Keras model of ``arch`` (random weights). Imports TensorFlow."""
        raise ArchitectureError(f"space {self.name!r} has no Keras builder")

    def params(self) -> dict[str, Any]:
        """The space's own parameters (e.g. depth multiplier, resolution), for display and JSON."""
        return {}

    def sample(self, rng: random.Random | int | None = None) -> A:
        """A uniformly random architecture: each decision's choice drawn uniformly and independently."""
        r = _rng(rng)
        return self.from_tokens([r.randrange(len(d.choices)) for d in self.decisions()])

    def mutate(self, arch: A, rng: random.Random | int | None = None, max_tries: int = 100) -> A:
        """``arch`` with exactly one decision changed to another choice.

        Changes that leave the built model identical (e.g. an identity skip
        where none can apply) are re-drawn, up to ``max_tries`` times.
        """
        r = _rng(rng)
        tokens = self.to_tokens(arch)
        decisions = self.decisions()
        mutable = [i for i, d in enumerate(decisions) if len(d.choices) > 1]
        if not mutable:
            raise ArchitectureError(f"space {self.name!r} has no decision with more than one choice")
        base_layers = self.layers(arch)
        candidate = arch
        for _ in range(max_tries):
            i = r.choice(mutable)
            new = list(tokens)
            new[i] = r.choice([c for c in range(len(decisions[i].choices)) if c != tokens[i]])
            candidate = self.from_tokens(new)
            if self.layers(candidate) != base_layers:
                return candidate
        return candidate

    def contains(self, arch: A) -> bool:
        try:
            self.to_tokens(arch)
        except ArchitectureError:
            return False
        return True

    def num_combinations(self) -> int:
        """The number of token sequences (product of the choice counts)."""
        return math.prod(len(d.choices) for d in self.decisions())

    def size(self) -> int:
        """The number of distinct architectures. Defaults to :meth:`num_combinations`."""
        return self.num_combinations()

    def check_tokens(self, tokens: Sequence[int]) -> list[int]:
        """Validate a token sequence against :meth:`decisions`; return it as a list of ints."""
        decisions = self.decisions()
        tokens = list(tokens)
        if len(tokens) != len(decisions):
            raise ArchitectureError(f"space {self.name!r} takes {len(decisions)} tokens, got {len(tokens)}")
        for t, d in zip(tokens, decisions):
            if not isinstance(t, int) or isinstance(t, bool) or not 0 <= t < len(d.choices):
                raise ArchitectureError(
                    f"token for decision {d.name} must be an integer in 0..{len(d.choices) - 1} "
                    f"(choices: {', '.join(str(c) for c in d.choices)}), got {t!r}"
                )
        return tokens

    def describe(self) -> dict[str, Any]:
        """A JSON-able summary: parameters, decisions, counts."""
        return {
            "space": self.name,
            "params": self.params(),
            "decisions": [{"name": d.name, "choices": list(d.choices)} for d in self.decisions()],
            "num_combinations": self.num_combinations(),
            "size": self.size(),
            "unique_layer_configs": len(self.unique_layer_configs()),
        }


# ---------------------------------------------------------------- registry

_REGISTRY: dict[str, Callable[..., SearchSpace]] = {}


def register_space(name: str, factory: Callable[..., SearchSpace]) -> None:
    """Make ``get_space(name, **params)`` return ``factory(**params)``."""
    _REGISTRY[name] = factory


def space_names() -> list[str]:
    return sorted(_REGISTRY)


def get_space(name: str = "mnasnet", **params: Any) -> SearchSpace:
    """The search space called ``name``, built with ``params`` (e.g. ``depth_multiplier=0.5``)."""
    factory = _REGISTRY.get(name)
    if factory is None:
        raise ArchitectureError(f"unknown search space {name!r}; known: {', '.join(space_names())}")
    return factory(**params)
