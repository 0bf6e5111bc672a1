"""``model.compile`` covers the tower's whole computation and compiles once per mode (CPU).

What is checked, with a backend that counts the graphs dynamo hands it and how often each runs
(the ``eager`` / ``aot_eager`` backends: dynamo capture without inductor's C++ build, minutes here):

* PIG's pseudo-query generator and fusion are inside the one training graph (their parameters are
  among its inputs), with no graph break;
* a real ``fit`` of two epochs whose validation split ends with a smaller batch compiles one graph
  for training and one per evaluation method, all in the first epoch, and then runs them at every
  step (nothing falls back to eager);
* compiled outputs, loss and gradients equal eager ones in float32, padded last batch included.
"""

from __future__ import annotations

import copy

import lightning as L
import pytest
import torch
from torch._dynamo.backends.registry import lookup_backend
from torch._dynamo.utils import counters

from pig_lightning.data import AnnotationFiles, VideoTextDataModule
from pig_lightning.losses import symmetric_infonce
from pig_lightning.models import FrameCLIPBackbone, MeanPoolingTower, PIGTower, VideoProxyBackbone
from pig_lightning.module import RetrievalModule

from tests.helpers import TINY_CLIP


class CountingBackend:
    """A ``torch.compile`` backend that records every graph it is given (``graphs``: the graph
    module and its example inputs) and how many times each compiled graph runs (``runs``), then
    compiles with ``inner`` (a registered backend)."""

    def __init__(self, inner: str = "eager"):
        self.inner = lookup_backend(inner)
        self.graphs: list[tuple[torch.fx.GraphModule, list]] = []
        self.runs: list[int] = []

    def __call__(self, gm: torch.fx.GraphModule, example_inputs: list):
        index = len(self.graphs)
        self.graphs.append((gm, list(example_inputs)))
        self.runs.append(0)
        compiled = self.inner(gm, example_inputs)

        def run(*args):
            self.runs[index] += 1
            return compiled(*args)

        return run


@pytest.fixture(autouse=True)
def fresh_dynamo():
    """Compiled code is cached per code object (``PIGTower.training_outputs``) across instances and
    tests: start every test with an empty cache and empty counters, so counts are this test's."""
    torch._dynamo.reset()
    counters.clear()
    yield
    torch._dynamo.reset()


def _pig(tokenizer: str, backend, fusion_dropout: float = 0.1, compile: bool = True) -> RetrievalModule:
    torch.manual_seed(0)
    backbone = VideoProxyBackbone(config=TINY_CLIP, tokenizer=tokenizer, image_size=32, max_text_length=20,
                                  temporal_frames=4)
    tower = PIGTower(backbone, num_frames=4, num_selected=4, fusion_dropout=fusion_dropout)
    return RetrievalModule(tower, lr=1e-3, write_reports=False, compile=compile,
                           compile_options={"backend": backend})


