"""Qualitative images in TensorBoard: logged at each validation by rank 0, read back from the event file."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml
from lightning.pytorch.loggers import TensorBoardLogger

from pig_lightning.commands.train import run_cli
from pig_lightning.training.qualitative import QualitativeImages, rank_videos

from tests.helpers import pig_tower
from tests.helpers import write_config

pytestmark = pytest.mark.slow  # trains or launches processes

VIDEO_TAGS = ("qualitative/video_1", "qualitative/video_2")
QUERY_TAGS = ("qualitative/query_1", "qualitative/query_2")


def _fit(tmp_path: Path, synthetic_root: str, *args: str, pig: bool = False, **trainer):
    tmp_path.mkdir(parents=True, exist_ok=True)
    config = write_config(tmp_path, synthetic_root, **trainer)
    if pig:
        data = yaml.safe_load(config.read_text())
        data["model"]["tower"] = pig_tower(data["model"]["tower"]["init_args"]["backbone"]["init_args"])
        config.write_text(yaml.safe_dump(data))
    cli = run_cli(["fit", "--config", str(config), *args])
    return cli, tmp_path / "runs" / "t" / "version_0"


def _images(run_dir: Path) -> dict[str, list]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir), size_guidance={"images": 0})
    events.Reload()
    return {tag: events.Images(tag) for tag in events.Tags()["images"]}


def _callback(cli) -> QualitativeImages:
    return next(c for c in cli.trainer.callbacks if isinstance(c, QualitativeImages))


def test_pig_fit_logs_its_videos_and_queries_at_every_validation(tmp_path, synthetic_root):
    cli, run_dir = _fit(tmp_path, synthetic_root, pig=True)  # validations at steps 2 and 4
    images = _images(run_dir)
    assert sorted(images) == sorted(VIDEO_TAGS + QUERY_TAGS)
    for tag, events in images.items():
        assert [e.step for e in events] == [2, 4], tag
        assert all(300 <= e.width <= 1500 and 150 <= e.height <= 1000 for e in events), tag
    callback = _callback(cli)
    assert callback.validations == 2 and callback.last_seconds is not None

    # the top-5 strips are drawn from these rankings: the first captions, the true video marked
    report = json.loads((run_dir / "val_report.json").read_text())["per_query"]
    assert [r.text_index for r in callback.last_rankings] == [0, 1]
    for ranking in callback.last_rankings:
        hits = ranking.hits
        assert [h.rank for h in hits] == [1, 2, 3, 4, 5] and ranking.num_videos == 10
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        assert ranking.true_rank == report["t2v_rank"][report["text_index"].index(ranking.text_index)]
        true_hits = [h for h in hits if h.is_true]
        assert len(true_hits) == (1 if ranking.true_rank <= 5 else 0)
        assert all(h.video_id == ranking.true_video_id and h.rank == ranking.true_rank for h in true_hits)
    assert cli.model.training  # the drawing left the module as it found it


def test_a_two_tower_run_gets_the_images_and_enabled_false_none(tmp_path, synthetic_root):
    _, run_dir = _fit(tmp_path / "on", synthetic_root, "--qualitative.num_videos", "1", max_steps=2)
    images = _images(run_dir)
    assert sorted(images) == sorted(VIDEO_TAGS[:1] + QUERY_TAGS) and all(len(e) == 1 for e in images.values())
    cli, run_dir = _fit(tmp_path / "off", synthetic_root, "--qualitative.enabled", "false", max_steps=2)
    assert _images(run_dir) == {} and _callback(cli).validations == 0


def test_rank_videos_marks_the_true_video_and_counts_ties_against_it():
    scores = torch.tensor([0.1, 0.5, 0.3, 0.5, 0.2])
    index = torch.tensor([10, 11, 12, 13, 14])
    ids = [f"v{i}" for i in range(10, 15)]
    hits, true_rank = rank_videos(scores, index, ids, true_column=3, top_k=3)
    assert [(h.rank, h.video_id, h.is_true) for h in hits] == [(1, "v11", False), (2, "v13", True), (3, "v12", False)]
    assert true_rank == 2  # the tie with v11 counts against it, as the metrics count
    hits, true_rank = rank_videos(scores, index, ids, true_column=0, top_k=3)
    assert not any(h.is_true for h in hits) and true_rank == 5


def _trainer(**overrides) -> SimpleNamespace:
    return SimpleNamespace(**{"loggers": [], "sanity_checking": False, "is_global_zero": True, **overrides})


def test_no_tensorboard_logger_sanity_checks_and_other_ranks_draw_nothing(caplog, tmp_path):
    callback = QualitativeImages()
    with caplog.at_level(logging.INFO, logger="pig_lightning.training.qualitative"):
        for _ in range(2):
            callback.on_validation_start(_trainer(), None)
            assert not callback._drawing
    assert sum("no TensorBoardLogger" in r.message for r in caplog.records) == 1  # said once
    callback.on_validation_start(_trainer(sanity_checking=True), None)
    assert callback.validations == 2  # sanity checks are not counted
    tensorboard = TensorBoardLogger(str(tmp_path))
    callback.on_validation_start(_trainer(loggers=[tensorboard]), None)
    assert callback._drawing  # rank 0 with a TensorBoard logger draws
    callback.on_validation_start(_trainer(loggers=[tensorboard], is_global_zero=False), None)
    assert not callback._drawing


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="qualitative.top_k"):
        QualitativeImages(top_k=0)


def test_without_matplotlib_the_run_goes_on_without_images(monkeypatch, caplog):
    import pig_lightning.training.qualitative as module

    real_find_spec = module.importlib.util.find_spec
    monkeypatch.setattr(module.importlib.util, "find_spec",
                        lambda name, *a: None if name == "matplotlib" else real_find_spec(name, *a))
    callback = QualitativeImages()
    with caplog.at_level(logging.WARNING, logger="pig_lightning.training.qualitative"):
        callback.on_validation_start(_trainer(), None)
        callback.on_validation_start(_trainer(), None)
    assert not callback._drawing and not callback.enabled
    assert sum("need matplotlib" in r.message for r in caplog.records) == 1


def test_a_drawing_that_fails_never_stops_the_training(tmp_path, synthetic_root, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("a font went missing")

    monkeypatch.setattr(QualitativeImages, "draw", broken)
    with caplog.at_level(logging.WARNING, logger="pig_lightning.training.qualitative"):
        cli, run_dir = _fit(tmp_path, synthetic_root, max_steps=2)
    assert cli.trainer.global_step == 2 and _images(run_dir) == {}
    assert any("drawing failed at step 2" in r.message for r in caplog.records)
    assert cli.model.training


def test_strips_follow_the_validation_set_and_come_at_frame_size():
    """validate after fit (another set): index 0 is another video, and its strip must be too."""
    import numpy as np

    from pig_lightning.training.qualitative import StripFrames

    class Stored:  # an optimized dataset's evaluation side: records and stored frames
        def __init__(self, name, shade):
            self.records = [SimpleNamespace(video_id=f"{name}{i}") for i in range(2)]
            self.video_root, self.shade = ".", shade

        def preview_frames(self, index, count, size):
            return np.full((count, size, size, 3), self.shade, dtype=np.uint8)

    strips = StripFrames(size=16, per_video=3)
    first, second = strips.get(Stored("a", 10), 0), strips.get(Stored("b", 200), 0)
    assert first.shape == second.shape == (3, 16, 16, 3)
    assert int(first[0, 0, 0, 0]) == 10 and int(second[0, 0, 0, 0]) == 200
