"""Vocoder training: aligned audio segments, the two tasks' losses, and a run through the engine."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spectok import registry
from spectok.audio.mel import MelSpectrogram
from spectok.data.audio_segments import AudioSegmentDataset, collate_segments, segment_data_spec
from spectok.data.prepare import open_prepared
from spectok.errors import DataError, MelMismatchError
from spectok.training.vocoder_task import GANVocoderTask, VocoderTask

pytestmark = pytest.mark.usefixtures("single_thread")

TINY_ISTFT = {"class": "istft-vocoder", "mel": "hifigan-22k", "dim": 16, "hidden": 32, "n_layers": 2}
TINY_HIFIGAN = {"class": "hifigan", "mel": "hifigan-22k", "preset": "v3", "channels": 8}
TINY_D = {"periods": [2, 3], "scales": 2, "width": 0.03}


def _batch(b: int = 2, frames: int = 8) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    audio = 0.1 * torch.randn(b, frames * 256, generator=g)
    return {"mel": MelSpectrogram("hifigan-22k")(audio), "audio": audio}


def test_registry_names_the_tasks():
    assert registry.get("task", "vocoder") is VocoderTask and registry.get("task", "vocoder-gan") is GANVocoderTask
    assert VocoderTask.kind == GANVocoderTask.kind == "vocoder"


def test_segments_are_aligned_with_their_mels(tiny_prepared):
    ds = AudioSegmentDataset(open_prepared(tiny_prepared), "train", 32 * 256, seed=3)
    item = ds[1]
    assert item["mel"].shape == (80, 32) and item["audio"].shape == (32 * 256,)
    # the front end applied to the segment alone agrees with the stored crop away from its edges
    mel = MelSpectrogram(ds.mel_config)(item["audio"])[0]
    assert (mel[:, 2:-2] - item["mel"][:, 2:-2]).abs().max() < 1e-3
    # crops are a pure function of (seed, epoch, index); another epoch moves them
    assert torch.equal(ds[1]["audio"], item["audio"])
    ds.set_epoch(1)
    assert not torch.equal(ds[1]["audio"], item["audio"])


def test_short_utterances_are_padded_with_silence(tiny_prepared):
    ds = AudioSegmentDataset(open_prepared(tiny_prepared), "valid", 256 * 4000, random=False)
    item = ds[0]
    frames = int(ds.records[0]["frames"])
    assert (item["mel"][:, frames + 1:] == ds.mel_config.silence).all()
    assert (item["audio"][(frames + 1) * 256:] == 0).all()
    batch = collate_segments([ds[0], ds[1]])
    assert batch["mel"].shape == (2, 80, 4000) and batch["ids"] == [r["id"] for r in ds.records]


def test_segment_length_must_be_a_multiple_of_the_hop(tiny_prepared):
    with pytest.raises(DataError, match="multiple of the hop length 256"):
        AudioSegmentDataset(open_prepared(tiny_prepared), "train", 1000)


def test_data_refuses_a_prepared_set_of_another_front_end(tiny_prepared):
    from spectok.audio.mel import MelConfig

    with pytest.raises(MelMismatchError, match="sample_rate"):
        segment_data_spec(tiny_prepared, 8192, valid_segment_samples=None, mel_config=MelConfig.preset("speech-16k"))


def test_spectral_task_losses_and_gradients():
    task = VocoderTask({"model": TINY_ISTFT})
    losses = task.losses(_batch(), step=0, phase="generator")
    assert {"stft_sc", "stft_log_mag", "mel_l1", "total"} <= set(losses)
    assert all(torch.isfinite(v) and v > 0 for v in losses.values())
    losses["total"].backward()
    assert all(p.grad is not None for p in task.model.parameters())
    metrics = task.validate_batch(_batch())
    assert metrics["mel_l1"] > 0


def test_linear_input_cnn_reads_the_log_magnitude():
    task = VocoderTask({"model": {"class": "cnn-vocoder", "input": "linear", "channels": 8, "min_channels": 4}})
    x = task.vocoder_input(_batch())
    assert x.shape == (2, 513, 8)
    assert task.losses(_batch(), 0, "generator")["total"] > 0


def _gan(disc_start: int = 0) -> GANVocoderTask:
    return GANVocoderTask({"model": TINY_HIFIGAN, "discriminator": TINY_D, "loss": {"disc_start": disc_start}})


def test_gan_generator_phase_has_the_hifigan_terms():
    task = _gan()
    losses = task.losses(_batch(), step=0, phase="generator")
    assert {"gan_g", "feature_matching", "mel_l1", "total"} <= set(losses)
    expected = 45 * losses["mel_l1"] + losses["gan_g"] + 2 * losses["feature_matching"]
    assert torch.allclose(losses["total"], expected)


def test_discriminator_phase_uses_detached_fakes():
    task = _gan()
    b = _batch()
    task.losses(b, step=3, phase="generator")["total"].backward()
    task.model.zero_grad(set_to_none=True)
    task.discriminator.zero_grad(set_to_none=True)
    d = task.losses(b, step=3, phase="discriminator")
    assert set(d) == {"gan_d", "total"}
    d["total"].backward()
    assert all(p.grad is None for p in task.model.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in task.discriminator.parameters())


def test_adversarial_terms_wait_for_disc_start():
    task = _gan(disc_start=10)
    assert "gan_g" not in task.losses(_batch(), step=9, phase="generator")
    assert task.losses(_batch(), step=9, phase="discriminator") is None
    assert "gan_g" in task.losses(_batch(), step=10, phase="generator")


def test_train_export_and_load_through_the_engine(tiny_prepared, tmp_path):
    from conftest import train_and_export

    from spectok.vocoders import load_vocoder

    config = {"task": "vocoder-gan", "model": TINY_HIFIGAN, "discriminator": TINY_D,
              "data": {"segment_samples": 1024, "valid_segment_samples": 2048},
              "train": {"steps": 3, "batch_size": 2, "valid_every": 2, "checkpoint_every": 2, "log_every": 1,
                        "media_every": 0, "progress": False, "device": "cpu"}}
    voc = load_vocoder(train_and_export("vocoder", config, tiny_prepared, tmp_path, "voc.safetensors"),
                       mel_config="hifigan-22k")
    mel = torch.from_numpy(np.load(next((tiny_prepared / "mels").rglob("*.npy"))))[None, :, :20]
    assert voc(mel).shape == (1, 20 * 256)
    metrics = (tmp_path / "run" / "metrics.jsonl").read_text()
    assert "gan_d" in metrics and "valid/mel_l1" in metrics


def test_the_gan_phase_preset_continues_the_shipped_vocoder():
    """`istft-16k-gan` (release_models.py --vocoder --gan) builds the architecture of the shipped
    `default-vocoder` weights, loads them, and both of its phases give finite losses."""
    from spectok.artifacts import load_weights
    from spectok.models import releases
    from spectok.training.config import load_config

    shipped = releases()["default"].trained_vocoder
    cfg = load_config("istft-16k-gan")
    task = registry.get("task", cfg["task"])(cfg)
    assert isinstance(task, GANVocoderTask)
    load_weights(task.model, shipped)
    g = torch.Generator().manual_seed(0)
    audio = 0.1 * torch.randn(2, 8000, generator=g)
    batch = {"mel": MelSpectrogram("speech-16k")(audio)[..., :50], "audio": audio}
    gen = task.losses(batch, step=0, phase="generator")
    disc = task.losses(batch, step=0, phase="discriminator")
    assert {"gan_g", "feature_matching", "stft_sc", "mel_l1"} <= set(gen)
    assert torch.isfinite(gen["total"]) and torch.isfinite(disc["total"])
