import pytest
import torch
from transformers import CLIPModel

from pig_lightning.weights.hf_folder import ModelSourceError, load_clip_model, load_tokenizer


def test_tokenizer_from_folder_encodes_words_as_single_tokens(tokenizer_dir):
    tok = load_tokenizer(tokenizer_dir)
    ids = tok("a red circle moves left, then a green square moves up")["input_ids"]
    assert ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id
    words = tok.convert_ids_to_tokens(ids[1:-1])
    assert words[:5] == ["a</w>", "red</w>", "circle</w>", "moves</w>", "left</w>"]


def test_clip_save_pretrained_folder_round_trip(tmp_path, tiny_clip_config, tokenizer_dir):
    tok = load_tokenizer(tokenizer_dir)
    torch.manual_seed(0)
    model = load_clip_model(config=tiny_clip_config, tokenizer=tok)
    assert model.config.text_config.vocab_size == len(tok)
    assert model.config.text_config.eos_token_id == tok.eos_token_id
    model.save_pretrained(tmp_path / "clip")
    loaded = load_clip_model(pretrained=str(tmp_path / "clip"), tokenizer=tok)
    assert isinstance(loaded, CLIPModel)
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name


def test_config_from_json_file(tmp_path, tiny_clip_config, tokenizer_dir):
    import json

    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(tiny_clip_config))
    model = load_clip_model(config=str(path), tokenizer=load_tokenizer(tokenizer_dir))
    assert model.config.vision_config.patch_size == 8


def test_offline_hub_id_not_found_says_what_and_how(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelSourceError, match=r"'no-such-org/no-such-clip'.*save_pretrained"):
        load_tokenizer("no-such-org/no-such-clip")
    with pytest.raises(ModelSourceError, match=r"'no-such-org/no-such-clip'.*config"):
        load_clip_model(pretrained="no-such-org/no-such-clip")


def test_missing_or_empty_folders(tmp_path):
    with pytest.raises(ModelSourceError, match="not found"):
        load_tokenizer(str(tmp_path / "absent"))
    with pytest.raises(ModelSourceError, match="not found"):
        load_clip_model(pretrained=str(tmp_path / "absent"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelSourceError, match="holds no tokenizer"):
        load_tokenizer(str(tmp_path / "empty"))


def test_exactly_one_source():
    with pytest.raises(ValueError, match="exactly one"):
        load_clip_model()
    with pytest.raises(ValueError, match="exactly one"):
        load_clip_model(pretrained="x", config={})


def test_tokenizer_bigger_than_model_vocabulary_is_refused(tmp_path, tiny_clip_config, tokenizer_dir):
    tok = load_tokenizer(tokenizer_dir)
    cfg = dict(tiny_clip_config, text_config=dict(tiny_clip_config["text_config"], vocab_size=50))
    load_clip_model(config=cfg).save_pretrained(tmp_path / "small_vocab")
    with pytest.raises(ModelSourceError, match="do not belong together"):
        load_clip_model(pretrained=str(tmp_path / "small_vocab"), tokenizer=tok)


def test_a_shipped_folder_is_checked_against_its_sha256sums(tmp_path, tiny_clip_config, tokenizer_dir):
    import hashlib

    from pig_lightning.weights.hf_folder import load_clip_model, load_tokenizer

    tokenizer = load_tokenizer(tokenizer_dir)
    folder = tmp_path / "clip"
    load_clip_model(config=tiny_clip_config, tokenizer=tokenizer).save_pretrained(folder)
    weights = folder / "model.safetensors"
    (folder / "SHA256SUMS").write_text(f"{hashlib.sha256(weights.read_bytes()).hexdigest()}  model.safetensors\n")
    load_clip_model(pretrained=str(folder), tokenizer=tokenizer)  # intact: loads
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelSourceError, match="model.safetensors does not match its checksum"):
        load_clip_model(pretrained=str(folder), tokenizer=tokenizer)
    (folder / "SHA256SUMS").write_text("nonsense\n")
    with pytest.raises(ModelSourceError, match="SHA256SUMS:1"):
        load_clip_model(pretrained=str(folder), tokenizer=tokenizer)
