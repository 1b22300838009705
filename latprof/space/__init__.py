"""Search spaces, architectures, layer configurations and the model builder.

* :class:`Architecture` / :class:`BlockSpec`: an immutable network description;
  :func:`parse_arch` reads a reference name (``mnasnet-a1``,
  ``mnasnet-a1@0.75,192``), an architecture string or its JSON form;
  :func:`format_arch` writes the canonical string; :func:`arch_to_json` /
  :func:`arch_from_json` the JSON form.
* :class:`LayerConfig`: one layer, with its canonical lookup-table key
  (:meth:`LayerConfig.layer_key`) and the TFLite operators it becomes;
  :func:`arch_layers` lists an architecture's layers in run order.
* :func:`count_params_macs`: parameters and multiply-adds without building.
* :class:`SearchSpace`, :class:`MnasNetSpace`, :class:`FBNetSpace` (architectures
  :class:`FBNetArch`), :class:`NASBench201Space` (:class:`NASBench201Arch`), :func:`get_space`:
  spaces, sampling, mutation, token sequences, size and unique layer configurations.
* :meth:`NASBench201Space.program`: a cell network as a list of :class:`Step`;
  :func:`run_program` evaluates one with any backend (writers, Keras, NASWOT).
* :class:`Operator`, :func:`layer_operators`, :func:`tflite_operators`, :func:`op_kind` (:data:`OP_KINDS`),
  :func:`op_family` (:data:`FAMILIES`): the one operator taxonomy and what a layer or a .tflite file runs;
  :func:`recover_layers`: the layers in any .tflite's operator graph.
* :meth:`SearchSpace.encode` / :meth:`SearchSpace.token_slots` (:class:`TokenSlot`): token rows of many
  architectures at once, and the layers each group of tokens decides (the predictors' fast path).
* :func:`model_spec` (:class:`ModelSpec`), :func:`tflite_for`: a model description (a path, an architecture,
  a Keras MobileNet family) and its cached .tflite.
* :func:`build_keras_model`, :func:`export_tflite`, :func:`export_many`, :func:`keras_to_tflite`
  (import TensorFlow on first use; float32, or quantized: :data:`QUANTIZATIONS`, :data:`IO_DTYPES`;
  :func:`quantize_for` a table data type)
  and :func:`read_tflite_ops` (reads any .tflite flatbuffer directly, no TensorFlow).
"""

from latprof.space._arch import Architecture, BlockSpec, arch_from_json, arch_to_json, format_arch
from latprof.space._build import IO_DTYPES, QUANTIZATIONS, quantize_for
from latprof.space._base import Decision, SearchSpace, TokenSlot, get_space, register_space, space_names
from latprof.space._layers import LayerConfig, arch_layers, count_params_macs
from latprof.space._fbnet import FBNetArch, FBNetSpace
from latprof.space._mnasnet import MnasNetSpace
from latprof.space._nasbench201 import NASBench201Arch, NASBench201Space, Step, run_program
from latprof.space._references import REFERENCES, parse_arch
from latprof.space._tflite import TFLiteOp, TFLiteTensor, read_tflite_ops, tflite_params_macs
from latprof.space._flatbuffer import DTYPES as WRITER_DTYPES, write_tflite
from latprof.space._ops import FAMILIES, OP_KINDS, Operator, layer_operators, op_family, op_kind, tflite_operators
from latprof.space._recover import recover_layers
from latprof.space._zoo import ModelSpec, model_spec, tflite_for


def build_keras_model(arch, name=None, batch_size=1):
    """A float32 Keras model (random weights) of an Architecture or a single LayerConfig, batch ``batch_size``
    (None: any). Imports TensorFlow."""
    from latprof.space._build import build_keras_model as _build

    return _build(arch, name=name, batch_size=batch_size)


def export_tflite(arch, path, space=None, *, quantize=None, representative=100, io_dtype="float32"):
    """Build an Architecture (or one LayerConfig, or an architecture of ``space``), convert it to .tflite at
    ``path`` with TensorFlow's converter (float32, or ``quantize`` "int8" / "float16" / "dynamic": see
    :func:`keras_to_tflite`); return the Path."""
    from latprof.space._build import export_tflite as _export

    options = {"quantize": quantize, "representative": representative, "io_dtype": io_dtype}
    if space is None or isinstance(arch, (Architecture, LayerConfig)):
        return _export(arch, path, **options)
    from latprof.cache import write_atomic
    from latprof.space._build import keras_to_tflite as _convert

    return write_atomic(path, _convert(space.keras_model(arch), **options))


def export_many(items, out_dir, workers=None, skip_existing=True, *, quantize=None, representative=100,
                io_dtype="float32"):
    """Export many Architectures/LayerConfigs with a pool of warm worker processes; yield (item, path) in order
    (quantized ones named ``...-int8.tflite`` etc.)."""
    from latprof.space._build import export_many as _many

    return _many(items, out_dir, workers=workers, skip_existing=skip_existing, quantize=quantize,
                 representative=representative, io_dtype=io_dtype)


def quiet_native_stderr():
    """A context manager that hides native (C++) stderr chatter, such as TensorFlow's start-up lines."""
    from latprof.space._build import quiet_native_stderr as _quiet

    return _quiet()


def keras_to_tflite(model, *, quantize=None, representative=100, io_dtype="float32"):
    """Convert a single-input Keras 3 model (batch 1) to .tflite bytes, fast: float32, or ``quantize`` "int8"
    (full integer, calibrated on ``representative``: a sample count or an (N, H, W, C) array; ``io_dtype`` "int8"
    for int8 input/output tensors), "float16" or "dynamic" (int8 weights). Imports TensorFlow."""
    from latprof.space._build import keras_to_tflite as _convert

    return _convert(model, quantize=quantize, representative=representative, io_dtype=io_dtype)


__all__ = [
    "Architecture",
    "BlockSpec",
    "parse_arch",
    "format_arch",
    "arch_to_json",
    "arch_from_json",
    "REFERENCES",
    "LayerConfig",
    "arch_layers",
    "count_params_macs",
    "Decision",
    "SearchSpace",
    "MnasNetSpace",
    "FBNetSpace",
    "FBNetArch",
    "NASBench201Space",
    "NASBench201Arch",
    "Step",
    "run_program",
    "get_space",
    "register_space",
    "space_names",
    "build_keras_model",
    "export_tflite",
    "export_many",
    "keras_to_tflite",
    "QUANTIZATIONS",
    "IO_DTYPES",
    "quantize_for",
    "quiet_native_stderr",
    "TFLiteOp",
    "TFLiteTensor",
    "read_tflite_ops",
    "write_tflite",
    "WRITER_DTYPES",
    "tflite_params_macs",
    "TokenSlot",
    "Operator",
    "layer_operators",
    "tflite_operators",
    "OP_KINDS",
    "op_kind",
    "FAMILIES",
    "op_family",
    "recover_layers",
    "ModelSpec",
    "model_spec",
    "tflite_for",
]
