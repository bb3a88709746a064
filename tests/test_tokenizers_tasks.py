"""Tokenizer training tasks: losses, the VQGAN phases, validation statistics, media, presets, the engine."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch
import yaml

from spectok import registry
from spectok.audio.mel import MelConfig
from spectok.tokenizers.vqgan import adaptive_weight
from spectok.training.tokenizer_task import ImageTokenizerTask, TokenizerTask, VQGANTask

PRESETS = Path(__file__).resolve().parents[1] / "configs" / "tokenizer"
SILENCE = MelConfig.preset("hifigan-22k").silence
TINY_2D = {"class": "conv2d-vqvae", "channels": [8, 8, 16], "num_res_blocks": 1,
           "quantizer": {"type": "vq", "dim": 8, "codebook_size": 32, "ema": False, "kmeans_init": False}}
TINY_1D = {"class": "conv1d-vqvae", "channels": [16, 16, 16], "strides": [2, 2], "num_res_blocks": 1,
           "quantizer": {"type": "rvq", "num_quantizers": 2, "dim": 8, "codebook_size": 16}}


def batch(lengths: list[int], seed: int = 0) -> dict[str, torch.Tensor]:
    """A padded batch as the engine's collate makes it: silence after each item's length."""
    g = torch.Generator().manual_seed(seed)
    t = max(lengths)
    mel = torch.randn(len(lengths), 80, t, generator=g) * 2 - 5
    mask = torch.zeros(len(lengths), t)
    for i, n in enumerate(lengths):
        mel[i, :, n:] = SILENCE
        mask[i, :n] = 1
    return {"mel": mel, "mask": mask, "lengths": torch.tensor(lengths)}


def vqgan(disc_start: int = 0, fm: float = 0.0) -> VQGANTask:
    return VQGANTask({"model": TINY_2D, "discriminator": {"channels": 4, "n_layers": 2},
                      "loss": {"disc_start": disc_start, "feature_matching_weight": fm}})


def test_registry_names_the_tasks():
    assert registry.get("task", "tokenizer") is TokenizerTask
    assert registry.get("task", "vqgan") is VQGANTask
    assert registry.get("task", "image-tokenizer") is ImageTokenizerTask


def test_discriminator_step_uses_detached_fakes():
    task = vqgan()
    b = batch([32, 24])
    task.losses(b, step=5, phase="generator")["total"].backward()
    task.model.zero_grad(set_to_none=True)
    d = task.losses(b, step=5, phase="discriminator")
    d["total"].backward()
    assert all(p.grad is None for p in task.model.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in task.discriminator.parameters())


def test_gan_terms_switch_on_at_disc_start():
    task = vqgan(disc_start=10)
    b = batch([32, 32])
    before = task.losses(b, step=9, phase="generator")
    assert "gan_g" not in before and task.losses(b, step=9, phase="discriminator") is None
    after = task.losses(b, step=10, phase="generator")
    lam = after["lambda"]
    assert torch.isfinite(lam) and lam > 0
    expected = after["rec"] + after["quantizer"] + task.disc_weight * lam * after["gan_g"]
    torch.testing.assert_close(after["total"], expected)
    assert task.losses(b, step=-1, phase="validate").keys() == before.keys()  # validation: no GAN terms


def test_feature_matching_adds_a_term():
    out = vqgan(fm=2.0).losses(batch([32, 32]), step=0, phase="generator")
    assert out["feature_matching"] > 0


def test_adaptive_weight_is_the_gradient_ratio_and_finite():
    w = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    rec = (3 * w).sum()  # gradient [3, 3]
    gan = (w * torch.tensor([0.0, 4.0])).sum()  # gradient [0, 4]
    lam = adaptive_weight(rec, gan, w)
    torch.testing.assert_close(lam, torch.tensor(math.sqrt(18) / (4 + 1e-4)))
    flat = adaptive_weight((3 * w).sum(), (0 * w).sum(), w, max_weight=50.0)  # no GAN gradient
    assert torch.isfinite(flat) and float(flat) == 50.0


def test_validation_counts_real_columns_only():
    task = TokenizerTask({"model": TINY_1D})
    task.model.eval()
    task.start_validation()
    b1, b2 = batch([40, 13]), batch([8], seed=1)
    m1, m2 = task.validate_batch(b1), task.validate_batch(b2)
    stats = task.end_validation()
    real_columns = sum(math.ceil(n / 4) for n in (40, 13, 8))
    assert stats["codebook/count"] == real_columns
    assert 0 < stats["codebook/used_fraction"] <= 1
    assert {"l1", "mse"} <= set(m1) and m2["l1"] > 0
    frames1, frames2 = 53, 8  # the whole-set l1 weights every real frame once
    assert stats["l1"] == pytest.approx((m1["l1"] * frames1 + m2["l1"] * frames2) / (frames1 + frames2), rel=1e-5)


def test_losses_ignore_padded_frames():
    task = TokenizerTask({"model": TINY_1D, "loss": {"reconstruction": "mse"}})
    task.model.eval()
    b = batch([40, 20])
    out = task.model(b["mel"], b["mask"])
    err = (out.reconstruction - b["mel"]).square()
    manual = (err[0].sum() + err[1, :, :20].sum()) / (80 * 60)
    torch.testing.assert_close(task.losses(b, step=0, phase="generator")["rec"], manual)


class _Writer:
    def __init__(self) -> None:
        self.images, self.audio = {}, {}

    def add_image(self, tag, img, step):
        self.images[tag] = img

    def add_audio(self, tag, wav, step, sample_rate):
        self.audio[tag] = (wav, sample_rate)


def test_media_images_and_audio():
    task = TokenizerTask({"model": TINY_1D})
    w = _Writer()
    task.log_media(w, batch([40, 20]), step=3)
    mel_tags = [t for t in w.images if t.startswith("mel/")]
    assert len(mel_tags) == 2 and w.images[mel_tags[1]].shape == (1, 160, 20)
    assert w.images["tokens/0"].shape == (1, 2, 10) and float(w.images["tokens/0"].max()) <= 1
    wav, sr = w.audio["audio/1_tokens"]
    assert sr == 22050 and wav.shape[-1] == 20 * 256


def _bitrate_comment(path: Path) -> tuple[float, str]:
    m = re.search(r"^# bitrate: ([\d.]+) (bit/s|bits per image)", path.read_text(), re.M)
    assert m, f"{path.name} does not state its bitrate in a '# bitrate:' comment"
    return float(m.group(1)), m.group(2)


@pytest.mark.parametrize("model", [TINY_1D, TINY_2D], ids=["1d-rvq", "2d-grid"])
def test_validation_bitrates_count_every_row(model):
    """A grid's rows share one codebook: the validation rates count them all (they once counted one row)."""
    task = TokenizerTask({"model": model})
    task.model.eval()
    task.start_validation()
    task.validate_batch(batch([64, 40]))
    stats = task.end_validation()
    assert stats["codebook/nominal_bits_per_second"] == pytest.approx(task.model.bitrate)
    assert 0 < stats["codebook/bits_per_second"] <= stats["codebook/nominal_bits_per_second"]