def _batch(videos: int, captions: int = 3, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    texts = videos * captions
    mask = torch.ones(texts, 20, dtype=torch.long)
    mask[:, 12:] = 0  # padded captions, as the collate makes them
    return {"frames": torch.randn(videos, 4, 3, 32, 32, generator=g),
            "input_ids": torch.randint(0, 60, (texts, 20), generator=g), "attention_mask": mask}


def _params_in(graph_inputs: list, module: torch.nn.Module) -> bool:
    inputs = {id(x) for x in graph_inputs}
    return all(id(p) in inputs for p in module.parameters())


def _no_graph_breaks() -> dict:
    return dict(counters["graph_break"])


def test_pig_training_is_one_graph_with_generator_and_fusion(tokenizer_dir):
    counting = CountingBackend("eager")
    model = _pig(tokenizer_dir, counting)
    model.configure_model()
    batch = _batch(4, captions=1)
    for _ in range(2):
        model.tower.training_outputs(batch["frames"], batch["input_ids"], batch["attention_mask"])
    assert _no_graph_breaks() == {}
    assert len(counting.graphs) == 1 and counting.runs == [2]  # one graph, reused
    (gm, inputs), = counting.graphs
    tower = model.tower
    for part in (tower.generator, tower.fusion, tower.backbone.clip.vision_model, tower.backbone.clip.text_model):
        assert _params_in(inputs, part)
    assert "topk" in str(gm.graph)  # token selection is traced too (a static k, no data-dependent shape)


def test_a_baseline_tower_calling_its_own_encoders_stays_one_graph(tokenizer_dir):
    """``Tower.training_outputs`` calls ``self.encode_texts`` / ``self.encode_videos``, which are
    compiled wrappers themselves: they are traced into the caller's graph, not a break."""
    counting = CountingBackend("eager")
    torch.manual_seed(0)
    backbone = FrameCLIPBackbone(config=TINY_CLIP, tokenizer=tokenizer_dir, image_size=32, max_text_length=20)
    model = RetrievalModule(MeanPoolingTower(backbone, num_frames=4), compile=True,
                            compile_options={"backend": counting})
    model.configure_model()
    batch = _batch(4, captions=1)
    model.tower.training_outputs(batch["frames"], batch["input_ids"], batch["attention_mask"])
    assert _no_graph_breaks() == {}
    assert len(counting.graphs) == 1
    for part in (backbone.clip.vision_model, backbone.clip.text_model):  # logit_scale is the loss's
        assert _params_in(counting.graphs[0][1], part)


@pytest.mark.slow  # a real fit
def test_fit_compiles_once_per_mode_despite_a_smaller_last_validation_batch(synthetic_root, tmp_path):
    counting = CountingBackend("eager")
    model = _pig(f"{synthetic_root}/tokenizer", counting)
    # 24 training videos in batches of 8 (the last batch is dropped anyway); 10 validation videos in
    # batches of 4: 4, 4, then 2 (and 12, 12, then 6 captions)
    dm = VideoTextDataModule(AnnotationFiles(synthetic_root, train_annotations=f"{synthetic_root}/train.jsonl",
                                             val_annotations=f"{synthetic_root}/val.jsonl"),
                             tokenizer=f"{synthetic_root}/tokenizer", num_frames=4, image_size=32,
                             max_text_length=20, batch_size=8, eval_batch_size=4, num_workers=0)

    class Count(L.Callback):
        def __init__(self):
            self.after_epoch: list[int] = []
            self.val_batches: list[int] = []

        def on_validation_batch_start(self, trainer, module, batch, batch_idx, dataloader_idx=0):
            self.val_batches.append(batch["frames"].shape[0])

        def on_validation_epoch_end(self, trainer, module):
            self.after_epoch.append(len(counting.graphs))

    count = Count()
    names = list(model.state_dict())
    trainer = L.Trainer(accelerator="cpu", devices=1, max_epochs=2, num_sanity_val_steps=0, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        callbacks=[count], default_root_dir=tmp_path)
    trainer.fit(model, datamodule=dm)
    assert list(model.state_dict()) == names  # compiled methods shadow, never rename: checkpoints unchanged
    assert count.val_batches == [4, 4, 2] * 2  # the split does end with a smaller batch
    assert _no_graph_breaks() == {}
    # training_outputs (train), then evaluation_outputs and encode_texts (eval): all in the first epoch
    assert count.after_epoch == [3, 3]
    assert counting.runs == [6, 6, 6]  # 3 steps x 2 epochs; 3 validation batches x 2: always compiled
    assert _params_in(counting.graphs[0][1], model.tower.generator)
    assert _params_in(counting.graphs[1][1], model.tower.generator)
    assert _params_in(counting.graphs[1][1], model.tower.fusion)


@pytest.mark.slow  # ~30 s: AOT autograd traces forward and backward
def test_compiled_outputs_and_gradients_equal_eager_in_float32(tokenizer_dir):
    """``aot_eager``: AOT autograd's traced forward and backward, as inductor would get them."""
    counting = CountingBackend("aot_eager")
    compiled = _pig(tokenizer_dir, counting, fusion_dropout=0.0)  # no dropout: no random draw to match
    eager = copy.deepcopy(compiled)
    compiled.configure_model()
    batch = _batch(4, captions=1, seed=1)

    def step(model):
        out = model.tower.training_outputs(batch["frames"], batch["input_ids"], batch["attention_mask"])
        loss = symmetric_infonce(out.text_emb, out.video_emb, model.tower.logit_scale, "sum") + out.losses["recon"]
        loss.backward()
        return out, loss, {n: p.grad for n, p in model.named_parameters() if p.grad is not None}

    (out_c, loss_c, grads_c), (out_e, loss_e, grads_e) = step(compiled), step(eager)
    exact = dict(rtol=0, atol=1e-6)
    torch.testing.assert_close(out_c.video_emb, out_e.video_emb, **exact)
    torch.testing.assert_close(out_c.text_emb, out_e.text_emb, **exact)
    torch.testing.assert_close(loss_c, loss_e, **exact)
    assert grads_c.keys() == grads_e.keys() and any(n.startswith("tower.generator.") for n in grads_c)
    for name in grads_c:
        torch.testing.assert_close(grads_c[name], grads_e[name], **exact, msg=name)

    compiled.eval(), eager.eval()
    with torch.inference_mode():  # as Lightning evaluates
        for videos in (4, 2):  # a full batch, then a smaller last one: padded to 4, cut back to 2
            batch = _batch(videos, captions=3, seed=videos)
            (video_c, extras_c), (video_e, extras_e) = (m.tower.evaluation_outputs(batch["frames"])
                                                        for m in (compiled, eager))
            assert video_c.shape == (videos, 32) and extras_c.keys() == extras_e.keys()
            torch.testing.assert_close(video_c, video_e, **exact)
            for key in extras_c:
                torch.testing.assert_close(extras_c[key], extras_e[key], **exact)
            texts_c, texts_e = (m.encode_texts(batch["input_ids"], batch["attention_mask"]) for m in (compiled, eager))
            assert texts_c.shape == (3 * videos, 32)
            torch.testing.assert_close(texts_c, texts_e, **exact)
    assert _no_graph_breaks() == {}
    assert len(counting.graphs) == 3 and counting.runs == [1, 2, 2]  # one graph per method and mode
