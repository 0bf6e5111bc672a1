"""``model.compile``: a tower's methods compiled whole, once per mode (training, evaluation).

:func:`compile_tower` replaces the tower's methods that :class:`~pig_lightning.module.RetrievalModule`
calls by compiled ones (instance attributes shadow the methods: ``state_dict`` and checkpoints are
unchanged). See ``RetrievalModule``'s ``compile`` argument for what that covers and the one known
graph break.
"""

from __future__ import annotations

from typing import Any

import torch

#: The tower methods this module calls, each compiled whole by ``compile`` (for PIG: backbone, token
#: selection, generator and fusion in one graph), and whether each output row depends on its own input
#: row only (the tower contract's encoders: a stored video vector cannot depend on its batch), which is
#: what lets an evaluation batch be padded to a size already compiled (:class:`CompiledTowerMethod`).
#: ``training_outputs`` is not: its loss terms average over the batch.
COMPILED_TOWER_METHODS = {"training_outputs": False, "evaluation_outputs": True, "encode_videos": True,
                          "encode_texts": True}
#: The backbone's encoders, also compiled on their own: the tower's compiled methods trace them inline
#: (dynamo inlines a compiled function it meets), so this only serves code that calls the backbone directly.
COMPILED_METHODS = ("encode_frames", "forward_video", "encode_text")


def compile_tower(tower: torch.nn.Module, options: dict[str, Any]) -> None:
    """Compile ``tower``'s :data:`COMPILED_TOWER_METHODS` (and its backbone's :data:`COMPILED_METHODS`)
    in place with ``torch.compile(**options)``."""
    backbone = getattr(tower, "backbone", None)
    for name in COMPILED_METHODS if backbone is not None else ():
        if callable(getattr(backbone, name, None)):
            setattr(backbone, name, torch.compile(getattr(backbone, name), **options))
    for name, rows_independent in COMPILED_TOWER_METHODS.items():
        method = getattr(tower, name, None)
        if callable(method):
            setattr(tower, name, CompiledTowerMethod(tower, method, torch.compile(method, **options),
                                                     pad_in_evaluation=rows_independent))


class CompiledTowerMethod:
    """A tower method run through its compiled version; in evaluation, padded to one batch size.

    Called from inside another compiled method (a tower's ``training_outputs`` calling its own
    ``encode_texts``), it runs the plain method, so dynamo traces it into that caller's graph
    instead of stopping at a second compiled function.

    ``pad_in_evaluation``: the method's outputs are per row of its inputs (``encode_texts``,
    ``encode_videos``, ``evaluation_outputs``). While the tower is in eval mode, a batch smaller
    than the largest one seen (an evaluation split's last batch; texts are padded on their own,
    as captions per video may vary) is padded by repeating its last row and every tensor in the
    result is cut back to the real rows: the compiled graph of the full batch is reused instead of
    a recompilation per size. In eval mode no row can see another (no dropout, no batch
    statistics), so the real rows' values are those of an unpadded call. In train mode the
    method is called as it is (a dropout or random draw per row would differ across sizes anyway,
    and training batches have one size). Static padded shapes, rather than a dynamic batch size,
    keep inductor's specialised kernels and CUDA graphs usable; a batch larger than any before
    raises the padded size, and dynamo then recompiles once with a dynamic batch dimension
    (``automatic_dynamic_shapes``), so compilations stay bounded whatever the sizes.
    """

    def __init__(self, tower: torch.nn.Module, method, compiled, pad_in_evaluation: bool):
        self.tower = tower
        self.method = method
        self.compiled = compiled
        self.pad_in_evaluation = pad_in_evaluation
        self.rows = 0  # the largest evaluation batch so far: the padded size

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if torch.compiler.is_compiling():  # traced into the calling compiled method's graph
            return self.method(*args, **kwargs)
        if not self.pad_in_evaluation or self.tower.training:
            return self.compiled(*args, **kwargs)
        rows = next((a.shape[0] for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor) and a.ndim), 0)
        self.rows = max(self.rows, rows)
        if rows in (0, self.rows):
            return self.compiled(*args, **kwargs)
        pad = lambda a: _pad_rows(a, rows, self.rows)  # noqa: E731
        out = self.compiled(*map(pad, args), **{k: pad(v) for k, v in kwargs.items()})
        return _first_rows(out, rows)


def _pad_rows(value: Any, rows: int, size: int) -> Any:
    """A batch-major tensor of ``rows`` rows grown to ``size`` by repeating its last row (a real
    input, so the padding computes nothing a real row could not: no NaN from an empty caption)."""
    if isinstance(value, torch.Tensor) and value.ndim and value.shape[0] == rows:
        return torch.cat([value, value[-1:].expand(size - rows, *value.shape[1:])])
    return value


def _first_rows(value: Any, rows: int) -> Any:
    """Every tensor in ``value`` (nested in tuples, lists, dicts) cut to its first ``rows`` rows."""
    if isinstance(value, torch.Tensor):
        return value[:rows] if value.ndim else value
    if isinstance(value, dict):
        return {key: _first_rows(item, rows) for key, item in value.items()}
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # a named tuple
        return type(value)(*(_first_rows(item, rows) for item in value))
    if isinstance(value, (tuple, list)):
        return type(value)(_first_rows(item, rows) for item in value)
    return value
