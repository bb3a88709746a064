"""Vocoder training data: waveform segments aligned with their log-mels, from a prepared folder.

A prepared folder (:func:`spectok.data.prepare.open_prepared`) stores each utterance's log-mel
and, in its manifest row, the source audio ``path`` and ``trim_start, trim_end`` (samples at
the mel sample rate): the mel is exactly the front end applied to
``load_audio(path, sr)[0][trim_start:trim_end]``. With ``padding = (n_fft - hop) / 2`` (HiFi-GAN
front end) mel frame ``t`` is centred on samples ``[t * hop, (t + 1) * hop)``, so a segment of
``n`` frames starting at frame ``s`` is the audio ``[s * hop, (s + n) * hop)`` and the mel
``[:, s : s + n]``: no mel is recomputed, and the vocoder learns from the very features the
tokenizers produce (including their storage precision).

Items: ``{"mel": float32 [n_mels, n], "audio": float32 [n * hop], "id": str, "index": int}``
with ``n = segment_samples / hop``. Utterances shorter than a segment are padded: audio with
zeros, mel with the log floor (silence). Random segment starts are a pure function of
``(seed, epoch, index)`` (the engine calls :meth:`AudioSegmentDataset.set_epoch`), so a
resumed run sees exactly the data an uninterrupted one would.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from spectok.audio.io import load_audio
from spectok.audio.mel import MelConfig
from spectok.data.prepare import open_prepared
from spectok.data.spec import DataSpec
from spectok.errors import DataError


class AudioSegmentDataset(Dataset):
    """Aligned (mel, waveform) segments of one split of a prepared set.

    Args:
        prepared: a ``PreparedSet`` (``root``, ``mel_config``, ``split(name)``, ``load_mel(id)``).
        split: manifest split ("train", "valid", "test").
        segment_samples: samples per segment, a multiple of the hop (HiFi-GAN: 8192).
        random: random segment starts (training); otherwise segments start at the first frame.
        seed: segment seed.
        cache_audio: keep loaded waveforms in memory (per worker process).
    """

    def __init__(self, prepared: Any, split: str, segment_samples: int, *, random: bool = True, seed: int = 0,
                 cache_audio: bool = True) -> None:
        self.prepared = prepared
        self.mel_config: MelConfig = prepared.mel_config
        hop = self.mel_config.hop_length
        if segment_samples <= 0 or segment_samples % hop:
            raise DataError(f"{prepared.root}: segment_samples {segment_samples} must be a positive multiple "
                            f"of the hop length {hop}")
        if self.mel_config.center:
            raise DataError(f"{prepared.root}: aligned audio segments need a center=False front end "
                            "(frame t covering samples [t*hop, (t+1)*hop)); this prepared set uses center=True")
        self.records = prepared.split(split)
        if not self.records:
            raise DataError(f"{prepared.root}: no utterances in split {split!r}")
        for r in self.records:
            if "path" not in r or "trim_start" not in r or "trim_end" not in r:
                raise DataError(f"{prepared.root}: manifest row {r.get('id')!r} lacks path/trim_start/trim_end "
                                "(re-run spectok prepare)")
        self.split = split
        self.frames = segment_samples // hop
        self.segment_samples = segment_samples
        self.random = random
        self.seed = int(seed)
        self.epoch = 0
        self.cache_audio = cache_audio
        self._cache: dict[str, np.ndarray] = {}

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.records)

    def audio(self, index: int) -> np.ndarray:
        """The whole trimmed waveform of item ``index`` (float32 ``[samples]`` at the mel rate)."""
        rec = self.records[index]
        if rec["id"] in self._cache:
            return self._cache[rec["id"]]
        wav, _ = load_audio(rec["path"], self.mel_config.sample_rate)
        wav = wav[int(rec["trim_start"]): int(rec["trim_end"])]
        if self.cache_audio:
            self._cache[rec["id"]] = wav
        return wav

    def start_frame(self, index: int, frames: int) -> int:
        if not self.random or frames <= self.frames:
            return 0
        rng = np.random.default_rng([self.seed, self.epoch, index])
        return int(rng.integers(0, frames - self.frames + 1))

    def __getitem__(self, index: int) -> dict[str, Any]:
        rec = self.records[index]
        hop = self.mel_config.hop_length
        mel = self.prepared.load_mel(rec["id"])
        wav = self.audio(index)
        frames = min(mel.shape[1], len(wav) // hop)
        if frames < mel.shape[1] - 1:
            raise DataError(f"{rec['path']}: {len(wav)} samples after trimming, but its mel has {mel.shape[1]} "
                            "frames (the source audio changed since prepare?)")
        s = self.start_frame(index, frames)
        n = min(self.frames, frames - s)
        mel_seg = np.full((mel.shape[0], self.frames), self.mel_config.silence, dtype=np.float32)
        mel_seg[:, :n] = mel[:, s: s + n]
        audio = np.zeros(self.segment_samples, dtype=np.float32)
        audio[: n * hop] = wav[s * hop: (s + n) * hop]
        return {"mel": torch.from_numpy(mel_seg), "audio": torch.from_numpy(audio), "id": rec["id"],
                "index": index}


def collate_segments(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack equal-length segments: ``{"mel": [B, n_mels, n], "audio": [B, n * hop], "ids": [str]}``."""
    if not items:
        raise DataError("collate_segments: empty batch")
    return {"mel": torch.stack([it["mel"] for it in items]), "audio": torch.stack([it["audio"] for it in items]),
            "ids": [it["id"] for it in items]}


def segment_data_spec(prepared_dir: str | os.PathLike, segment_samples: int, *, valid_segment_samples: int | None,
                      seed: int = 0, mel_config: MelConfig | None = None, cache_audio: bool = True):
    """Training segments and validation segments (from each utterance's start) as a ``DataSpec``.

    Args:
        prepared_dir: the prepared folder.
        segment_samples: training segment length (multiple of the hop).
        valid_segment_samples: validation segment length (default: 4 x ``segment_samples``).
        seed: segment seed (the engine's ``train.seed``).
        mel_config: the vocoder's front end; a prepared set made with another raises
            :class:`~spectok.errors.MelMismatchError` naming the differing fields.
        cache_audio: keep waveforms in memory.
    """
    prepared = open_prepared(prepared_dir)
    if mel_config is not None:
        mel_config.check_compatible(prepared.mel_config, what=f"vocoder and prepared set {prepared.root} mel configs")
    train = AudioSegmentDataset(prepared, "train", segment_samples, random=True, seed=seed, cache_audio=cache_audio)
    valid = None
    if prepared.split("valid"):
        valid = AudioSegmentDataset(prepared, "valid", valid_segment_samples or 4 * segment_samples, random=False,
                                    seed=seed, cache_audio=cache_audio)
    return DataSpec(train=train, valid=valid, collate=collate_segments, extra={"prepared": prepared})
