"""Architecture -> Keras model -> .tflite. TensorFlow is imported here, lazily.

The converter is TensorFlow's own: in TF 2.21 ``tf.lite.TFLiteConverter`` (and
``tf.compat.v1.lite.TFLiteConverter``) are still present and not deprecated;
only the *interpreter* moved to ``ai_edge_litert``, which latprof runs models with.

Conversion path (measured on MobileNetV2 at 224, TF 2.21, 2 cores):

* ``tf.lite.TFLiteConverter.from_keras_model`` exports a SavedModel to a
  temporary directory and reloads it: ~11.6 s.
* ``from_concrete_functions(..., trackable_obj=model)`` takes the same
  SavedModel detour (~8.5 s) and, with Keras 3 models, even leaves the weights
  as resource variables (VAR_HANDLE/READ_VARIABLE ops, BN not folded).
* What we do: trace the model once with ``stateless_call`` and the weights as
  graph constants (no variables, so nothing to freeze), and hand the resulting
  GraphDef to the graph-def converter (``tf.compat.v1.lite.TFLiteConverter``,
  the same MLIR converter and the same TFLite passes). Conversion then takes
  ~0.6 s; building the Keras model and tracing it (~0.6 s each, Python-side)
  dominate. If that converter is ever unavailable we fall back to
  ``from_concrete_functions`` on the constant-weight function (~1.5 s), then to
  ``from_keras_model``. The path taken is in :data:`LAST_CONVERTER`.

BatchNorm is folded into the convolution biases and ReLU/ReLU6 become the
convolutions' fused activation by the converter's own passes, as for any model
deployed on a phone.

Quantized models (``quantize=`` "int8", "float16", "dynamic") go through the same
graph-def converter, with TensorFlow's post-training quantization options. An int8
model asks for integer-only kernels (``TFLITE_BUILTINS_INT8``), yet the graph-def
converter still leaves a few operators in float32 between DEQUANTIZE/QUANTIZE pairs
(seen in latprof's operator probes: a dilated convolution's SPACE_TO_BATCH_ND, the
NEG of a layer normalisation, an up-sampling's TILE); latprof's int8 tables take only
the operators such a model runs in int8.

:func:`export_many` runs exports in warm worker processes (TF imported once per
worker), lazily and in order, so a caller can measure model *i* while models
*i+1...* are being exported.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

from latprof.cache import write_atomic
from latprof.errors import ArchitectureError, CalibrationDataError
from latprof.space._arch import Architecture
from latprof.space._layers import LayerConfig, named_layers

LAST_CONVERTER: dict[str, str] = {"path": ""}  # which conversion path the last export used

_BN_EPS = 1e-3
_BN_MOMENTUM = 0.99


def _keras():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras  # noqa: F401 - Keras 3 on the TensorFlow backend

    return keras


def _act(L, activation: str, name: str):
    if activation == "relu6":
        return L.ReLU(max_value=6.0, name=name)
    if activation == "relu":
        return L.ReLU(name=name)
    raise ArchitectureError(f"unknown activation {activation!r}; allowed: relu, relu6")


def _conv_bn(L, x, filters, kernel, stride, name, activation=None, depthwise=False, groups=1):
    if depthwise:
        x = L.DepthwiseConv2D(kernel, strides=stride, padding="same", use_bias=False, name=name)(x)
    else:
        x = L.Conv2D(filters, kernel, strides=stride, padding="same", groups=groups, use_bias=False, name=name)(x)
    x = L.BatchNormalization(epsilon=_BN_EPS, momentum=_BN_MOMENTUM, name=name + "_bn")(x)
    if activation not in (None, "none"):
        x = _act(L, activation, name + "_act")(x)
    return x


def _channel_shuffle(L, x, groups: int, name: str):
    """ShuffleNet's channel shuffle in 4-D (the converter makes it RESHAPE -> TRANSPOSE -> RESHAPE)."""
    _, h, w, c = x.shape
    x = L.Reshape((h * w, groups, c // groups), name=name + "_split")(x)
    x = L.Permute((1, 3, 2), name=name + "_swap")(x)
    return L.Reshape((h, w, c), name=name + "_merge")(x)


def apply_layer(x, layer: LayerConfig, name: str):
    """Add the Keras layers of one :class:`LayerConfig` after tensor ``x``; return the output tensor."""
    L = _keras().layers
    if layer.op == "fc":
        x = L.GlobalAveragePooling2D(name=name + "_pool")(x)
        # A random (not zero) bias, as in a trained model: the converter drops an all-zero FC bias.
        x = L.Dense(layer.out_channels, bias_initializer="random_normal", name=name + "_fc")(x)
        return L.Softmax(name=name + "_softmax")(x)
    if layer.is_cell_piece:
        return apply_cell_layer(x, layer, name)
    inp = x
    act = layer.activation
    if layer.op == "cn":
        x = _conv_bn(L, x, layer.out_channels, layer.kernel, layer.stride, name + "_conv", act)
    else:
        if layer.op == "ir":
            x = _conv_bn(L, x, layer.mid_channels, 1, 1, name + "_expand", act, groups=layer.groups)
            if layer.groups > 1:
                x = _channel_shuffle(L, x, layer.groups, name + "_shuffle")
        x = _conv_bn(L, x, None, layer.kernel, layer.stride, name + "_dw", act, depthwise=True)
    if layer.se_ratio > 0:
        s = L.GlobalAveragePooling2D(keepdims=True, name=name + "_se_pool")(x)
        s = L.Conv2D(layer.se_channels, 1, activation="relu", name=name + "_se_reduce")(s)
        s = L.Conv2D(layer.mid_channels, 1, activation="sigmoid", name=name + "_se_expand")(s)
        x = L.Multiply(name=name + "_se_scale")([x, s])
    if layer.op in ("ds", "ir"):
        x = _conv_bn(L, x, layer.out_channels, 1, 1, name + "_project", groups=layer.groups)
    if layer.skip == "id":
        x = L.Add(name=name + "_add")([x, inp])
    elif layer.skip == "pool":
        sc = L.AveragePooling2D(3, strides=layer.stride, padding="same", name=name + "_skip_pool")(inp)
        if layer.has_projection_shortcut:
            sc = L.Conv2D(layer.out_channels, 1, name=name + "_skip_proj")(sc)
        x = L.Add(name=name + "_add")([x, sc])
    return x


def apply_cell_layer(x, layer: LayerConfig, name: str, other=None):
    """A NAS-Bench-201 piece after ``x`` (the ReLU of its ``ReLUConvBN``, ``POOLING``, ``ResNetBasicblock``,
    node sums and ``lastact``); ``other``: an ``add``'s second operand (default ``x`` itself, as in a single-layer model)."""
    keras = _keras()
    L = keras.layers
    c = layer.out_channels
    if layer.op == "relu":
        return L.ReLU(name=name + "_relu")(x)
    if layer.op == "pool":
        return L.AveragePooling2D(3, strides=1, padding="same", name=name + "_pool")(x)
    if layer.op == "add":
        return L.Add(name=name + "_add")([x, x if other is None else other])
    if layer.op == "bnrelu":
        x = L.BatchNormalization(epsilon=_BN_EPS, momentum=_BN_MOMENTUM, name=name + "_bn")(x)
        return L.ReLU(name=name + "_relu")(x)
    inp = x  # "res"
    x = L.ReLU(name=name + "_relu")(x)
    x = _conv_bn(L, x, c, 3, layer.stride, name + "_conv_a", "relu")
    x = _conv_bn(L, x, c, 3, 1, name + "_conv_b")
    sc = L.AveragePooling2D(layer.stride, strides=layer.stride, padding="valid", name=name + "_down_pool")(inp)
    sc = L.Conv2D(c, 1, use_bias=False, name=name + "_down_conv")(sc)
    return L.Add(name=name + "_add")([sc, x])


def build_keras_model(arch: Architecture | LayerConfig, name: str | None = None, batch_size: int | None = 1):
    """A float32 Keras model of ``arch`` (or of a single layer) with random weights (``weights=None``).

    Batch size is fixed to ``batch_size`` (1: what runs on a device; None: any, for training), input is
    ``resolution x resolution x channels``.
    """
    keras = _keras()
    if isinstance(arch, LayerConfig):
        layer = arch
        inp = keras.Input((layer.resolution, layer.resolution, layer.in_channels), batch_size=1, name="input")
        out = apply_layer(inp, layer, "layer")
        return keras.Model(inp, out, name=name or "layer")
    if not isinstance(arch, Architecture):
        raise ArchitectureError(f"expected an Architecture or LayerConfig, got {type(arch).__name__}")
    inp = keras.Input((arch.resolution, arch.resolution, 3), batch_size=batch_size, name="input")
    x = inp
    for lname, layer in named_layers(arch):
        x = apply_layer(x, layer, lname.replace(".", "_"))
    return keras.Model(inp, x, name=name or (arch.name or "arch").replace("@", "_").replace(",", "_"))


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Hide TensorFlow's C++ start-up and converter chatter (written to fd 2 before absl logging is set up).

    The captured text is replayed if the block raises, so nothing useful is lost.
    ``LATPROF_TF_VERBOSE=1`` disables the capture.
    """
    if os.environ.get("LATPROF_TF_VERBOSE") == "1":
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real fd 2 (e.g. some embedded interpreters)
        yield
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            capture.seek(0)
            sys.stderr.write(capture.read().decode("utf-8", "replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


QUANTIZATIONS = ("int8", "float16", "dynamic")  # keras_to_tflite's ``quantize`` values besides None (float32)
IO_DTYPES = ("float32", "int8")  # ``io_dtype``: the input/output tensors' type (int8 only with quantize="int8")


# The ``quantize`` value that exports a model of each data type (model_dtype's names); uint8: TFLite's older
# 8-bit kernels run the same graph, which the converter writes in int8.
_QUANTIZE_FOR = {"float32": None, "int8": "int8", "uint8": "int8", "float16": "float16", "int8-weights": "dynamic"}


def quantize_for(dtype: str) -> str | None:
    """The ``quantize`` value that exports a model computing in ``dtype`` (None: float32); ArchitectureError for a
    data type the converter cannot write."""
    if dtype not in _QUANTIZE_FOR:
        raise ArchitectureError(f"latprof cannot export a {dtype} model; export one of: {', '.join(_QUANTIZE_FOR)}, "
                                "or give the .tflite file")
    return _QUANTIZE_FOR[dtype]
_REPRESENTATIVE_SEED = 0


def _check_quantization(quantize: str | None, io_dtype: str) -> None:
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise ArchitectureError(f"unknown quantization {quantize!r}; allowed: {', '.join(QUANTIZATIONS)} "
                                f"(or none for float32)")
    if io_dtype not in IO_DTYPES:
        raise ArchitectureError(f"unknown input/output dtype {io_dtype!r}; allowed: {', '.join(IO_DTYPES)}")
    if io_dtype != "float32" and quantize != "int8":
        raise ArchitectureError(f"io_dtype {io_dtype!r} needs quantize='int8' (other models take float32 inputs)")


def _representative_dataset(representative: Any, shape: list[int]):
    """A ``representative_dataset`` callable: N seeded uniform [-1, 1] inputs, or the samples of a given array."""
    import numpy as np

    if isinstance(representative, (int, np.integer)) and not isinstance(representative, bool):
        if representative < 1:
            raise CalibrationDataError(f"representative={representative}: give at least 1 calibration sample")

        def generate():
            rng = np.random.default_rng(_REPRESENTATIVE_SEED)
            for _ in range(int(representative)):
                yield [rng.uniform(-1.0, 1.0, size=shape).astype(np.float32)]

        return generate
    expected = "(N, " + ", ".join(str(d) for d in shape[1:]) + ")"
    try:
        data = np.asarray(representative)
    except ValueError:  # ragged nested lists
        raise CalibrationDataError(f"representative data is not an array; expected shape {expected}") from None
    if data.ndim != len(shape) or tuple(data.shape[1:]) != tuple(shape[1:]) or data.shape[0] < 1:
        raise CalibrationDataError(f"representative data has shape {tuple(data.shape)}; expected {expected}, "
                                   f"N >= 1 samples of the model input")
    if not (np.issubdtype(data.dtype, np.floating) or np.issubdtype(data.dtype, np.integer)):
        raise CalibrationDataError(f"representative data has dtype {data.dtype}; expected numbers of shape {expected}")
    samples = data.astype(np.float32)

    def given():
        for sample in samples:
            yield [sample[None]]

    return given


def _configure(converter: Any, quantize: str | None, dataset: Any, io_dtype: str) -> None:
    import tensorflow as tf

    if quantize is None:
        return
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif quantize == "int8":
        converter.representative_dataset = dataset
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if io_dtype == "int8":
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8


def keras_to_tflite(model: Any, timings: dict[str, float] | None = None, *, quantize: str | None = None,
                    representative: Any = 100, io_dtype: str = "float32") -> bytes:
    """Convert a Keras 3 model (single input; batch fixed to 1) to a .tflite flatbuffer.

    ``quantize``: None (float32), ``"int8"`` (full-integer post-training quantization: int8 weights and
    activations, per-channel conv weights; with ``io_dtype="float32"`` a QUANTIZE first and a DEQUANTIZE
    last keep float I/O, with ``io_dtype="int8"`` the input and output tensors are int8), ``"float16"``
    (float16 weights, DEQUANTIZEd to float32 at load) or ``"dynamic"`` (dynamic-range: int8 weights,
    float activations; the converter leaves weights of fewer than 1024 elements float32, so a tiny model
    may come out all float32). ``representative`` calibrates int8 activation ranges: an int N (N inputs drawn
    uniform in [-1, 1], seeded, so the same model converts to the same bytes) or an array of shape
    (N, H, W, C) of real inputs. Calibration is the cost: MobileNetV2 at 224 (``mobilenet-v2``, 2 shared
    cores, two runs each, interleaved) converts in 9.0-10.1 s with N = 100 and 1.6 s with N = 10 (about
    85 ms a sample) against 0.4 s in float32; the whole ``latprof arch export mobilenet-v2`` takes 16-18 s
    with ``--quantize int8`` against 5-6 s.
    ``timings``, if given, receives the seconds spent tracing (``trace``) and converting (``convert``).
    """
    _check_quantization(quantize, io_dtype)
    _keras()
    import tensorflow as tf

    if len(model.inputs) != 1:
        raise ArchitectureError(f"only single-input models are supported, this one has {len(model.inputs)}")
    shape = [1] + [int(d) if d is not None else -1 for d in model.inputs[0].shape[1:]]
    if -1 in shape:
        raise ArchitectureError(f"the model input has unknown dimensions {tuple(model.inputs[0].shape)}; "
                                f"give it a fixed input shape")
    dataset = _representative_dataset(representative, shape) if quantize == "int8" else None  # fails before tracing
    t0 = time.perf_counter()
    trainable = [v.numpy() for v in model.trainable_variables]
    non_trainable = [v.numpy() for v in model.non_trainable_variables]

    @tf.function(input_signature=[tf.TensorSpec(shape, tf.float32, name="input")], autograph=False)
    def forward(x):
        out, _ = model.stateless_call(
            [tf.constant(a) for a in trainable], [tf.constant(a) for a in non_trainable], x, training=False
        )
        return out

    concrete = forward.get_concrete_function()
    t1 = time.perf_counter()
    if timings is not None:
        timings["trace"] = t1 - t0
    def graphdef_converter():
        graph_def = concrete.graph.as_graph_def()
        inputs = [t.name.split(":")[0] for t in concrete.inputs]
        outputs = [t.name.split(":")[0] for t in concrete.outputs]
        return tf.compat.v1.lite.TFLiteConverter(
            graph_def, None, None, input_arrays_with_shape=[(inputs[0], shape)], output_arrays=outputs
        )

    paths = (
        ("graphdef (tf.compat.v1.lite.TFLiteConverter)", graphdef_converter),
        ("from_concrete_functions", lambda: tf.lite.TFLiteConverter.from_concrete_functions([concrete])),
        ("from_keras_model", lambda: tf.lite.TFLiteConverter.from_keras_model(model)),
    )
    for i, (name, make) in enumerate(paths):
        try:
            converter = make()
            _configure(converter, quantize, dataset, io_dtype)
            data = converter.convert()
        except (AttributeError, TypeError, ImportError):
            # This converter entry point is missing or changed in this TensorFlow: try the next one.
            if i == len(paths) - 1:
                raise
            continue
        LAST_CONVERTER["path"] = name
        if timings is not None:
            timings["convert"] = time.perf_counter() - t1
        return data
    raise AssertionError("unreachable")


def export_tflite(arch: Architecture | LayerConfig, path: str | os.PathLike,
                  timings: dict[str, float] | None = None, *, quantize: str | None = None,
                  representative: Any = 100, io_dtype: str = "float32") -> Path:
    """Build ``arch`` (or one layer), convert it to TFLite and write it to ``path``.

    ``quantize``, ``representative``, ``io_dtype``: as for :func:`keras_to_tflite` (default float32).
    ``timings``, if given, receives seconds for ``build``, ``trace`` and ``convert``.
    """
    _check_quantization(quantize, io_dtype)
    t0 = time.perf_counter()
    model = build_keras_model(arch)
    if timings is not None:
        timings["build"] = time.perf_counter() - t0
    data = keras_to_tflite(model, timings, quantize=quantize, representative=representative, io_dtype=io_dtype)
    return write_atomic(path, data)


def default_export_name(item: Architecture | LayerConfig, quantize: str | None = None,
                        io_dtype: str = "float32") -> str:
    """File name for an exported item: the layer key for a layer, a hash of the string for an architecture;
    a quantized model's name ends ``-{quantize}`` (``-int8-io8`` with int8 I/O) before ``.tflite``."""
    suffix = "" if quantize is None else f"-{quantize}" + ("-io8" if io_dtype == "int8" else "")
    if isinstance(item, LayerConfig):
        return item.layer_key() + suffix + ".tflite"
    import hashlib

    from latprof.space._arch import format_arch

    return "arch-" + hashlib.sha1(format_arch(item).encode()).hexdigest()[:12] + suffix + ".tflite"


def _job(item: Architecture | LayerConfig, path: str, quantize: str | None = None, representative: int = 100,
         io_dtype: str = "float32") -> str:
    import json
    from dataclasses import asdict

    from latprof.space._arch import format_arch

    job: dict[str, Any] = {"layer": asdict(item)} if isinstance(item, LayerConfig) else {"arch": format_arch(item)}
    job["path"] = path
    if quantize is not None:
        job.update(quantize=quantize, representative=representative, io_dtype=io_dtype)
    return json.dumps(job)


class _Worker:
    """One ``python -m latprof.space._export_worker`` process: a job (JSON line) in, a result line out."""

    def __init__(self) -> None:
        import subprocess

        self.proc = subprocess.Popen(
            [sys.executable, "-m", "latprof.space._export_worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True, bufsize=1,
        )

    def run(self, line: str) -> dict:
        import json

        try:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
            reply = self.proc.stdout.readline()
        except (BrokenPipeError, OSError):
            reply = ""
        if not reply:
            code = self.proc.poll()
            return {"ok": False, "error": f"the export worker died (exit code {code})"}
        return json.loads(reply)

    def close(self) -> None:
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
        except Exception:  # noqa: BLE001 - best effort shutdown
            self.proc.kill()
            self.proc.wait()


def export_many(items, out_dir: str | os.PathLike, workers: int | None = None, skip_existing: bool = True, *,
                quantize: str | None = None, representative: int = 100,
                io_dtype: str = "float32") -> Iterator[tuple[Architecture | LayerConfig, Path]]:
    """Export many architectures or layers with a pool of warm worker processes; yield ``(item, path)`` in order.

    Each worker (a ``python -m latprof.space._export_worker`` child) imports
    TensorFlow once and then exports back to back, so the start-up cost (TF
    import ~5 s, first conversion ~3 s) is paid once per worker. The generator
    is lazy: a caller that measures item *i* while the pool exports items
    *i+1...* overlaps export with measurement. ``workers`` defaults to the
    number of CPUs (at most 4); existing files are reused when ``skip_existing``.
    ``quantize``, ``representative`` (a sample count here), ``io_dtype``: as for :func:`keras_to_tflite`;
    quantized files get their own names (:func:`default_export_name`).
    Raises ArchitectureError naming the item if an export fails.
    """
    import queue
    import threading

    _check_quantization(quantize, io_dtype)
    if isinstance(representative, bool) or not isinstance(representative, int):
        raise ArchitectureError(f"export_many takes a sample count as representative, not "
                                f"{type(representative).__name__}; use export_tflite to calibrate on given data")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    items = list(items)
    paths = [out / default_export_name(item, quantize, io_dtype) for item in items]
    todo = [i for i, p in enumerate(paths) if not (skip_existing and p.exists())]
    if workers is None:
        workers = max(1, min(4, os.cpu_count() or 1))
    jobs: queue.Queue = queue.Queue()
    for i in todo:
        jobs.put(i)
    results: dict[int, dict] = {}
    done = {i: threading.Event() for i in todo}
    stop = threading.Event()

    def serve() -> None:
        worker = _Worker()
        try:
            while not stop.is_set():
                try:
                    i = jobs.get_nowait()
                except queue.Empty:
                    return
                results[i] = worker.run(_job(items[i], str(paths[i]), quantize, representative, io_dtype))
                done[i].set()
                if not results[i].get("ok") and "died" in results[i].get("error", ""):
                    worker.close()
                    worker = _Worker()
        finally:
            worker.close()

    threads = [threading.Thread(target=serve, daemon=True) for _ in range(min(workers, len(todo)))]
    for t in threads:
        t.start()
    try:
        for i, (item, path) in enumerate(zip(items, paths)):
            if i in done:
                done[i].wait()
                r = results[i]
                if not r.get("ok"):
                    from latprof.space._arch import format_arch

                    what = item.layer_key() if isinstance(item, LayerConfig) else format_arch(item)
                    raise ArchitectureError(f"export of {what} failed: {r.get('error')}")
            yield item, path
    finally:
        stop.set()
        for t in threads:
            t.join()
