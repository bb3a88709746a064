"""``spectok.Pipeline``: waveforms ⇄ token files ⇄ waveforms, for users.

Example::

    tok = spectok.load_tokenizer("tokenizer.safetensors")
    pipe = spectok.Pipeline(tok, spectok.GriffinLim(tok.mel_config))
    tokens = pipe.encode(wav, sample_rate)            # TokenFile: codes [K, T'] + facts
    audio = pipe.decode(tokens)                        # float32 [num_samples] at pipe.sample_rate
    many = pipe.encode([wav_a, wav_b], sample_rate)    # batched; different lengths are fine

Batches are formed from items of similar length; each item's log-mel is computed on its
own and padded with the log floor (silence) to the batch's longest, and outputs are
trimmed to each item's true length (codes to ``ceil(frames / d)`` columns, audio to the
original number of samples). Items longer than ``chunk_seconds`` are processed alone in
overlapping chunks (:mod:`spectok.inference.chunking`), so memory stays bounded whatever
the length, and the codes equal those of a whole-file encode for time-local encoders.

Streaming (:meth:`Pipeline.stream_encode`, :meth:`Pipeline.stream_decode`) takes blocks of any
size and yields each output as soon as it is final, equal to the whole-file result::

    for codes in pipe.stream_encode(microphone_blocks(), 16000):   # codes [K, m] int64
        send(codes)
    for audio in pipe.stream_decode(received_columns()):    # float32 blocks
        play(audio)
"""

from __future__ import annotations

import functools
import inspect
import math
import os
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from spectok.audio.io import AudioReader, resample
from spectok.audio.mel import INFERENCE_STFT_DTYPE, MelConfig, MelSpectrogram
from spectok.contracts import Tokenizer, Vocoder, audio_tokenizer, eval_mode
from spectok.errors import AudioError, SpectokError, TokenFileError
from spectok.inference.chunking import (
    ChunkedEncoder,
    ChunkedMel,
    SampleReader,
    array_reader,
    decode_chunked,
    encoder_geometry,
    vocode_pieces,
)
from spectok.inference.streaming import StreamDecoder, StreamEncoder
from spectok.tokens import TokenFile
from spectok.vocoders import GriffinLim

Audio = np.ndarray | torch.Tensor


def _as_wave(x: Audio) -> np.ndarray:
    arr = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    arr = np.asarray(arr, dtype=np.float32)
    if arr.ndim != 1:
        raise SpectokError(f"expected a mono waveform [T], got shape {tuple(arr.shape)}")
    if not np.isfinite(arr).all():
        bad = int(np.count_nonzero(~np.isfinite(arr)))
        raise AudioError("waveform", f"{bad} of {arr.size} samples are NaN or infinite")
    return arr


def _as_list(audio: Audio | Sequence[Audio]) -> tuple[list[np.ndarray], bool]:
    """Items as a list of [T] arrays, and whether a single item was given."""
    if isinstance(audio, (np.ndarray, torch.Tensor)):
        if audio.ndim == 1:
            return [_as_wave(audio)], True
        if audio.ndim == 2:
            return [_as_wave(a) for a in audio], False
        raise SpectokError(f"expected a waveform [T] or a batch [B, T], got shape {tuple(audio.shape)}")
    return [_as_wave(a) for a in audio], False


