"""Named reference architectures, and ``parse_arch`` which accepts them.

Block definitions follow the reference implementations:

* ``mnasnet-a1``, ``mnasnet-b1``, ``mnasnet-small``: ``mnasnet_models.py`` of
  the TensorFlow TPU reference code (tensorflow/tpu, models/official/mnasnet):
  same block strings, stem 32 (8 for small), head 1x1 conv to 1280 (not scaled
  by the depth multiplier), ReLU, SE bottleneck ``max(1, int(in * 0.25))``.
  In mnasnet-small the first block is written ``i8`` (its real input, the
  8-filter stem; the reference string says ``i16``, which only disables its
  residual, so it is written ``noskip`` here).
* ``mobilenet-v2``: the MobileNetV2 paper's Table 2 (t, c, n, s) with ReLU6,
  head 1280 (scaled only for multipliers above 1, as in the Keras reference).

A name may carry a depth multiplier and a resolution: ``mnasnet-a1@0.75`` or
``mnasnet-a1@0.75,192``. Filters are scaled with the reference
``round_filters`` rule (multiples of 8, never more than 10% down).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from latprof.errors import ArchitectureError
from latprof.space._arch import Architecture, parse_arch_string, round_filters


@dataclass(frozen=True)
class Reference:
    """A named architecture: its string at multiplier 1.0 and how its head scales."""

    name: str
    arch_string: str
    description: str
    scale_head: bool = False  # MobileNetV2 scales the head for multipliers > 1; MnasNet never does

    def build(self, depth_multiplier: float = 1.0, resolution: int | None = None) -> Architecture:
        base = parse_arch_string(self.arch_string)
        if not (isinstance(depth_multiplier, (int, float)) and 0 < depth_multiplier <= 4):
            raise ArchitectureError(f"{self.name}: depth multiplier {depth_multiplier!r} is out of range; "
                                    f"allowed: 0 < multiplier <= 4")
        arch = base
        if depth_multiplier != 1.0:
            rf = lambda f: round_filters(f, depth_multiplier)  # noqa: E731
            blocks = tuple(replace(b, in_filters=rf(b.in_filters), out_filters=rf(b.out_filters)) for b in base.blocks)
            head = rf(base.head_filters) if (self.scale_head and depth_multiplier > 1) else base.head_filters
            arch = replace(base, blocks=blocks, stem_filters=rf(base.stem_filters), head_filters=head)
        if resolution is not None:
            arch = replace(arch, resolution=resolution)
        suffix = ""  # canonical display name: NAME or NAME@MULTIPLIER,RESOLUTION
        if depth_multiplier != 1.0 or resolution not in (None, base.resolution):
            suffix = f"@{format(float(depth_multiplier), 'g')},{arch.resolution}"
        return replace(arch, name=self.name + suffix)


_A1 = ("res224_stem32_head1280_cls1000_relu:ds_r1_k3_s1_i32_o16_noskip:ir_r2_k3_s2_e6_i16_o24:"
       "ir_r3_k5_s2_e3_i24_o40_se0.25:ir_r4_k3_s2_e6_i40_o80:ir_r2_k3_s1_e6_i80_o112_se0.25:"
       "ir_r3_k5_s2_e6_i112_o160_se0.25:ir_r1_k3_s1_e6_i160_o320")
_B1 = ("res224_stem32_head1280_cls1000_relu:ds_r1_k3_s1_i32_o16_noskip:ir_r3_k3_s2_e3_i16_o24:"
       "ir_r3_k5_s2_e3_i24_o40:ir_r3_k5_s2_e6_i40_o80:ir_r2_k3_s1_e6_i80_o96:ir_r4_k5_s2_e6_i96_o192:"
       "ir_r1_k3_s1_e6_i192_o320_noskip")
_SMALL = ("res224_stem8_head1280_cls1000_relu:ds_r1_k3_s1_i8_o8_noskip:ir_r1_k3_s2_e3_i8_o16:"
          "ir_r2_k3_s2_e6_i16_o16:ir_r4_k5_s2_e6_i16_o32_se0.25:ir_r3_k3_s1_e6_i32_o32_se0.25:"
          "ir_r3_k5_s2_e6_i32_o88_se0.25:ir_r1_k3_s1_e6_i88_o144")
_MBV2 = ("res224_stem32_head1280_cls1000_relu6:ds_r1_k3_s1_i32_o16:ir_r2_k3_s2_e6_i16_o24:"
         "ir_r3_k3_s2_e6_i24_o32:ir_r4_k3_s2_e6_i32_o64:ir_r3_k3_s1_e6_i64_o96:ir_r3_k3_s2_e6_i96_o160:"
         "ir_r1_k3_s1_e6_i160_o320")

REFERENCES: dict[str, Reference] = {
    r.name: r
    for r in (
        Reference("mnasnet-a1", _A1, "MnasNet-A1 (Tan et al., CVPR 2019), with SE"),
        Reference("mnasnet-b1", _B1, "MnasNet-B1 (TF TPU reference code; the searched model without SE)"),
        Reference("mnasnet-small", _SMALL, "MnasNet-small (TensorFlow TPU reference code)"),
        Reference("mobilenet-v2", _MBV2, "MobileNetV2 (Sandler et al., CVPR 2018)", scale_head=True),
    )
}

_NAME = re.compile(r"^(?P<name>[a-z][a-z0-9\-]*)(?:@(?P<dm>[^,]*)(?:,(?P<res>.*))?)?$")


def looks_like_name(text: str) -> bool:
    """True for ``name`` / ``name@dm[,res]`` (no ':' or '_'), false for a string form."""
    return ":" not in text and "_" not in text


def resolve_reference(text: str) -> Architecture:
    """``mnasnet-a1``, ``mnasnet-a1@0.75``, ``mnasnet-a1@0.75,192`` (or ``@,192``) -> Architecture."""
    m = _NAME.match(text.strip().lower())
    name = m.group("name") if m else text.strip()
    if not m or name not in REFERENCES:
        raise ArchitectureError(f"unknown architecture name {name!r}; known: {', '.join(REFERENCES)} "
                                f"(optionally NAME@MULTIPLIER[,RESOLUTION]), or an architecture string")
    dm_text, res_text = m.group("dm"), m.group("res")
    dm = 1.0
    if dm_text:
        try:
            dm = float(dm_text)
        except ValueError:
            raise ArchitectureError(f"{text}: depth multiplier {dm_text!r} is not a number; "
                                    f"write NAME@MULTIPLIER[,RESOLUTION], e.g. {name}@0.75,192") from None
    res = None
    if res_text:
        try:
            res = int(res_text)
        except ValueError:
            raise ArchitectureError(f"{text}: resolution {res_text!r} is not an integer; "
                                    f"write NAME@MULTIPLIER[,RESOLUTION], e.g. {name}@0.75,192") from None
    return REFERENCES[name].build(dm, res)


def parse_arch(text: str) -> Architecture:
    """A reference name (``mnasnet-a1``, ``mnasnet-a1@0.75,192``) or an architecture string -> Architecture."""
    if not isinstance(text, str):
        raise ArchitectureError(f"expected an architecture name or string, got {type(text).__name__}")
    text = text.strip()
    if text.startswith("{"):
        from latprof.space._arch import arch_from_json

        return arch_from_json(text)
    if text and looks_like_name(text):
        return resolve_reference(text)
    return parse_arch_string(text)


__all__ = ["REFERENCES", "Reference", "parse_arch", "resolve_reference"]
