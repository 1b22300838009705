"""Cut a .tflite model into single-operator models, for host per-op timing."""

from __future__ import annotations

import copy
from collections.abc import Iterator


def _is_constant(model, tensor) -> bool:
    if tensor.buffer <= 0 or tensor.buffer >= len(model.buffers):
        return False
    buffer = model.buffers[tensor.buffer]
    return buffer.data is not None and len(buffer.data) > 0


def single_op_models(model_path: str) -> Iterator[tuple[str, str, bytes]]:
    """Yield ``(node_type, name, model_bytes)`` for each operator of subgraph 0, in run order.

    Each model holds one operator, its constant tensors (weights) and its
    activations as graph inputs/outputs, so it can be timed on its own.
    """
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils as fb

    model = fb.read_model(model_path)
    graph = model.subgraphs[0]
    for op in graph.operators:
        node_type = fb.opcode_to_name(model, op.opcodeIndex) or "UNKNOWN"
        outputs = [int(i) for i in op.outputs]
        name = graph.tensors[outputs[0]].name if outputs else node_type
        name = name.decode() if isinstance(name, bytes) else str(name)

        sub = schema.SubGraphT()
        sub.tensors, sub.inputs = [], []
        buffers = [schema.BufferT()]
        remap: dict[int, int] = {}

        def add_tensor(index: int) -> int:
            if index < 0:
                return index
            if index not in remap:
                tensor = copy.copy(graph.tensors[index])
                if _is_constant(model, tensor):
                    buffers.append(model.buffers[tensor.buffer])
                    tensor.buffer = len(buffers) - 1
                else:
                    buffers.append(schema.BufferT())
                    tensor.buffer = len(buffers) - 1
                    if index not in outputs:
                        sub.inputs.append(len(sub.tensors))
                remap[index] = len(sub.tensors)
                sub.tensors.append(tensor)
            return remap[index]

        new_op = copy.copy(op)
        new_op.inputs = [add_tensor(int(i)) for i in op.inputs]
        new_op.outputs = [add_tensor(i) for i in outputs]
        new_op.intermediates = []
        sub.outputs = list(new_op.outputs)
        sub.operators = [new_op]
        sub.name = b"latprof_single_op"

        single = schema.ModelT()
        single.version = model.version
        single.operatorCodes = model.operatorCodes
        single.subgraphs = [sub]
        single.buffers = buffers
        single.description = b"latprof single-op slice"
        yield node_type, name, bytes(fb.convert_object_to_bytearray(single))
