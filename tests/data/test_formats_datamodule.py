"""Every benchmark format trains and evaluates through the same datamodule (format setting)."""

import json
import shutil
from pathlib import Path

import pytest

from pig_lightning.data import AnnotationFiles, VideoTextDataModule
from pig_lightning.data.sources.formats import read_annotations
from tests.data.annotation_files import _activitynet_file, _didemo_file, _lsmdc_file, _msrvtt_data, _msvd_files, _vatex_file, _write

pytestmark = pytest.mark.slow  # trains or launches processes


def _fixture(fmt: str, folder: Path) -> tuple[Path, dict]:
    """(annotation file in the dataset's own structure, format options)."""
    if fmt == "msrvtt_csv":
        return _write(folder / "MSRVTT_train.9k.csv", "video_id\nvideo1\nvideo0\n"), {
            "captions_file": str(_msrvtt_data(folder))}
    if fmt == "msrvtt_json":
        return _msrvtt_data(folder), {"split": "test"}
    if fmt == "msrvtt_jsonl":
        lines = [{"clip_id": "video0", "text": ["a car", "a red car"]}, {"clip_id": "video1", "text": "a man"},
                 {"clip_id": "video2", "text": ["a dog"]}]
        return _write(folder / "train9k.jsonl", "\n".join(json.dumps(x) for x in lines) + "\n"), {}
    if fmt == "msvd":
        ids, pkl = _msvd_files(folder, ["-7KMZQEsJW4_205_208", "-4wsuPCjDBc_5_15", "bQJQGoJF7_k_162_169"])
        return ids, {"captions_file": str(pkl)}
    builders = {"didemo": _didemo_file, "activitynet": _activitynet_file, "vatex": _vatex_file, "lsmdc": _lsmdc_file}
    return builders[fmt](folder), {}


FORMATS = ["msrvtt_csv", "msrvtt_json", "msrvtt_jsonl", "msvd", "didemo", "activitynet", "vatex", "lsmdc"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_trains_and_evaluates_through_the_datamodule(fmt, tmp_path, synthetic_root):
    annotations, options = _fixture(fmt, tmp_path)
    records = read_annotations(annotations, fmt, **options)
    root = tmp_path / "videos"
    synthetic = sorted((Path(synthetic_root) / "videos").glob("*.mp4"))
    for record, source in zip(records, synthetic):  # the dataset's file names (.avi, .mov, movie folders)
        (root / record.video).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, root / record.video)
    dm = VideoTextDataModule(
        AnnotationFiles(video_root=str(root), train_annotations=str(annotations), test_annotations=str(annotations),
                        format=fmt, format_options=options),
        tokenizer=f"{synthetic_root}/tokenizer", num_frames=4, image_size=32, max_text_length=32,
        batch_size=2, eval_batch_size=8, num_workers=0,
    )
    dm.setup("fit")
    dm.setup("test")
    train = next(iter(dm.train_dataloader()))
    assert train["frames"].shape == (2, 4, 32, 32, 3) and train["input_ids"].shape == (2, 32)
    test = next(iter(dm.test_dataloader()))
    assert test["frames"].shape[0] == len(records)
    assert len(test["text_index"]) == sum(len(r.captions) for r in records)
    assert dm._datasets["test"].records == records