def _inference(fn: Callable) -> Callable:
    """A Pipeline method run under ``torch.no_grad`` with the tokenizer and vocoder in eval mode
    (:func:`~spectok.contracts.eval_mode`), every module back to its own mode after the call,
    or, for a generator, around each step, so the caller's models are left as they were."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def steps(self: Pipeline, *args: Any, **kwargs: Any) -> Iterator[Any]:
            it = fn(self, *args, **kwargs)
            while True:
                with torch.no_grad(), eval_mode(self.tokenizer, self._vocoder):
                    try:
                        item = next(it)
                    except StopIteration:
                        return
                yield item
        return steps

    @functools.wraps(fn)
    def call(self: Pipeline, *args: Any, **kwargs: Any) -> Any:
        with torch.no_grad(), eval_mode(self.tokenizer, self._vocoder):
            return fn(self, *args, **kwargs)
    return call


class Pipeline:
    """A tokenizer and (optionally) a vocoder joined for inference.

    Args:
        tokenizer: an :class:`~spectok.contracts.AudioTokenizer`. Every call runs it (and the
            vocoder) in eval mode and leaves both in the modes they had, so a model being trained
            can be scored through a Pipeline mid-run.
        vocoder: a :class:`~spectok.contracts.Vocoder`; ``None`` means Griffin-Lim on
            the tokenizer's mel config, built when first needed.
        chunk_seconds: longest stretch processed in one piece; longer inputs are chunked.
        batch_size: items per forward pass for lists of short inputs of equal length (items of
            other lengths run alone). The default 1 makes every item's codes and audio bit-identical
            whatever else is in the list (a resumed run's outputs equal an uninterrupted one's);
            larger batches are faster on a GPU but can differ in the last bits (~1e-6).
        stft_dtype: precision of the front end's STFT: ``torch.float32`` (default,
            :data:`~spectok.audio.mel.INFERENCE_STFT_DTYPE`) is ~3x faster on CPU and differs
            by up to ~1e-3 in log units near silence; ``torch.float64`` reproduces prepared
            (training) features to 1e-6.

    Raises:
        MelMismatchError: when the vocoder's mel config differs from the tokenizer's (the
            message names the differing fields).
    """

    def __init__(self, tokenizer: Tokenizer, vocoder: Vocoder | None = None, *, chunk_seconds: float = 30.0,
                 batch_size: int = 1, stft_dtype: torch.dtype = INFERENCE_STFT_DTYPE) -> None:
        if not (math.isfinite(chunk_seconds) and chunk_seconds > 0) or int(batch_size) < 1:
            raise SpectokError(f"Pipeline: chunk_seconds must be finite and > 0 and batch_size >= 1 "
                               f"(got {chunk_seconds}, {batch_size})")
        self.tokenizer = audio_tokenizer(tokenizer)  # modes left as they are: each call runs them in eval mode
        self.mel_config: MelConfig = self.tokenizer.mel_config
        self._vocoder = None
        if vocoder is not None:
            self.vocoder = vocoder
        self.mel = MelSpectrogram(self.mel_config, stft_dtype=stft_dtype)
        self.batch_size = int(batch_size)
        self.time_downsample, self.receptive_field = encoder_geometry(tokenizer)
        d = self.time_downsample
        self.chunk_frames = max(d, int(chunk_seconds * self.mel_config.frame_rate) // d * d)
        self._encoder: ChunkedEncoder | None = None

    # ---- parts -----------------------------------------------------------------------------
    @property
    def vocoder(self) -> nn.Module:
        """The vocoder; Griffin-Lim on the tokenizer's mel config when none was given."""
        if self._vocoder is None:
            self._vocoder = GriffinLim(self.mel_config)
        return self._vocoder

    @vocoder.setter
    def vocoder(self, vocoder: nn.Module) -> None:
        voc_mel = getattr(vocoder, "mel_config", None)
        if voc_mel is None:
            raise SpectokError(f"{type(vocoder).__name__} carries no mel_config; cannot check it fits the tokenizer")
        voc_mel.check_compatible(self.mel_config, what="vocoder and tokenizer mel configs",
                                 sides=("vocoder", "tokenizer"))
        self._vocoder = vocoder

    @property
    def sample_rate(self) -> int:
        """Hz of the audio the pipeline reads (after resampling) and writes."""
        return self.mel_config.sample_rate

    @property
    def hop_length(self) -> int:
        return self.mel_config.hop_length

    def _token_file(self, codes: torch.Tensor, num_samples: int, metadata: dict | None = None) -> TokenFile:
        tok = self.tokenizer
        return TokenFile(codes=codes.cpu().numpy(), tokenizer_fingerprint=tok.fingerprint(),
                         sample_rate=self.sample_rate, frame_rate=tok.frame_rate,
                         codebook_sizes=tuple(tok.codebook_sizes), num_samples=num_samples,
                         metadata={**self.layout_metadata, **(metadata or {})})

    @property
    def layout_metadata(self) -> dict:
        """Token-file metadata that says which rows share a codebook (a 2-D grid's rows), for usage counts."""
        rows = int(self.tokenizer.rows_per_codebook)
        return {"rows_per_codebook": rows} if rows > 1 else {}

    def _chunked_encoder(self) -> ChunkedEncoder:
        if self._encoder is None:
            self._encoder = ChunkedEncoder(self.tokenizer, self.chunk_frames)
        return self._encoder

    # ---- wav -> codes ----------------------------------------------------------------------
    def log_mel(self, waveform: Audio) -> torch.Tensor:
        """``[T]`` waveform at :attr:`sample_rate` -> ``[n_mels, frames]`` log-mel, computed in chunks."""
        wav = _as_wave(waveform)
        self._check_length(len(wav))
        return ChunkedMel(self.mel, array_reader(wav), len(wav)).all(self.chunk_frames)

    def _check_length(self, n: int, name: str = "waveform") -> None:
        if n <= self.mel_config.padding or self.mel_config.num_frames(n) < 1:
            raise AudioError(name, f"{n} samples is too short for the mel front end "
                                   f"(needs more than {max(self.mel_config.padding, self.mel_config.n_fft // 2)})")

    @_inference
    def encode(self, audio: Audio | Sequence[Audio], sample_rate: int | None = None) -> TokenFile | list[TokenFile]:
        """Waveform(s) -> :class:`TokenFile` (one per item; a list in, a list out).

        Args:
            audio: a ``[T]`` waveform, a ``[B, T]`` batch, or a list of ``[T_i]`` waveforms.
            sample_rate: Hz of ``audio`` (required: an array carries no rate); resampled to
                :attr:`sample_rate` when it differs.

        Raises:
            SpectokError: no ``sample_rate`` given.
        """
        if sample_rate is None:
            raise SpectokError(f"Pipeline.encode: give sample_rate, the Hz of the audio (this model runs at "
                               f"{self.sample_rate} Hz): an array carries no rate, and audio at another rate would "
                               f"be tokenized as if it were at this one; spectok.load_audio returns (wav, rate)")
        items, single = _as_list(audio)
        if sample_rate != self.sample_rate:
            items = [resample(w, int(sample_rate), self.sample_rate) for w in items]
        out: list[TokenFile | None] = [None] * len(items)
        short = []
        for i, w in enumerate(items):
            self._check_length(len(w), f"item {i}")
            if self.is_long(len(w)):
                out[i] = self._encode_long(array_reader(w), len(w))
            else:
                short.append(i)
        for idx in self._equal_batches(short, lambda i: len(items[i])):
            codes = self._encode_mel(torch.cat([self.mel(torch.from_numpy(items[i])) for i in idx]))
            for row, i in enumerate(idx):
                out[i] = self._token_file(codes[row], len(items[i]))
        return out[0] if single else out  # type: ignore[return-value]

    def _equal_batches(self, indices: list[int], length: Callable[[int], Hashable]) -> Iterator[list[int]]:
        """``indices`` in batches of at most :attr:`batch_size` whose items have equal ``length`` (a key).

        Only equal lengths share a forward pass: padding a shorter item would change what its last
        frames see (every layer pads its own activations), so its output would depend on the other
        files in its batch. This way an item's codes and audio are the same alone or in any batch.
        """
        groups: dict[Hashable, list[int]] = {}
        for i in indices:
            groups.setdefault(length(i), []).append(i)
        for _, same in sorted(groups.items()):
            for b in range(0, len(same), self.batch_size):
                yield same[b:b + self.batch_size]

    def is_long(self, num_samples: int) -> bool:
        """Whether audio of ``num_samples`` (at :attr:`sample_rate`) is processed in chunks."""
        return self._long(self.mel_config.num_frames(num_samples))

    def _long(self, frames: int) -> bool:
        """The one chunking decision, in mel frames against :attr:`chunk_frames` (encode and decode)."""
        return frames > self.chunk_frames

    @property
    def _device(self) -> torch.device:
        """Where the tokenizer's weights are (the CPU for a model without any)."""
        return next(self.tokenizer.parameters(), torch.empty(0)).device

    def _encode_mel(self, mel: torch.Tensor) -> torch.Tensor:
        """``[B, n_mels, T]`` log-mel (CPU) -> codes ``[B, K, T']`` on the CPU, run on the tokenizer's device."""
        return self.tokenizer.encode(mel.to(self._device)).cpu()

    def _encode_long(self, read, num_samples: int, metadata: dict | None = None) -> TokenFile:
        cm = ChunkedMel(self.mel, read, num_samples)
        if self.receptive_field is None:  # cannot chunk: whole file
            codes = self._encode_mel(cm.all(self.chunk_frames).unsqueeze(0))[0]
        else:
            device = self._device
            codes = self._chunked_encoder().encode(lambda a, b: cm.frames(a, b).to(device), cm.num_frames).cpu()
        return self._token_file(codes, num_samples, metadata)

    def reader_samples(self, reader: AudioReader) -> tuple[SampleReader, int]:
        """``(read(a, b), num_samples)`` of an open file at :attr:`sample_rate`: seeking reads when it is
        at that rate, else the whole file read once and resampled."""
        if reader.sample_rate == self.sample_rate:
            return reader.read, reader.num_samples
        wav = reader.read_all(self.sample_rate)
        return array_reader(wav), len(wav)

    @_inference
    def encode_reader(self, reader: AudioReader, metadata: dict | None = None) -> TokenFile:
        """Encode an open :class:`~spectok.audio.io.AudioReader`: a long file at :attr:`sample_rate` is
        read piecewise (never whole); a file at another rate is read whole and resampled."""
        read, n = self.reader_samples(reader)
        if n == 0:
            raise AudioError(reader.path, "no samples (zero-length audio)")
        self._check_length(n, str(reader.path))
        if self.is_long(n):
            return self._encode_long(read, n, metadata)
        tf = self.encode(read(0, n), self.sample_rate)
        tf.metadata.update(metadata or {})
        return tf

    @_inference
    def encode_file(self, path: str | os.PathLike) -> TokenFile:
        """Encode one audio file, opened once (see :meth:`encode_reader`)."""
        with AudioReader(path) as reader:
            return self.encode_reader(reader, {"source": Path(path).name})

    # ---- codes -> wav ----------------------------------------------------------------------
    def check_tokens(self, tokens: TokenFile, force: bool = False, name: str = "tokens") -> None:
        """Refuse ``tokens`` made by another tokenizer (fingerprint) unless ``force``; and always, before
        anything is allocated, tokens whose shape, rates or length disagree with each other or with
        this tokenizer (a header edited to ask for a 2 GB output is refused, not written)."""
        tok = self.tokenizer
        if tuple(tokens.codebook_sizes) != tuple(tok.codebook_sizes):
            raise TokenFileError(f"{name}: codebook sizes {list(tokens.codebook_sizes)} do not fit the "
                                 f"tokenizer's {list(tok.codebook_sizes)}")
        if not force and tokens.tokenizer_fingerprint != tok.fingerprint():
            raise TokenFileError(f"{name}: made by tokenizer {tokens.tokenizer_fingerprint}, not by this one "
                                 f"({tok.fingerprint()}); use --force (force=True) to decode anyway")
        columns = tokens.codes.shape[1]
        if columns == 0:
            raise TokenFileError(f"{name}: holds no token columns (shape {list(tokens.codes.shape)})")
        if abs(tokens.frame_rate - tok.frame_rate) > 1e-6 * tok.frame_rate:
            raise TokenFileError(f"{name}: frame rate {tokens.frame_rate:g}/s, this tokenizer makes "
                                 f"{tok.frame_rate:g} columns/s")
        if not force and tokens.sample_rate != self.sample_rate:
            raise TokenFileError(f"{name}: sample rate {tokens.sample_rate} Hz, this tokenizer's is "
                                 f"{self.sample_rate} Hz")
        expected = math.ceil(self._length(tokens) // self.hop_length / self.time_downsample)
        slack = 1 + (tok.receptive_field or 0) // self.time_downsample
        if abs(expected - columns) > slack:
            raise TokenFileError(f"{name}: num_samples {tokens.num_samples} at {tokens.sample_rate} Hz needs about "
                                 f"{expected} token columns, the file holds {columns}: inconsistent header")

    @_inference
    def decode_mel(self, codes: np.ndarray | torch.Tensor) -> torch.Tensor:
        """``[K, T']`` codes -> ``[n_mels, T' * d]`` log-mel (chunked for long inputs)."""
        c = torch.as_tensor(np.asarray(codes) if not isinstance(codes, torch.Tensor) else codes).long()
        cols = max(1, self.chunk_frames // self.time_downsample)
        if c.shape[-1] > cols:
            return decode_chunked(self.tokenizer, c, cols)
        return self.tokenizer.decode(c.unsqueeze(0))[0]

    @_inference
    def decode(self, tokens: TokenFile | Sequence[TokenFile], force: bool = False) -> np.ndarray | list[np.ndarray]:
        """Token file(s) -> float32 waveform(s) ``[num_samples]`` at :attr:`sample_rate`.

        Raises:
            TokenFileError: tokens from a tokenizer with another fingerprint (unless
                ``force``) or with codebook sizes that do not fit.
        """
        single = isinstance(tokens, TokenFile)
        items: list[TokenFile] = [tokens] if single else list(tokens)  # type: ignore[list-item]
        for i, t in enumerate(items):
            self.check_tokens(t, force, name=str(t.metadata.get("source", f"item {i}")))
        out: list[np.ndarray | None] = [None] * len(items)
        short = []
        for i, t in enumerate(items):
            if self.is_long_tokens(t):
                out[i] = np.empty(self._length(t), np.float32)  # one buffer, filled piece by piece
                pos = 0
                for block in self._long_blocks(t):
                    out[i][pos:pos + len(block)] = block
                    pos += len(block)
            else:
                short.append(i)
        # equal columns and equal lengths share a pass (see _equal_batches)
        for idx in self._equal_batches(short, lambda i: (items[i].codes.shape[1], self._length(items[i]))):
            mels = self.tokenizer.decode(torch.stack([torch.from_numpy(items[i].codes) for i in idx]))
            mels = mels[..., :min(mels.shape[-1], self._frames_for(self._length(items[idx[0]])))]
            wavs = self.vocoder(mels)
            for row, i in enumerate(idx):
                out[i] = self.fit_length(wavs[row], self._length(items[i]))
        return out[0] if single else out  # type: ignore[return-value]

    def is_long_tokens(self, tokens: TokenFile) -> bool:
        """Whether ``tokens`` decode in chunks (more frames than one chunk): see :meth:`decode_blocks`."""
        return self._long(tokens.codes.shape[1] * self.time_downsample)

    @_inference
    def decode_blocks(self, tokens: TokenFile, force: bool = False) -> Iterator[np.ndarray]:
        """One token file -> its waveform as consecutive float32 blocks; together exactly
        :meth:`decode`'s samples. A long file (:meth:`is_long_tokens`) is vocoded chunk by chunk and
        each chunk's audio yielded at once, so the whole waveform never exists in memory (the
        ``decode`` and ``reconstruct`` commands write long files this way); a short one is one block.
        """
        self.check_tokens(tokens, force, name=str(tokens.metadata.get("source", "tokens")))
        if self.is_long_tokens(tokens):
            yield from self._long_blocks(tokens)
        else:
            yield self.decode(tokens, force=force)

    def _long_blocks(self, tokens: TokenFile) -> Iterator[np.ndarray]:
        n = self._length(tokens)
        mel = self.decode_mel(tokens.codes)[:, :self._frames_for(n)]
        done = 0
        for piece in vocode_pieces(self.vocoder, mel, self.chunk_frames):
            block = piece.detach().float().cpu().numpy()[: n - done]
            done += len(block)
            if len(block):
                yield block
        if done < n:  # the header's length reaches past the last frame's samples
            yield np.zeros(n - done, np.float32)

    def _length(self, tokens: TokenFile) -> int:
        """The original length in samples at :attr:`sample_rate` (tokens forced from another rate are scaled)."""
        if tokens.sample_rate == self.sample_rate:
            return tokens.num_samples
        return round(tokens.num_samples * self.sample_rate / tokens.sample_rate)

    def _frames_for(self, num_samples: int) -> int:
        """Mel frames whose vocoded audio covers ``num_samples`` samples."""
        return max(1, math.ceil(num_samples / self.hop_length))

    @staticmethod
    def fit_length(wav: torch.Tensor, n: int) -> np.ndarray:
        """Trim or zero-pad a waveform to exactly ``n`` samples (float32 numpy)."""
        x = wav.detach().float().cpu().numpy()[:n]
        return np.pad(x, (0, n - len(x))) if len(x) < n else x

    # ---- streaming -------------------------------------------------------------------------
    def stream_encoder(self) -> StreamEncoder:
        """A :class:`~spectok.inference.streaming.StreamEncoder` on this pipeline's front end."""
        return StreamEncoder(self.tokenizer, self.mel)

    def stream_decoder(self, step_frames: int | None = None) -> StreamDecoder:
        """A :class:`~spectok.inference.streaming.StreamDecoder` on this pipeline's vocoder."""
        return StreamDecoder(self.tokenizer, self.vocoder, step_frames)

    @_inference
    def stream_encode(self, blocks: Iterable[Audio], sample_rate: int | None = None) -> Iterator[torch.Tensor]:
        """Mono blocks ``[n]`` (any sizes) at ``sample_rate`` Hz, which must be :attr:`sample_rate` -> token
        columns ``[K, m]`` int64, each yielded as soon as it is final; together they equal :meth:`encode`
        of the whole audio.

        Raises:
            SpectokError: no ``sample_rate``, or another rate than the model's (a stream is not
                resampled: resample it first); the tokenizer normalises over time or states no
                receptive field.
        """
        if sample_rate != self.sample_rate:
            raise SpectokError(f"Pipeline.stream_encode: give sample_rate={self.sample_rate} (the model's rate) "
                               f"for blocks at that rate; got {sample_rate} (a stream is not resampled: "
                               f"resample it to {self.sample_rate} Hz first)")
        enc = self.stream_encoder()
        for block in blocks:
            codes = enc.push(block)  # push checks the block (mono, float32)
            if codes.shape[-1]:
                yield codes
        codes = enc.finish()
        if codes.shape[-1]:
            yield codes

    @_inference
    def stream_decode(self, columns: Iterable[np.ndarray | torch.Tensor], num_samples: int | None = None,
                      step_frames: int | None = None) -> Iterator[np.ndarray]:
        """Token columns ``[K, m]`` (any ``m``) -> float32 audio blocks at :attr:`sample_rate`, each
        yielded as soon as it is final; together they equal :meth:`decode` of the whole token file
        with ``num_samples`` (its header's length; ``None``: every decoded frame's samples).
        ``step_frames``: vocode once this many frames are final (see
        :class:`~spectok.inference.streaming.StreamDecoder`: latency against compute)."""
        dec = self.stream_decoder(step_frames)
        for cols in columns:
            wav = dec.push(cols)
            if len(wav):
                yield wav
        yield dec.finish(num_samples)

    # ---- both ------------------------------------------------------------------------------
    @_inference
    def reconstruct(self, audio: Audio | Sequence[Audio], sample_rate: int | None = None
                    ) -> np.ndarray | list[np.ndarray]:
        """Waveform(s) at ``sample_rate`` Hz (required) -> tokens -> waveform(s) at :attr:`sample_rate`, the
        same length as the (resampled) input."""
        return self.decode(self.encode(audio, sample_rate))

    def __repr__(self) -> str:
        voc = type(self._vocoder).__name__ if self._vocoder is not None else "GriffinLim (lazy)"
        return (f"Pipeline({type(self.tokenizer).__name__} {self.tokenizer.fingerprint()}, {voc}, "
                f"{self.sample_rate} Hz, chunks of {self.chunk_frames} frames)")
