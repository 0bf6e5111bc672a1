"""``DDP``: Lightning's ``DDPStrategy`` with its two multi-node options written as config values.

Between nodes the gradient all-reduce is the step's largest cost: PIG B/32 has 165.6 M
parameters, ~662 MB of float32 gradients a step, against ~15 ms of compute at 16 clips per GPU.

* ``comm_hook: bf16`` (or ``fp16``) sends them as 16-bit values (half the bytes) with PyTorch's
  compression hooks: each rank's gradient is rounded to 16 bits, the sum is taken in 16 bits and
  divided by the world size, so the averaged gradient keeps 16-bit precision (bf16: 8 mantissa
  bits, float32's range; fp16: 11 bits, a range that large gradients can overflow). PyTorch runs
  the bf16 hook on CUDA/NCCL only; fp16 also runs over gloo (how the tests check the mechanism). Lightning takes
  a hook *callable* (``ddp_comm_hook``), which a YAML config cannot write; here it is named.
* ``gradient_as_bucket_view: true``: the gradients are views into DDP's communication buckets, so
  the backward pass writes them where the all-reduce reads them (one copy and one gradient's worth
  of memory less per step).

Every other ``DDPStrategy`` argument (``timeout``, ``find_unused_parameters``, ``process_group_backend``,
``start_method``, ...) passes through.
"""

from __future__ import annotations

from typing import Any, Literal

from lightning.pytorch.strategies import DDPStrategy
from torch.distributed.algorithms.ddp_comm_hooks import default_hooks

COMM_HOOKS = {"none": None, "bf16": default_hooks.bf16_compress_hook, "fp16": default_hooks.fp16_compress_hook}


class DDP(DDPStrategy):
    """``DDPStrategy`` with ``comm_hook`` (``none``, ``bf16``, ``fp16``) and ``gradient_as_bucket_view``.

    Args:
        comm_hook: how gradients travel in the all-reduce: ``none`` (float32, exact), ``bf16`` or
            ``fp16`` (half the bytes; the averaged gradient is rounded to 16 bits).
        gradient_as_bucket_view: gradients as views into the all-reduce buckets.
        **kwargs: ``DDPStrategy``'s other arguments.
    """

    def __init__(self, comm_hook: Literal["none", "bf16", "fp16"] = "none", gradient_as_bucket_view: bool = True,
                 **kwargs: Any):
        if comm_hook not in COMM_HOOKS:
            raise ValueError(f"trainer.strategy.comm_hook must be one of {', '.join(COMM_HOOKS)}, got {comm_hook!r}")
        if kwargs.pop("ddp_comm_hook", None) is not None:  # a config parser passes its default, None
            raise ValueError("trainer.strategy: give comm_hook (none, bf16, fp16), not ddp_comm_hook")
        super().__init__(gradient_as_bucket_view=gradient_as_bucket_view, **kwargs)
        self.comm_hook = comm_hook

    def _register_ddp_hooks(self) -> None:
        """Registered on every device: Lightning registers ``ddp_comm_hook`` on CUDA only (a limit of
        PyTorch 1.8); DDP now runs hooks over gloo too, so CPU runs (and tests) take the same path."""
        super()._register_ddp_hooks()
        hook = COMM_HOOKS[self.comm_hook]
        if self.comm_hook == "bf16" and self.root_device.type != "cuda":
            raise ValueError("trainer.strategy.comm_hook bf16 needs CUDA GPUs (NCCL >= 2.10; PyTorch's limit): "
                             f"this run is on {self.root_device.type}; use fp16 or none")
        if hook is not None:
            self.model.register_comm_hook(state=None, hook=hook)
