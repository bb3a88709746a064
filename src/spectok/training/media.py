"""TensorBoard media of a tokenizer: mel vs reconstruction, the token map, Griffin-Lim audio.

Images are written as plain tensors (``[1, H, W]`` in [0, 1], low frequencies at the
bottom), so no plotting library is needed.
"""

from __future__ import annotations

import functools
from typing import Any

import torch

from spectok.vocoders import GriffinLim


def mel_image(mel: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    """log-mel ``[n_mels, T]`` → grayscale image ``[1, n_mels, T]`` in [0, 1], low bins at the bottom."""
    return ((mel - lo) / max(hi - lo, 1e-6)).clamp(0, 1).flip(0).unsqueeze(0)


def token_image(codes: torch.Tensor, codebook_sizes: list[int]) -> torch.Tensor:
    """codes ``[K, T']`` → image ``[1, K, T']``, each row scaled by its codebook size (row 0 at the bottom)."""
    sizes = torch.tensor(codebook_sizes, dtype=torch.float32, device=codes.device)[:, None]
    return (codes.float() / (sizes - 1).clamp_min(1)).flip(0).unsqueeze(0)


@torch.no_grad()
def log_tokenizer_media(writer: Any, model: Any, batch: dict[str, torch.Tensor], step: int,
                        max_items: int = 2) -> None:
    """Write, for the first ``max_items`` items of ``batch``: ``mel/{i}`` (input above
    reconstruction), ``tokens/{i}`` and, when Griffin-Lim can serve the model's front end,
    ``audio/{i}_input`` and ``audio/{i}_tokens``."""
    was_training = model.training
    model.eval()
    try:
        mel = batch["mel"][:max_items]
        lengths = batch.get("lengths")
        out = model(mel)
        rec = out.reconstruction
        lo, hi = float(mel.min()), float(mel.max())
        vocoder = _griffin_lim(model.mel_config)
        for i in range(mel.shape[0]):
            t = int(lengths[i]) if lengths is not None else mel.shape[-1]
            pair = torch.cat([mel_image(rec[i, :, :t], lo, hi), mel_image(mel[i, :, :t], lo, hi)], dim=1)
            writer.add_image(f"mel/{i}_input_top_reconstruction_bottom", pair, step)
            cols = -(-t // model.time_downsample)
            writer.add_image(f"tokens/{i}", token_image(out.codes[i, :, :cols], model.codebook_sizes), step)
            if vocoder is not None:
                sr = model.mel_config.sample_rate
                for name, m in (("input", mel[i : i + 1, :, :t]), ("tokens", rec[i : i + 1, :, :t])):
                    wav = vocoder.to(m.device)(m).float().clamp(-1, 1)
                    writer.add_audio(f"audio/{i}_{name}", wav.reshape(1, -1).cpu(), step, sample_rate=sr)
    finally:
        model.train(was_training)


@functools.lru_cache(maxsize=4)
def _griffin_lim(mel_config: Any) -> Any:
    """A Griffin-Lim vocoder for ``mel_config`` (built once per front end: building takes
    seconds), or None when it cannot serve that front end."""
    try:
        return GriffinLim(mel_config)
    except Exception:  # a vocoder that cannot serve this front end: log no audio rather than fail training
        return None
