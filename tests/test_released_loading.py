"""Loading by name, pairing, listing and fine-tuning (--init), on a temporary registry of tiny models.

The shipped models themselves are tested in tests/test_released_models.py.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

from spectok import models
from spectok.cli.main import main
from spectok.errors import ArtifactError

pytestmark = pytest.mark.usefixtures("single_thread")

TINY = {"task": "tokenizer",
        "model": {"class": "conv1d-vqvae", "mel": "hifigan-22k", "channels": [16, 16], "strides": [2],
                  "num_res_blocks": [0, 1], "norm": "none", "groups": 2,
                  "quantizer": {"type": "fsq", "levels": [5, 5, 5], "dim": 3}},
        "data": {"crop_frames": 32},
        "optim": {"generator": {"kind": "adam", "lr": 1.0e-3}},
        "train": {"steps": 3, "batch_size": 2, "valid_every": 3, "checkpoint_every": 3, "log_every": 1,
                  "media_every": 0, "progress": False, "device": "cpu"}}


@pytest.fixture(scope="module")
def registry(tmp_path_factory, tiny_prepared):
    """A models folder holding one trained tiny tokenizer released as ``tiny`` (alias ``tiny22k``)."""
    from conftest import train_and_export

    work = tmp_path_factory.mktemp("release")
    artifact = train_and_export("tokenizer", TINY, tiny_prepared, work, "tiny.safetensors")
    folder = work / "models"
    folder.mkdir()
    shutil.copy(artifact, folder / "tiny.safetensors")
    (folder / "tiny.md").write_text("# tiny\n")
    (folder / "index.json").write_text(json.dumps({"tiny": {
        "aliases": ["tiny22k"], "tokenizer": "tiny.safetensors", "vocoder": "griffin-lim", "card": "tiny.md",
        "headline": {"pesq": 1.0, "stoi": 0.5, "held_out": "2 LJSpeech clips"}}}))
    return folder


@pytest.fixture
def released(registry, monkeypatch):
    monkeypatch.setattr(models, "folder", lambda: registry)
    return registry


def test_load_by_name_and_alias(released) -> None:
    import spectok

    a = spectok.load_tokenizer("tiny")
    b = spectok.load_tokenizer("tiny22k")
    assert a.fingerprint() == b.fingerprint()
    assert torch.equal(a.state_dict()["post_quant.weight"], b.state_dict()["post_quant.weight"])
    voc = spectok.load_vocoder("tiny")
    assert type(voc).__name__ == "GriffinLim" and voc.mel_config == a.mel_config
    assert type(spectok.load_vocoder("default", tokenizer=a)).__name__ == "GriffinLim"


def test_unknown_name_is_one_line_listing_the_names(released, capsys, tmp_path) -> None:
    with pytest.raises(ArtifactError, match=r"nosuch: neither a file nor a released model \(released: tiny, tiny22k"):
        models.resolve_tokenizer("nosuch")
    clip = tmp_path / "x.wav"
    sf.write(clip, np.zeros(16000, np.float32), 16000)
    assert main(["encode", str(clip), "-t", "nosuch", "-o", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "tiny, tiny22k" in err


def test_models_command_lists_front_end_bitrate_size_and_figures(released, capsys) -> None:
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "tiny, tiny22k" in out and "hifigan-22k" in out and "griffin-lim" in out and "1.00" in out
    assert main(["models", "--json"]) == 0
    row = json.loads(capsys.readouterr().out.splitlines()[0])
    assert row["mel"] == "hifigan-22k" and row["size_mb"] > 0
    assert abs(row["bitrate"] - 22050 / 256 / 2 * 2 * 6.9658) < 0.1


def test_init_fine_tunes_from_the_released_weights_with_its_own_config(released, tiny_prepared, tmp_path) -> None:
    import spectok
    from spectok.cli.main import build_parser
    from spectok.cli.train import build_config
    from spectok.training.engine import Trainer

    argv = ["train", "tokenizer", "--init", "tiny", "--data", str(tiny_prepared), "--out", str(tmp_path / "a"),
            "--set", "optim.generator.lr=1.0e-5"]
    config = build_config(build_parser().parse_args(argv))
    assert config["model"] == TINY["model"] and config["optim"]["generator"]["lr"] == 1.0e-5
    assert config["train"]["init"] == str((released / "tiny.safetensors").resolve())
    trainer = Trainer(config, tmp_path / "a")
    ref = spectok.load_tokenizer("tiny").state_dict()
    got = trainer.models["model"].state_dict()
    assert all(torch.equal(ref[k], got[k]) for k in ref), "a fine-tune must start from the released weights"
    fresh = Trainer(config | {"train": config["train"] | {"init": None}}, tmp_path / "b").models["model"]
    assert not torch.equal(fresh.state_dict()["post_quant.weight"], ref["post_quant.weight"])  # the control
    assert main([*argv[:7], str(tmp_path / "c"), "--steps", "2"]) == 0
    assert (tmp_path / "c" / "checkpoints" / "best.pt").is_file()


def test_init_refuses_data_of_another_front_end_naming_the_mel_to_prepare_with(released, tmp_path, capsys) -> None:
    from conftest import shared_path

    from spectok.data.corpora import CorpusItem
    from spectok.data.prepare import prepare

    wavs = sorted(shared_path("cmu_arctic-l2arctic-layout").rglob("*.wav"))[:2]
    data = tmp_path / "p16"
    prepare([CorpusItem(w.stem + str(i), w, "s", "train" if i else "valid") for i, w in enumerate(wavs)], data,
            mel="speech-16k", progress=False)
    code = main(["train", "tokenizer", "--init", "tiny", "--data", str(data), "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1
    assert "sample_rate (22050 vs 16000)" in err and err.endswith("prepare the data with --mel hifigan-22k")


def test_init_refuses_a_changed_architecture(released, tiny_prepared, tmp_path, capsys) -> None:
    code = main(["train", "tokenizer", "--init", "tiny", "--data", str(tiny_prepared), "--out", str(tmp_path / "r"),
                 "--steps", "1", "--set", "model.channels=[8,8]"])
    assert code == 1
    assert "do not fit the model of this config" in capsys.readouterr().err


def test_presets_by_name(capsys) -> None:
    from spectok.training.config import load_config

    assert load_config("default", kind="tokenizer")["task"] == "tokenizer"
    assert load_config("istft", kind="vocoder")["task"].startswith("vocoder")
    with pytest.raises(Exception, match="not a tokenizer preset"):
        load_config("nosuch", kind="tokenizer")
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    assert "default" in out and "dctts-spectrogram-vq" in out and "istft" in out


def test_release_artifact_leaves_out_the_ema_sums_and_loading_rebuilds_them(tmp_path) -> None:
    """EMA codebook sums are derivable (codebook x smoothed counts): the artifact omits them (the
    released default is 9 MB instead of 12), and loading restores them for fine-tuning."""
    import torch
    from safetensors import safe_open

    from spectok.artifacts import load_release, save_release
    from spectok.tokenizers import ConvVQVAE1d

    torch.manual_seed(0)
    tok = ConvVQVAE1d(channels=(16, 16, 16), strides=(2, 2), num_res_blocks=1, norm="none",
                      quantizer={"type": "rvq", "num_quantizers": 2, "dim": 8, "codebook_size": 32,
                                 "quantizer_dropout": 0.0})
    tok.train()
    for _ in range(5):  # k-means init, then EMA updates
        tok(torch.randn(4, tok.mel_config.n_mels, 64) - 5)
    path = save_release(tok.eval(), tmp_path / "tok.safetensors")
    with safe_open(str(path), "pt") as f:
        keys = list(f.keys())
    assert keys and not [k for k in keys if k.endswith("ema_sum")] and [k for k in keys if k.endswith("codebook")]
    loaded = load_release(path)
    for name, value in tok.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[name], value, rtol=1e-5, atol=1e-6, msg=name)
