"""``--float32_matmul_precision high`` (TF32 on GPUs) for training, never for evaluation's scores."""

import pytest
import torch

from pig_lightning.commands.train import run_cli
from pig_lightning.evaluation.distributed import EvaluationCollector, evaluate

from tests.helpers import SMALL_SYNTHETIC


@pytest.fixture
def restore_precision():
    previous = torch.get_float32_matmul_precision()
    yield
    torch.set_float32_matmul_precision(previous)


def test_evaluation_scores_with_full_float32_whatever_the_run_chose(restore_precision):
    torch.set_float32_matmul_precision("high")
    seen = []

    def score(texts, videos):  # a tower's score, recording the precision it ran under
        seen.append(torch.get_float32_matmul_precision())
        return texts @ videos.T

    collected = EvaluationCollector()
    g = torch.Generator().manual_seed(0)
    batch = {"video_index": torch.arange(4), "text_index": torch.arange(4), "text_video": torch.arange(4)}
    collected.add(batch, torch.randn(4, 8, generator=g), torch.randn(4, 8, generator=g))
    metrics, _ = evaluate(collected, score, "two-tower", "cpu")
    assert seen and set(seen) == {"highest"}
    assert torch.get_float32_matmul_precision() == "high"  # restored for training
    assert 0 <= metrics["t2v/R@1"] <= 100


@pytest.mark.slow  # a CLI fit of two steps
def test_the_cli_sets_the_runs_precision(restore_precision, synthetic_root, tmp_path):
    torch.set_float32_matmul_precision("highest")
    small = [f"--data.source.{k}={getattr(SMALL_SYNTHETIC, k)}" for k in
             ("num_train", "num_val", "num_test", "captions_per_video", "frame_size", "frames_per_event")]
    run_cli(["fit", "--config", "conf/demo.yaml", f"--data.source.root={synthetic_root}", *small,
             f"--data.source.synthetic_seed={SMALL_SYNTHETIC.seed}", "--trainer.max_steps=1", "--data.batch_size=8",
             "--data.num_workers=0", "--trainer.enable_progress_bar=false", "--trainer.limit_val_batches=0",
             f"--trainer.logger.init_args.save_dir={tmp_path}", "--float32_matmul_precision=high"])
    assert torch.get_float32_matmul_precision() == "high"