@pytest.mark.parametrize("path", sorted(PRESETS.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_preset_builds_trains_a_step_and_states_its_bitrate(path):
    config = yaml.safe_load(path.read_text())
    task = registry.get("task", config["task"])(config)
    model = task.model.train()
    stated, unit = _bitrate_comment(path)
    if unit == "bit/s":
        assert stated == pytest.approx(model.bitrate, abs=1e-3)
        n = model.mel_config.n_mels
        b = {"mel": torch.randn(2, n, 32) - 5, "mask": torch.ones(2, 32), "lengths": torch.tensor([32, 32])}
    else:
        assert stated == pytest.approx(model.bits_per_image)
        b = {"image": torch.rand(2, 3, 32, 32) * 2 - 1}
    for spec in task.optimizer_specs():
        out = task.losses(b, step=10**6, phase=spec.name)  # a late step: GAN phases on
        out["total"].backward()
        assert torch.isfinite(out["total"])
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)
    assert len(config["optim"]) == len(task.optimizer_specs())


def test_image_task_on_cifar():
    from conftest import shared_path

    root = shared_path("cifar-10-batches-py")
    task = ImageTokenizerTask({"model": {"class": "image-vqvae", "channels": [8, 16, 16], "num_res_blocks": 1},
                               "loss": {"reconstruction": "mse"}, "data": {"train_limit": 16, "valid_limit": 8}})
    data = task.data(str(root))
    assert len(data.train) == 16 and len(data.valid) == 8
    b = data.collate([data.train[i] for i in range(4)])
    assert b["image"].shape == (4, 3, 32, 32) and -1 <= float(b["image"].min()) < float(b["image"].max()) <= 1
    task.losses(b, step=0, phase="generator")["total"].backward()
    task.start_validation()
    metrics = task.validate_batch(data.collate([data.valid[i] for i in range(8)]))
    stats = task.end_validation()
    assert metrics["psnr"] == pytest.approx(10 * math.log10(4 / metrics["mse"]))
    assert stats["codebook/count"] == 8 * 64


def test_train_and_export_end_to_end(tiny_prepared, tmp_path):
    from conftest import train_and_export

    from spectok.tokenizers import load_tokenizer

    config = {"task": "vqgan", "model": TINY_2D, "discriminator": {"channels": 4, "n_layers": 2},
              "loss": {"disc_start": 2}, "data": {"crop_frames": 32, "valid_frames": 32},
              "train": {"steps": 3, "batch_size": 2, "valid_every": 2, "checkpoint_every": 2, "log_every": 1,
                        "media_every": 0, "progress": False, "device": "cpu"}}
    tok = load_tokenizer(train_and_export("tokenizer", config, tiny_prepared, tmp_path, "tok.safetensors"))
    mel = torch.from_numpy(__import__("numpy").load(next((Path(tiny_prepared) / "mels").rglob("*.npy"))))
    codes = tok.encode(mel.float()[None, :, :50])
    assert codes.shape == (1, 4, 25)
    metrics = (tmp_path / "run" / "metrics.jsonl").read_text()
    assert "codebook/used_fraction" in metrics and "gan_d" in metrics


def test_config_mistakes_raise_clear_errors():
    from spectok.errors import SpectokError

    with pytest.raises(SpectokError, match="config loss: unknown key 'disc_start'"):
        TokenizerTask.check_config({"model": TINY_1D, "loss": {"disc_start": 5}})
    with pytest.raises(SpectokError, match="config data: unknown key 'crop_frame'; did you mean 'crop_frames'"):
        TokenizerTask.check_config({"model": TINY_1D, "data": {"crop_frame": 5}})
    with pytest.raises(SpectokError, match="reads no discriminator section"):
        TokenizerTask.check_config({"model": TINY_1D, "discriminator": {"width": 1}})
    with pytest.raises(SpectokError, match="config discriminator: unknown key 'chanels'; did you mean 'channels'"):
        VQGANTask({"model": TINY_1D, "discriminator": {"chanels": 8}})
    with pytest.raises(SpectokError, match=r"config model \(conv1d-vqvae\).groups: expected an integer"):
        TokenizerTask({"model": {**TINY_1D, "groups": "abc"}})
    VQGANTask.check_config({"model": TINY_1D, "loss": {"disc_start": 5}, "discriminator": {"channels": 8}})
    with pytest.raises(SpectokError, match="reconstruction"):
        TokenizerTask({"model": TINY_1D, "loss": {"reconstruction": "l3"}})
    with pytest.raises(SpectokError, match="class"):
        TokenizerTask({"model": {"channels": [8]}})
    with pytest.raises(SpectokError, match="fsq"):
        TokenizerTask({"model": {**TINY_1D, "quantizer": {"type": "fsq", "codebook_size": 8}}})
