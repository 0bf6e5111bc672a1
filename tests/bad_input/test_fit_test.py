"""fit / test through the command: one line and exit 2 for bad settings, --debug for the traceback,
truncated captions counted, paths outside the root warned about."""

from __future__ import annotations

import logging

import pytest
import yaml

from tests.helpers import run_config, synthetic_rows, write_jsonl

pytestmark = pytest.mark.slow  # trains or launches processes


@pytest.fixture()
def config(tmp_path, synthetic_root, tokenizer_dir, tiny_clip_config):
    def _config(**data):
        return run_config(tmp_path, synthetic_root, tokenizer_dir, tiny_clip_config, **data)

    return _config


@pytest.mark.parametrize("data, expected", [
    (dict(num_workers=-1), "data.num_workers must be >= 0 (0: load in the main process), got -1"),
    (dict(outside_root="sometimes"), "data.source.outside_root must be one of ('warn', 'refuse', 'allow'), got 'sometimes'"),
    (dict(video_root="/nonexistent/videos"), "video folder not found: /nonexistent/videos (data.source.video_root)"),
    (dict(image_size=48), "the data's image_size (48) differs from the CLIP vision config's image_size (32)"),
    (dict(max_text_length=64), "max_text_length (64) exceeds the CLIP text tower's 32 positions"),
    (dict(tokenizer="/nonexistent/tok"), "tokenizer folder not found: /nonexistent/tok"),
], ids=["workers", "policy", "root", "image-size", "text-length", "tokenizer"])
def test_bad_settings_end_in_one_line_and_exit_2(config, tmp_path, run, data, expected):
    result = run("fit", "--config", config(**data))
    assert result.code == 2, result.err
    assert expected in result.err and "Traceback" not in result.err
    assert [line for line in result.err.splitlines() if "error:" in line] == [
        line for line in result.err.splitlines() if line.startswith("pig-lightning fit: error:")]


def test_debug_flag_and_environment_variable_show_the_traceback(config, run, monkeypatch):
    path = config(num_workers=-1)
    with pytest.raises(ValueError, match="data.num_workers must be >= 0"):
        run("fit", "--config", path, "--debug")
    monkeypatch.setenv("PIG_LIGHTNING_DEBUG", "1")
    with pytest.raises(ValueError, match="data.num_workers must be >= 0"):
        run("fit", "--config", path)


def test_truncated_captions_are_counted_once_per_split(config, synthetic_root, tmp_path, run, caplog):
    rows = synthetic_rows(synthetic_root, "train")
    rows[0]["captions"] = ["a red circle moves left " * 40] + rows[0]["captions"][1:]
    rows[1]["captions"][0] = "a blue cross goes up " * 30
    write_jsonl(tmp_path / "train.jsonl", rows)
    path = config(train_annotations=str(tmp_path / "train.jsonl"), val_annotations=None)
    with caplog.at_level(logging.WARNING):
        result = run("fit", "--config", path, "--trainer.max_steps", "1")
    assert result.code == 0, result.err
    [message] = [r.getMessage() for r in caplog.records if "are cut" in r.getMessage()]
    assert message.startswith(f"train: 2 of {sum(len(r['captions']) for r in rows)} captions are longer than "
                              "max_text_length (20 tokens) and are cut to it (longest: ")


def test_test_split_outside_the_root_is_refused_when_asked(config, ckpt, synthetic_root, tmp_path, run):
    rows = synthetic_rows(synthetic_root)[:5]
    for row in rows:
        row["video"] = "../../elsewhere/" + row["video"]
    write_jsonl(tmp_path / "test.jsonl", rows)
    path = config(test_annotations=str(tmp_path / "test.jsonl"), outside_root="refuse",
                  video_root=f"{synthetic_root}/videos")
    result = run("test", "--config", path, "--ckpt_path", ckpt)
    assert result.code == 2 and "5 of 5 video paths lie outside the video root" in result.err
    assert "refused (data.source.outside_root=refuse)" in result.err


def test_a_config_key_typo_is_named(config, run):
    result = run("fit", "--config", config(), "--model.lr_typo", "0.1")
    assert result.code == 2 and "lr_typo" in result.err


def test_a_config_written_for_the_old_data_modules_says_how_to_update_it(tmp_path, run):
    old = tmp_path / "old.yaml"
    old.write_text(yaml.safe_dump({"data": {"class_path": "pig_lightning.data.SyntheticVideoTextDataModule",
                                            "init_args": {"root": "data/synthetic", "num_frames": 8}}}))
    result = run("fit", "--config", old)
    assert result.code == 2 and "Traceback" not in result.err
    assert f"{old}: 'data' has class_path/init_args" in result.err and "data.source" in result.err
