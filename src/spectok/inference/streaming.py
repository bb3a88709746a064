"""Exact streaming: audio blocks -> token columns, and token columns -> audio blocks.

:class:`StreamEncoder` takes mono float32 blocks of any size and returns each token column as
soon as the samples it depends on have arrived; :class:`StreamDecoder` does the same from
columns to audio. Both equal the whole-file :meth:`~spectok.Pipeline.encode` and
:meth:`~spectok.Pipeline.decode` (codes exactly, audio to float rounding), because they only
ever compute an output from inputs that reach past it by the model's declared receptive field
(the argument of :mod:`spectok.inference.chunking`, applied to a growing input):

- mel frame ``g`` reads samples ``[g * hop - pad, g * hop - pad + n_fft)``, so it is final once
  those samples are in; frames that need the end's reflect padding wait for :meth:`finish`;
- token column ``j`` is final once the mel frames up to ``(j + 1) * d + r`` are, with ``r`` half
  the encoder's ``receptive_field`` (rounded up);
- decoded mel frames of column ``j`` are final once columns up to ``j + r_dec`` are in, and
  audio of frame ``f`` once mel frames up to ``f + lookahead`` are (half the decoder's receptive
  field, and the vocoder's declared look-ahead: half its receptive field, or less for a vocoder
  whose reach is one-sided, such as Griffin-Lim's phase-gradient start).

Memory stays bounded: only the samples, frames and columns still needed as context are kept.
The algorithmic latency (how much later than its own audio a column or sample can come out)
is :attr:`StreamEncoder.latency_seconds` and :attr:`StreamDecoder.latency_seconds`.
A model that normalises over time (GroupNorm, InstanceNorm) or states no receptive field
cannot stream exactly and is refused.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from spectok.audio.mel import MelSpectrogram
from spectok.contracts import AudioTokenizer, Vocoder
from spectok.errors import AudioError, SpectokError
from spectok.inference.chunking import ChunkedMel, encoder_geometry, is_time_local, side_context


def _refuse_non_local(module: torch.nn.Module, what: str) -> None:
    if not is_time_local(module):
        raise SpectokError(f"{what} normalises over time (GroupNorm, InstanceNorm or BatchNorm in training "
                           f"mode), so its output depends on the whole input: it cannot stream exactly "
                           f"(encode or decode whole files instead)")


class _Buffer:
    """The tail of a growing sequence along its last axis: global indices ``[start, end)``."""

    def __init__(self, empty: torch.Tensor) -> None:
        self.data, self.start = empty, 0

    @property
    def end(self) -> int:
        return self.start + self.data.shape[-1]

    def append(self, x: torch.Tensor) -> None:
        self.data = torch.cat([self.data, x], dim=-1)

    def get(self, a: int, b: int) -> torch.Tensor:
        """Global ``[a, b)``; ``a`` must not be before what was dropped."""
        if a < self.start:
            raise RuntimeError(f"stream buffer: index {a} already dropped (kept from {self.start})")
        return self.data[..., a - self.start:b - self.start]

    def drop_before(self, a: int) -> None:
        if a > self.start:
            self.data = self.data[..., a - self.start:].clone()
            self.start = a


class StreamEncoder:
    """Audio blocks at the front end's rate -> token columns, equal to a whole-file encode.

    Args:
        tokenizer: a time-local tokenizer in eval mode that states its ``receptive_field``.
        mel: the front end (:class:`MelSpectrogram` of the tokenizer's mel config).

    ``push(block [n]) -> codes [K, m]`` (``m >= 0`` newly final columns); ``finish() -> codes
    [K, m]`` (the rest, once the end is known); :attr:`num_samples` counts what was pushed.
    """

    def __init__(self, tokenizer: AudioTokenizer, mel: MelSpectrogram) -> None:
        d, rf = encoder_geometry(tokenizer)
        if rf is None:
            raise SpectokError(f"{type(tokenizer).__name__} does not state its receptive_field: it cannot stream")
        _refuse_non_local(tokenizer, type(tokenizer).__name__)
        self.tokenizer, self.mel, self.d = tokenizer, mel, d
        self.right = side_context(rf, 0)  # frames a column needs beyond its own
        self.left = math.ceil(self.right / d) * d  # aligned to d, so the strided grid lines up
        c = mel.config
        self.samples = _Buffer(torch.zeros(0))
        self.frames = _Buffer(torch.zeros(c.n_mels, 0))
        self.columns = 0  # columns returned so far
        self.finished = False

    @property
    def num_samples(self) -> int:
        return self.samples.end

    @property
    def latency_seconds(self) -> float:
        """Audio that must follow a column's own stretch before it is final (the algorithmic latency)."""
        c = self.mel.config
        last_sample = (self.right - 1) * c.hop_length - c.padding + c.n_fft  # after the column's end, in samples
        return max(0, last_sample) / c.sample_rate

    def _frames_ready(self) -> int:
        """Mel frames whose window lies inside the samples pushed so far."""
        c = self.mel.config
        return max(0, (self.samples.end - c.n_fft + c.padding) // c.hop_length + 1)

    def _compute_frames(self, upto: int, num_samples: int) -> None:
        if upto > self.frames.end:
            cm = ChunkedMel(self.mel, lambda a, b: self.samples.get(a, b).numpy(), num_samples)
            self.frames.append(cm.frames(self.frames.end, upto))
        c = self.mel.config
        keep = max(0, self.frames.end - math.ceil(c.padding / c.hop_length))  # next frame's first sample
        self.samples.drop_before(min(keep * c.hop_length, self.samples.end))

    @torch.no_grad()
    def _encode(self, j1: int, num_frames: int) -> torch.Tensor:
        j0, d = self.columns, self.d
        if j1 <= j0:
            return torch.zeros(len(self.tokenizer.codebook_sizes), 0, dtype=torch.long)
        a, b = max(0, j0 * d - self.left), min(num_frames, j1 * d + self.right)
        codes = self.tokenizer.encode(self.frames.get(a, b).unsqueeze(0))[0]
        skip = (j0 * d - a) // d
        self.columns = j1
        self.frames.drop_before(max(0, j1 * d - self.left))
        return codes[:, skip:skip + j1 - j0]

    def push(self, block: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Add mono samples; returns the columns that became final, ``[K, m]`` int64."""
        if self.finished:
            raise SpectokError("StreamEncoder: push after finish")
        x = torch.as_tensor(np.asarray(block, dtype=np.float32) if not isinstance(block, torch.Tensor) else block)
        if x.dim() != 1:
            raise SpectokError(f"stream blocks must be mono [n] samples, got shape {tuple(x.shape)}")
        self.samples.append(x.detach().float().cpu())
        ready = self._frames_ready()
        self._compute_frames(ready, num_samples=10 ** 18)  # no frame computed here reaches the end
        return self._encode(max(0, (ready - self.right) // self.d), num_frames=ready)

    def finish(self) -> torch.Tensor:
        """The end of the audio: the remaining columns ``[K, m]``."""
        if self.finished:
            raise SpectokError("StreamEncoder: finish called twice")
        self.finished = True
        c, n = self.mel.config, self.samples.end
        if n <= c.padding or c.num_frames(n) < 1:
            raise AudioError("stream", f"{n} samples is too short for the mel front end")
        total = c.num_frames(n)
        self._compute_frames(total, num_samples=n)
        return self._encode(math.ceil(total / self.d), num_frames=total)


class StreamDecoder:
    """Token columns -> audio blocks, equal to a whole-file decode.

    Args:
        tokenizer: a time-local tokenizer that states its ``decoder_receptive_field``.
        vocoder: a time-local vocoder that states its ``receptive_field`` (Griffin-Lim does).
        step_frames: vocode only once this many new mel frames are final (``None``: half the
            vocoder's look-ahead, at least 1). Each vocoder call recomputes its context
            on both sides, so tiny steps cost far more than the audio they add (Griffin-Lim with
            32 iterations needs about 200 frames of context each way); a step adds at most its
            own length to the latency.

    ``push(codes [K, m]) -> audio [n]`` float32 (the samples that became final);
    ``finish(num_samples=None) -> audio [n]``: the rest, trimmed or padded so the whole output
    has ``num_samples`` samples when given (as a token file's header says), else every frame's.
    """

    def __init__(self, tokenizer: AudioTokenizer, vocoder: Vocoder, step_frames: int | None = None) -> None:
        for model, field, what in ((tokenizer, tokenizer.decoder_receptive_field, "decoder_receptive_field"),
                                   (vocoder, vocoder.receptive_field, "receptive_field")):
            if field is None:
                raise SpectokError(f"{type(model).__name__} does not state its {what}: it cannot stream")
        _refuse_non_local(tokenizer, type(tokenizer).__name__)
        _refuse_non_local(vocoder, type(vocoder).__name__)
        self.tokenizer, self.vocoder = tokenizer, vocoder
        self.d, self.hop = tokenizer.time_downsample, vocoder.hop
        self.col_ctx = side_context(tokenizer.decoder_receptive_field, 0)
        self.past_ctx = side_context(vocoder.receptive_field, 0)  # mel frames kept before a piece
        self.future_ctx = min(self.past_ctx, int(vocoder.lookahead) + 1)  # and awaited after it
        self.step = max(1, self.future_ctx // 2 if step_frames is None else int(step_frames))
        k = len(tokenizer.codebook_sizes)
        self.codes = _Buffer(torch.zeros(k, 0, dtype=torch.long))
        self.mel = _Buffer(torch.zeros(tokenizer.mel_config.n_mels, 0))
        self.samples_out = 0
        self.finished = False

    @property
    def latency_seconds(self) -> float:
        """Audio time a column must be followed by before all of its samples are final."""
        frames = self.col_ctx * self.d + self.future_ctx + self.step - 1
        return frames * self.hop / self.vocoder.sample_rate

    @torch.no_grad()
    def _decode_mel(self, upto_columns: int, total_columns: int) -> None:
        """Extend the decoded mel to the frames of columns ``< upto_columns``."""
        j0 = self.mel.end // self.d
        if upto_columns <= j0:
            return
        a, b = max(0, j0 - self.col_ctx), min(total_columns, upto_columns + self.col_ctx)
        mel = self.tokenizer.decode(self.codes.get(a, b).unsqueeze(0))[0]
        self.mel.append(mel[:, (j0 - a) * self.d:(upto_columns - a) * self.d])
        self.codes.drop_before(max(0, upto_columns - self.col_ctx))

    @torch.no_grad()
    def _vocode(self, upto_frames: int, total_frames: int) -> torch.Tensor:
        f0 = self.samples_out // self.hop
        if upto_frames <= f0:
            return torch.zeros(0)
        a, b = max(0, f0 - self.past_ctx), min(total_frames, upto_frames + self.future_ctx)
        wav = self.vocoder.vocode(self.mel.get(a, b).unsqueeze(0), start_frame=a)[0]
        out = wav[(f0 - a) * self.hop:(upto_frames - a) * self.hop]
        self.samples_out = upto_frames * self.hop
        self.mel.drop_before(max(0, upto_frames - self.past_ctx))
        return out

    def push(self, codes: np.ndarray | torch.Tensor) -> np.ndarray:
        """Add token columns ``[K, m]``; returns the audio samples that became final (float32)."""
        if self.finished:
            raise SpectokError("StreamDecoder: push after finish")
        c = torch.as_tensor(np.asarray(codes) if not isinstance(codes, torch.Tensor) else codes).long().cpu()
        k = len(self.tokenizer.codebook_sizes)
        if c.dim() != 2 or c.shape[0] != k:
            raise SpectokError(f"stream columns must be codes [{k}, m], got shape {tuple(c.shape)}")
        self.codes.append(c)
        # mel frames final once decoded; the newest column's frames may lie past the end (whole
        # decode cuts the mel at num_samples), so mid-stream they are never vocoded as context
        frames = min((self.codes.end - self.col_ctx) * self.d, (self.codes.end - 1) * self.d)
        if frames - self.future_ctx < self.samples_out // self.hop + self.step:
            return np.zeros(0, np.float32)
        self._decode_mel(self.codes.end - self.col_ctx, total_columns=self.codes.end)
        return self._vocode(frames - self.future_ctx, total_frames=frames).numpy()

    def finish(self, num_samples: int | None = None) -> np.ndarray:
        """The end of the codes: the remaining samples (the whole output then has ``num_samples``)."""
        if self.finished:
            raise SpectokError("StreamDecoder: finish called twice")
        self.finished = True
        total_cols = self.codes.end
        if total_cols == 0:
            raise SpectokError("stream: no token columns were pushed")
        self._decode_mel(total_cols, total_columns=total_cols)
        frames = total_cols * self.d
        if num_samples is not None:
            frames = min(frames, max(1, math.ceil(num_samples / self.hop)))
        if frames < self.samples_out // self.hop:
            raise SpectokError(f"stream: num_samples {num_samples} is shorter than the audio already returned")
        out = self._vocode(frames, total_frames=frames).numpy()
        if num_samples is None:
            return out
        want = num_samples - (self.samples_out - len(out))
        return out[:want] if len(out) >= want else np.pad(out, (0, want - len(out)))
