"""Exact streaming (spectok.inference.streaming) with the released `default` model on real speech:
streamed codes equal whole-file codes for every block size, streamed audio equals whole-file
decoding to float rounding, outputs come out before the input ends, and memory stays bounded."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from conftest import shared_path

import spectok
from spectok import Pipeline
from spectok.audio.io import load_audio
from spectok.errors import SpectokError
from spectok.inference.chunking import vocode_chunked
from spectok.tokenizers.conv import ConvVQVAE1d
from spectok.vocoders import GriffinLim
from spectok.vocoders.istft import ISTFTVocoder

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def tokenizer():
    return spectok.load_tokenizer("default")


@pytest.fixture(scope="module")
def speech(tokenizer, ljspeech_wavs_module) -> np.ndarray:
    """About 4.3 s of real speech at the tokenizer's rate, an odd number of samples."""
    wav, _ = load_audio(ljspeech_wavs_module[0], tokenizer.mel_config.sample_rate)
    return wav[: 4 * tokenizer.mel_config.sample_rate + 4_123]


@pytest.fixture(scope="module")
def ljspeech_wavs_module():
    return sorted(shared_path("LJSpeech-1.1", "wavs").glob("*.wav"))


def blocks_of(x: np.ndarray, size: int | list[int]):
    sizes = iter(size) if isinstance(size, list) else None
    i = 0
    while i < len(x):
        n = next(sizes) if sizes else size
        yield x[i:i + n]
        i += n


@pytest.mark.parametrize("size", [1, 160, 161, 777, 16_000, 160_000, "random"])
def test_streamed_codes_equal_whole_file_codes(tokenizer, speech, size):
    pipe = Pipeline(tokenizer)
    whole = pipe.encode(speech, pipe.sample_rate)
    if size == "random":
        size = list(np.random.default_rng(0).integers(1, 5_000, size=len(speech)))
    cols = torch.cat(list(pipe.stream_encode(blocks_of(speech, size), pipe.sample_rate)), dim=-1).numpy()
    assert cols.dtype == np.int64 and cols.shape == whole.codes.shape
    assert np.array_equal(cols, whole.codes)


@pytest.mark.parametrize(("columns", "step"), [(1, 1), (1, None), (3, 7), (50, None), (10_000, None)])
def test_streamed_audio_equals_whole_file_decode(tokenizer, speech, columns, step):
    # 4 Griffin-Lim iterations keep the test fast; the context follows the vocoder's own reach.
    # Random initial phases: the output is a smooth function of the mel, so the decoder's float
    # rounding stays float rounding (the phase-gradient start picks spectral peaks: see below)
    out, ref = streamed_and_whole(Pipeline(tokenizer, GriffinLim(tokenizer.mel_config, n_iter=4, init="random")),
                                  speech, columns, step)
    assert out.shape == ref.shape == (len(speech),)
    # the decoder's float rounding (conv on other lengths) is all that differs
    assert np.abs(out - ref).max() < 1e-4


def streamed_and_whole(pipe: Pipeline, speech: np.ndarray, columns: int, step: int | None
                       ) -> tuple[np.ndarray, np.ndarray]:
    """``speech``'s codes decoded by ``stream_decode`` fed ``columns`` at a time, and decoded whole."""
    tokens = pipe.encode(speech, pipe.sample_rate)
    pieces = (tokens.codes[:, i:i + columns] for i in range(0, tokens.codes.shape[1], columns))
    out = np.concatenate(list(pipe.stream_decode(pieces, tokens.num_samples, step_frames=step)))
    return out, pipe.decode(tokens)


def _istft(tokenizer) -> ISTFTVocoder:
    """A small iSTFT vocoder with random weights and full-size layer scales (every block counts)."""
    torch.manual_seed(0)
    voc = ISTFTVocoder(tokenizer.mel_config, dim=32, hidden=64, n_layers=3, n_fft=640).eval()
    for block in voc.blocks:
        torch.nn.init.normal_(block.gamma, 0.0, 1.0)
    return voc


@pytest.mark.parametrize(("columns", "step"), [(1, 1), (1, None), (7, 3), (10_000, None)])
def test_streamed_istft_audio_equals_whole_file_decode(tokenizer, speech, columns, step):
    out, ref = streamed_and_whole(Pipeline(tokenizer, _istft(tokenizer)), speech, columns, step)
    assert out.shape == ref.shape == (len(speech),)
    assert np.abs(out - ref).max() < 1e-4


def test_istft_receptive_field_is_tight(tokenizer, speech):
    """Pieces with the declared context equal the whole; one frame less of context differs."""
    voc = _istft(tokenizer)
    mel = Pipeline(tokenizer).log_mel(speech)[None]
    whole = voc(mel)[0]
    side, hop, f = voc.receptive_field // 2, voc.hop, 150
    enough = voc(mel[..., f - side:f + side + 1])[0, side * hop:(side + 1) * hop]
    short = voc(mel[..., f - side + 1:f + side + 1])[0, (side - 1) * hop:side * hop]
    assert torch.allclose(enough, whole[f * hop:(f + 1) * hop], atol=1e-6)
    assert not torch.allclose(short, whole[f * hop:(f + 1) * hop], atol=1e-7)


