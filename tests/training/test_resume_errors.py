"""Bad resume inputs end before any training, with one line that names both sides."""

import pytest

from pig_lightning.cli import main
from pig_lightning.commands.train import run_cli

from tests.helpers import write_config
from .runs import pig_config

pytestmark = pytest.mark.slow  # trains or launches processes


@pytest.fixture(scope="module")
def meanp_checkpoint(tmp_path_factory, synthetic_root):
    tmp = tmp_path_factory.mktemp("meanp")
    run_cli(["fit", "--config", str(write_config(tmp, synthetic_root, max_steps=2))])
    return tmp / "runs" / "t" / "version_0" / "checkpoints" / "last.ckpt"


def run_main(args, capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as info:
        main(args)
    return info.value.code, capsys.readouterr().err


def test_a_checkpoint_of_another_tower_is_refused_at_start(meanp_checkpoint, tmp_path, synthetic_root, capsys):
    config = pig_config(tmp_path, synthetic_root)
    code, err = run_main(["fit", "--config", str(config), "--ckpt_path", str(meanp_checkpoint)], capsys)
    assert code == 2
    assert f"--ckpt_path {meanp_checkpoint} does not fit this config" in err
    assert "it holds a MeanPoolingTower, this run builds a PIGTower" in err
    assert not (tmp_path / "runs").exists()  # refused before a run folder was made


def test_an_unwritable_run_folder_is_refused_before_training(tmp_path, synthetic_root, capsys):
    (tmp_path / "a_file").write_text("not a folder")
    config = write_config(tmp_path, synthetic_root)
    code, err = run_main(["fit", "--config", str(config),
                          f"--trainer.logger.init_args.save_dir={tmp_path / 'a_file' / 'runs'}"], capsys)
    assert code == 2 and "cannot write the run folder" in err and "a_file" in err


def test_ckpt_path_last_without_a_checkpoint(tmp_path, synthetic_root, capsys, caplog):
    config = write_config(tmp_path, synthetic_root)
    code, err = run_main(["test", "--config", str(config), "--ckpt_path", "last"], capsys)
    assert code == 2 and "--ckpt_path last: no complete last.ckpt under" in err
    cli = run_cli(["fit", "--config", str(config), "--trainer.max_steps=1", "--ckpt_path", "last"])
    assert cli.trainer.global_step == 1  # fit starts from scratch, and says so
    assert "no checkpoint under" in caplog.text
