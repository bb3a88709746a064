"""ONNX export of tokenizers (mel → codes, codes → mel) and vocoders (mel → waveform).

``export_onnx(model_or_artifact, outdir)`` writes, for a tokenizer:

- ``encoder.onnx``: input ``mel`` float32 ``[B, n_mels, T]`` (log-mel, any ``T``) → output
  ``codes`` int64 ``[B, K, ceil(T / d)]``; the encoder and the quantizer's nearest-code search.
- ``decoder.onnx``: input ``codes`` int64 ``[B, K, T']`` → output ``mel`` float32
  ``[B, n_mels, T' * d]``.

and for a vocoder ``vocoder.onnx``: ``mel`` ``[B, n_mels, T]`` → ``audio`` ``[B, T * hop]``.
Beside them ``spectok-onnx.json`` records the model's class, fingerprint, mel config, frame
rate, codebook sizes and the file names, so an ONNX-only user can compute the right log-mel
and write token files. Nothing here computes the log-mel: it is the front end of
:mod:`spectok.audio.mel` (an STFT), run before the encoder.

Export uses the ``torch.export`` based exporter with the batch and time axes dynamic.
During export the quantizers' code range checks and batch usage metrics (which read tensor
values and cannot become graph nodes) skip themselves (``spectok.quantizers.ops.exporting``);
they do not change codes.
Vocoders whose graph cannot be exported (e.g. complex-valued Griffin-Lim) are reported and
skipped, never half-written.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from spectok.artifacts import identity, load_release
from spectok.contracts import Tokenizer, Vocoder
from spectok.errors import SpectokError
from spectok.fsutil import atomic_path, write_json_atomic

OPSET = 18


class EncodeGraph(nn.Module):
    """``mel [B, n_mels, T] -> codes [B, K, ceil(T / d)]``; pads ``T`` up to a multiple of ``d`` with silence."""

    def __init__(self, tokenizer: nn.Module) -> None:
        super().__init__()
        self.tokenizer = tokenizer
        self.d = int(tokenizer.time_downsample)
        self.silence = float(tokenizer.mel_config.silence)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        t = mel.shape[-1]
        mel = F.pad(mel, (0, (self.d - t % self.d) % self.d), value=self.silence)
        return self.tokenizer.encode(mel)


class DecodeGraph(nn.Module):
    """``codes [B, K, T'] -> mel [B, n_mels, T' * d]``."""

    def __init__(self, tokenizer: nn.Module) -> None:
        super().__init__()
        self.tokenizer = tokenizer

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        return self.tokenizer.decode(codes)


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporter's loggers and warnings."""
    loggers = [logging.getLogger(n) for n in ("torch._dynamo", "torch.export", "torch.onnx", "torch._guards",
                                              "torch.fx.experimental.symbolic_shapes", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _export(module: nn.Module, example: torch.Tensor, path: Path, input_name: str, output_name: str,
            metadata: dict[str, str]) -> Path:
    """Export ``module(example)`` with dynamic batch and time axes to ``path`` (atomically)."""
    import onnx

    # AUTO: dynamic batch and time, with whatever lower bound the layers need (e.g. strided convs)
    shapes = {_forward_args(module)[0]: {0: torch.export.Dim.AUTO, 2: torch.export.Dim.AUTO}}
    chatter = io.StringIO()  # the exporter prints whole graphs when it fails; keep them off the console
    with _quiet_exporter(), contextlib.redirect_stdout(chatter), contextlib.redirect_stderr(chatter):
        try:
            program = torch.onnx.export(module.eval(), (example,), dynamo=True, input_names=[input_name],
                                        output_names=[output_name], dynamic_shapes=shapes, opset_version=OPSET,
                                        verbose=False)
        except Exception as e:
            raise SpectokError(f"cannot export {type(module).__name__} to ONNX: {_cause(e)}") from e
    proto = program.model_proto
    for k, v in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v
    with atomic_path(path, durable=True) as tmp:
        onnx.save(proto, str(tmp))
    return path


def _cause(e: BaseException) -> str:
    """The informative line of an exporter error (its exception summary), without colour codes."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(e))
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for ln in lines:
        if ln.startswith("<class "):
            return ln
    return lines[0] if lines else type(e).__name__


def _forward_args(module: nn.Module) -> list[str]:
    import inspect

    return [p for p in inspect.signature(module.forward).parameters if p != "self"]


def _describe(model: nn.Module) -> dict[str, Any]:
    return {**identity(model), "opset": OPSET}


def export_tokenizer(tokenizer: nn.Module, outdir: str | os.PathLike, frames: int = 256) -> dict[str, Any]:
    """Write ``encoder.onnx`` and ``decoder.onnx`` of ``tokenizer`` into ``outdir``; returns the manifest."""
    out = Path(outdir)
    tok = tokenizer.eval()
    d = int(tok.time_downsample)
    frames = max(frames // d, 4) * d
    mel = torch.full((1, tok.mel_config.n_mels, frames), tok.mel_config.silence)
    mel = mel + torch.randn(mel.shape, generator=torch.Generator().manual_seed(0))
    info = _describe(tok)
    info.update(frame_rate=tok.frame_rate, time_downsample=d, codebook_sizes=list(tok.codebook_sizes),
                encoder={"file": "encoder.onnx", "input": "mel [B, n_mels, T] float32",
                         "output": "codes [B, K, ceil(T / time_downsample)] int64"},
                decoder={"file": "decoder.onnx", "input": "codes [B, K, T'] int64",
                         "output": "mel [B, n_mels, T' * time_downsample] float32"})
    meta = {"spectok": json.dumps({k: info[k] for k in ("class", "fingerprint") if k in info})}
    _export(EncodeGraph(tok), mel, out / "encoder.onnx", "mel", "codes", metadata=meta)
    codes = tok.encode(mel)
    _export(DecodeGraph(tok), codes, out / "decoder.onnx", "codes", "mel", metadata=meta)
    return info


def export_vocoder(vocoder: nn.Module, outdir: str | os.PathLike, frames: int = 64) -> dict[str, Any]:
    """Write ``vocoder.onnx`` (mel -> audio) into ``outdir``; :class:`SpectokError` if it cannot be exported."""
    voc = vocoder.eval()
    mel = torch.full((1, voc.mel_config.n_mels, frames), voc.mel_config.silence)
    mel = mel + torch.randn(mel.shape, generator=torch.Generator().manual_seed(0))
    info = _describe(voc)
    info["vocoder"] = {"file": "vocoder.onnx", "input": "mel [B, n_mels, T] float32",
                       "output": "audio [B, T * hop_length] float32"}
    meta = {"spectok": json.dumps({"class": info["class"]})}
    _export(voc, mel, Path(outdir) / "vocoder.onnx", "mel", "audio", metadata=meta)
    return info


def export_onnx(source: str | os.PathLike | nn.Module, outdir: str | os.PathLike) -> Path:
    """Export a tokenizer or vocoder (a model, or a release artifact path) into ``outdir``.

    Returns the path of the written ``spectok-onnx.json`` manifest.
    """
    if isinstance(source, nn.Module):
        model = source
    else:
        model = load_release(source)
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    if isinstance(model, Vocoder):
        info = export_vocoder(model, out)
    else:
        if not isinstance(model, Tokenizer) or model.mel_config is None:
            raise SpectokError(f"{type(model).__name__}: ONNX export covers audio tokenizers (mel in, codes out)")
        info = export_tokenizer(model, out)
    manifest = out / "spectok-onnx.json"
    write_json_atomic(manifest, info)
    return manifest