@pytest.mark.parametrize("init", ["random", "pghi"])
def test_griffin_lim_pieces_with_its_receptive_field_equal_the_whole(tokenizer, speech, init):
    """Griffin-Lim vocoded in pieces with the context it declares equals the whole (the phase-gradient
    start with a short integration period, so pieces cross its restarts)."""
    gl = GriffinLim(tokenizer.mel_config, n_iter=32 if init == "random" else 4, init=init, pghi_period=23)
    mel = Pipeline(tokenizer).log_mel(speech)
    whole = gl(mel[None])[0]
    for chunk in (37, 100):
        assert torch.allclose(vocode_chunked(gl, mel, chunk), whole, atol=1e-5)


def test_griffin_lim_streams_with_a_short_lookahead(tokenizer, speech):
    """No iteration after the phase-gradient start: the vocoder waits for 7 frames (70 ms), and the
    stream equals the whole-file decode."""
    gl = GriffinLim(tokenizer.mel_config, n_iter=0, init="pghi", pghi_period=50)
    assert gl.lookahead == 7 and gl.lookahead * gl.hop / gl.sample_rate <= 0.1
    out, ref = streamed_and_whole(Pipeline(tokenizer, gl), speech, 1, 4)
    # the decoder's float rounding can move a near-tie between two spectral peaks: a few frames
    # then start from another (equally consistent) phase, far below the signal
    assert snr_db(ref, out) > 40.0


def snr_db(ref: np.ndarray, est: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(ref.astype(np.float64) ** 2) / max(np.sum((ref - est) ** 2.0), 1e-30)))


def test_streaming_yields_before_the_input_ends(tokenizer, speech):
    pipe = Pipeline(tokenizer, GriffinLim(tokenizer.mel_config, n_iter=2))
    consumed = []

    def source():
        for i, block in enumerate(blocks_of(speech, 1_600)):  # 100 ms blocks
            consumed.append(i)
            yield block

    stream = pipe.stream_encode(source(), pipe.sample_rate)
    first = next(stream)
    assert first.shape[-1] >= 1 and len(consumed) < 10  # the first columns within a second of audio
    rest = list(stream)
    tokens = pipe.encode(speech, pipe.sample_rate)
    assert np.array_equal(torch.cat([first, *rest], -1).numpy(), tokens.codes)

    fed = []

    def columns():
        for j in range(tokens.codes.shape[1]):
            fed.append(j)
            yield tokens.codes[:, j:j + 1]

    audio = pipe.stream_decode(columns(), tokens.num_samples)
    assert len(next(audio)) > 0 and len(fed) < tokens.codes.shape[1] // 2


def test_latency_is_stated(tokenizer):
    pipe = Pipeline(tokenizer)
    enc, dec = pipe.stream_encoder(), pipe.stream_decoder()
    assert 0 < enc.latency_seconds < 1.0
    assert enc.latency_seconds < dec.latency_seconds < 5.0


def test_models_that_normalise_over_time_refuse_to_stream():
    tok = ConvVQVAE1d(mel="speech-16k", channels=[16, 16], strides=[2], num_res_blocks=0, norm="group",
                      quantizer={"type": "fsq", "levels": [5, 5, 5], "dim": 3}).eval()
    pipe = Pipeline(tok)
    with pytest.raises(SpectokError, match="cannot stream"):
        list(pipe.stream_encode([np.zeros(16_000, np.float32)], 16_000))
    with pytest.raises(SpectokError, match="cannot stream"):
        list(pipe.stream_decode([np.zeros((1, 4), np.int64)]))


def test_stream_blocks_are_checked(tokenizer):
    enc = Pipeline(tokenizer).stream_encoder()
    with pytest.raises(SpectokError, match="mono"):
        enc.push(np.zeros((2, 100), np.float32))
    with pytest.raises(Exception, match="too short"):
        enc.finish()


def test_an_hour_streams_in_bounded_memory(speech, tmp_path):
    """One hour of real speech (the clip repeated) from a generator: peak RSS grows by far less than
    the hour's samples alone would take (230 MB at 16 kHz float32)."""
    np.save(tmp_path / "clip.npy", speech)
    code = textwrap.dedent(f"""
        import resource, numpy as np, torch, spectok
        torch.set_num_threads(1)
        pipe = spectok.Pipeline(spectok.load_tokenizer("default"))
        clip = np.load({str(tmp_path / "clip.npy")!r})
        pipe.encode(clip, pipe.sample_rate)  # warm up allocator and kernels
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        total = 3600 * 16000
        def hour():
            sent = 0
            while sent < total:
                block = np.resize(clip, 16000)  # 1 s blocks
                sent += len(block)
                yield block
        cols = sum(c.shape[-1] for c in pipe.stream_encode(hour(), pipe.sample_rate))
        grew = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
        print(cols, grew)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    cols, grew_mib = out.stdout.split()
    assert int(cols) == 3600 * 16000 // 160 // spectok.load_tokenizer("default").time_downsample
    assert float(grew_mib) < 60, f"peak RSS grew by {grew_mib} MiB while streaming an hour"
