"""`spectok eval` of an image tokenizer on the real CIFAR-10 batches: a tiny VQ-VAE trained for a few
steps, then MSE, PSNR, codebook use, bits per image, the grid and the curves in JSON, Markdown, HTML."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from conftest import shared_path, train_and_export

from spectok.cli.main import main
from spectok.data.corpora import Cifar10
from spectok.evaluation.image import measure_images
from spectok.tokenizers.loading import load_tokenizer

pytestmark = pytest.mark.usefixtures("single_thread")

TINY_IMAGE = {"task": "image-tokenizer",
              "model": {"class": "image-vqvae", "image_size": 32, "channels": [8, 16], "strides": [[2, 2]],
                        "num_res_blocks": 0, "norm": "none",
                        "quantizer": {"type": "vq", "codebook_size": 16, "dim": 8, "ema": True}},
              "data": {"train_limit": 256, "valid_limit": 64},
              "optim": {"generator": {"kind": "adam", "lr": 1.0e-3}},
              "train": {"steps": 6, "batch_size": 16, "valid_every": 3, "checkpoint_every": 3, "log_every": 1,
                        "media_every": 0, "progress": False, "device": "cpu"}}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = shared_path("cifar-10-batches-py")
    work = tmp_path_factory.mktemp("img")
    return root, work, train_and_export("tokenizer", TINY_IMAGE, root, work, "img.safetensors")


def test_eval_reports_psnr_codebook_and_pictures(trained):
    root, work, artifact = trained
    out = work / "report"
    assert main(["eval", "-t", str(artifact), "cifar10", str(root), "-o", str(out), "--limit", "200",
                 "--run", str(work / "run"), "-q"]) == 0
    report = json.loads((out / "report.json").read_text())
    s = report["scores"]
    assert s["images"] == 200 and s["bits_per_image"] == pytest.approx(16 * 16 * 4)  # 16 x 16 grid x 4 bits
    assert 0 < s["mse"]["mean"] < 2 and s["mse"]["ci_low"] <= s["mse"]["mean"] <= s["mse"]["ci_high"]
    assert 0 < s["codebook"]["used_fraction"] <= 1 and s["codebook_size"] == 16
    for name in ("report.md", "report.html", "grid.png", "curves.png"):
        assert (out / name).stat().st_size > 0, name
    assert "PSNR" in (out / "report.md").read_text() and "<img" in (out / "report.html").read_text()


def test_psnr_and_mse_agree_with_a_direct_computation(trained):
    root, _, artifact = trained
    tok = load_tokenizer(artifact)
    images, _ = Cifar10(root).load("test")
    scores, recs = measure_images(tok, images[:50], batch_size=16)
    x = torch.as_tensor(images[:50]).permute(0, 3, 1, 2).float() / 127.5 - 1
    with torch.no_grad():
        rec = tok.decode(tok.encode(x)).clamp(-1, 1)
    mse = (rec - x).square().mean(dim=(1, 2, 3)).numpy()
    assert scores["mse"]["mean"] == pytest.approx(float(mse.mean()), rel=1e-5)
    assert scores["psnr_db"]["mean"] == pytest.approx(float(np.mean(10 * np.log10(4 / mse))), rel=1e-5)
    assert recs.shape == images[:50].shape and recs.dtype == np.uint8
    assert math.isfinite(scores["codebook"]["perplexity"])


def test_an_image_tokenizer_needs_cifar10_data(trained, tmp_path, capsys):
    _, _, artifact = trained
    assert main(["eval", "-t", str(artifact), str(tmp_path), "-o", str(tmp_path / "r")]) == 1
    assert "cifar10 ROOT" in capsys.readouterr().err
