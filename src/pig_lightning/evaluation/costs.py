"""What a tower costs online and stores offline, counted rather than asserted.

``torch.utils.flop_counter`` counts a multiply-add as 2 FLOPs. PyTorch does not count its CPU
fused attention kernel, so a formula for it (the two matrix products; its backward: four) is registered here, and
``nn.TransformerEncoder``'s fused inference path (invisible to the counter) is switched off while
counting. Used by ``pig-lightning compare``, the demo and the benchmarks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode, register_flop_formula, sdpa_backward_flop_count


@register_flop_formula(torch.ops.aten._scaled_dot_product_flash_attention_for_cpu)
def _cpu_sdpa_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    b, h, lq, d = query_shape
    return 2 * b * h * lq * key_shape[-2] * d + 2 * b * h * lq * key_shape[-2] * value_shape[-1]


@register_flop_formula(torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward)
def _cpu_sdpa_backward_flops(grad_out_shape, query_shape, key_shape, value_shape, *args, out_shape=None,
                             **kwargs) -> int:
    """Its backward, as PyTorch counts the GPU kernels' (four matrix products: twice the forward)."""
    return sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape, value_shape)


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of one call of ``fn``."""
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with FlopCounterMode(display=False) as counter:
            fn()
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    return counter.get_total_flops()


@dataclass(frozen=True)
class OnlineCost:
    """Per query against a gallery of ``gallery`` videos."""

    gallery: int
    text_flops: int  # encoding the query
    score_flops: int  # scoring it against every stored video
    stored_floats: int  # what is stored per video

    @property
    def flops(self) -> int:
        return self.text_flops + self.score_flops


def online_cost(tower: torch.nn.Module, frames: torch.Tensor, input_ids: torch.Tensor,
                attention_mask: torch.Tensor, gallery: int) -> OnlineCost:
    """Online cost of one query (``input_ids [1, L]``) against ``gallery`` videos shaped like what
    ``tower.encode_videos(frames)`` stores (``frames [1, T, 3, H, W]``; values do not matter)."""
    was_training = tower.training
    tower.eval()
    try:
        with torch.no_grad():
            stored = tower.encode_videos(frames)[:1]
            store = stored.expand(gallery, *stored.shape[1:]).contiguous()
            text = tower.encode_texts(input_ids, attention_mask)
            return OnlineCost(
                gallery=gallery,
                text_flops=count_flops(lambda: tower.encode_texts(input_ids, attention_mask)),
                score_flops=count_flops(lambda: tower.score(text, store)),
                stored_floats=int(stored[0].numel()),
            )
    finally:
        tower.train(was_training)
