"""spectok.Pipeline: batching over different lengths, chunked long-file inference, mel and fingerprint checks."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import soundfile as sf
import torch
from pipeline_helpers import SMALL_MEL, FrameVocoder, TinyTokenizer

from spectok.audio.io import load_audio
from spectok.audio.mel import MelSpectrogram
from spectok.errors import AudioError, MelMismatchError, SpectokError, TokenFileError
from spectok.inference.chunking import ChunkedEncoder, ChunkedMel, array_reader, is_time_local
from spectok.pipeline import Pipeline
from spectok.tokenizers.conv import ConvVQVAE1d


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    """About 40 s of real speech at 16 kHz: LibriSpeech clips end to end."""
    from conftest import shared_path

    clips = sorted(shared_path("LibriSpeech", "train-clean-100").rglob("*.flac"))[:4]
    return np.concatenate([load_audio(p, 16000)[0] for p in clips])


def assert_equal_up_to_ties(chunked: torch.Tensor, whole: torch.Tensor, latents: torch.Tensor,
                            codebooks: torch.Tensor, tie: float = 1e-4) -> None:
    """Codes ``[K, T']`` equal, except where the whole-file latent is a near tie between two codes.

    Convolutions over inputs of different lengths round differently (~1e-7), so an argmin whose
    best two distances are closer than that may flip; anything else is a chunking error.
    ``latents``: ``[K, dim, T']``; ``codebooks``: ``[K, size, dim]``.
    """
    assert chunked.shape == whole.shape
    diff = chunked != whole
    if not diff.any():
        return
    dist = ((latents.permute(0, 2, 1)[:, :, None, :] - codebooks[:, None]) ** 2).sum(-1)  # [K, T', size]
    two = dist.topk(2, dim=-1, largest=False).values
    margin = (two[..., 1] - two[..., 0]) / two[..., 1].clamp_min(1e-12)
    assert (margin[diff] < tie).all(), f"{int(diff.sum())} codes differ, not all at near ties"
    assert diff.float().mean() < 0.01


def _tiny(speech: np.ndarray, **kw) -> TinyTokenizer:
    """A tiny tokenizer whose codebooks are drawn from real latents, so its codes vary."""
    tok = TinyTokenizer(SMALL_MEL, **kw).eval()
    return tok.fit_codebook(MelSpectrogram(SMALL_MEL)(torch.from_numpy(speech[:16000 * 10]))[0])


def _pipe(speech: np.ndarray, **kw) -> Pipeline:
    return Pipeline(_tiny(speech), FrameVocoder(SMALL_MEL), **kw)


@pytest.mark.parametrize("chunk", [1, 7, 100, 1000])
def test_chunked_mel_equals_whole_mel(speech, chunk) -> None:
    wav = speech[: 16000 * 3 + 77]
    mel = MelSpectrogram(SMALL_MEL)
    whole = mel(torch.from_numpy(wav))[0]
    cm = ChunkedMel(mel, array_reader(wav), len(wav))
    assert cm.num_frames == whole.shape[-1]
    torch.testing.assert_close(cm.all(chunk), whole, rtol=0, atol=1e-5)
    torch.testing.assert_close(cm.frames(5, 9), whole[:, 5:9], rtol=0, atol=1e-5)


def test_chunked_codes_equal_whole_file_codes(speech) -> None:
    """Identical codes for chunks of 2 s, 7 s, 30 s and the whole file (a time-local encoder)."""
    tok = _tiny(speech)
    assert is_time_local(tok.encoder)
    wav = speech
    mel = MelSpectrogram(SMALL_MEL)
    whole = tok.encode(mel(torch.from_numpy(wav)))[0]
    assert whole.unique().numel() > 20  # the codes vary, so a wrong chunking would show
    cm = ChunkedMel(mel, array_reader(wav), len(wav))
    assert len(wav) / 16000 > 30
    latents = tok.latent(mel(torch.from_numpy(wav)))[0]
    for seconds in (2, 7, 30):
        chunked = ChunkedEncoder(tok, int(seconds * SMALL_MEL.frame_rate)).encode(cm.frames, cm.num_frames)
        assert_equal_up_to_ties(chunked, whole, latents, tok.codebook.detach())
    # and the check can fail: without context the chunk borders change codes
    blind = ChunkedEncoder(tok, int(2 * SMALL_MEL.frame_rate), receptive_field=0).encode(cm.frames, cm.num_frames)
    assert not torch.equal(blind, whole)


def test_chunks_too_small_for_the_receptive_field_still_exact(speech) -> None:
    tok = _tiny(speech)
    mel = MelSpectrogram(SMALL_MEL)(torch.from_numpy(speech[:32000]))[0]
    whole = tok.encode(mel[None])[0]
    chunked = ChunkedEncoder(tok, chunk_frames=4).encode(lambda a, b: mel[:, a:b], mel.shape[-1])
    assert_equal_up_to_ties(chunked, whole, tok.latent(mel[None])[0], tok.codebook.detach())


def test_pipeline_long_input_uses_chunks_and_matches_whole(speech) -> None:
    pipe = _pipe(speech, chunk_seconds=2.0)
    tf = pipe.encode(speech, pipe.sample_rate)
    mel = MelSpectrogram(SMALL_MEL)(torch.from_numpy(speech))
    whole = pipe.tokenizer.encode(mel)[0]
    assert_equal_up_to_ties(torch.from_numpy(tf.codes), whole, pipe.tokenizer.latent(mel)[0],
                            pipe.tokenizer.codebook.detach())
    assert tf.num_samples == len(speech)
    audio = pipe.decode(tf)
    assert audio.shape == (len(speech),) and audio.dtype == np.float32


def test_batched_encode_of_different_lengths(speech) -> None:
    pipe = _pipe(speech, batch_size=3)
    lengths = [3000, 16000, 9001, 24000, 5000]
    wavs = [speech[i * 1000:i * 1000 + n] for i, n in enumerate(lengths)]
    batched = pipe.encode(wavs, pipe.sample_rate)
    d, rf = pipe.time_downsample, pipe.receptive_field
    for w, tf in zip(wavs, batched):
        alone = pipe.encode(w, pipe.sample_rate)
        cols = -(-SMALL_MEL.num_frames(len(w)) // d)
        assert tf.codes.shape == (2, cols) and tf.num_samples == len(w)
        # padding with silence can only change the last columns (within the receptive field of the end)
        keep = cols - (-(-rf // d)) - 1
        np.testing.assert_array_equal(tf.codes[:, :keep], alone.codes[:, :keep])
    audio = pipe.decode(batched)
    assert [len(a) for a in audio] == lengths


def test_reconstruct_resamples_and_keeps_length(speech) -> None:
    pipe = _pipe(speech)
    wav_8k = speech[:8000:2]  # pretend 8 kHz
    out = pipe.reconstruct(wav_8k, sample_rate=8000)
    assert out.shape == (8000,)  # 0.5 s at the pipeline's 16 kHz


def test_encode_file_streams_and_matches_in_memory(tmp_path, speech) -> None:
    path = tmp_path / "long.wav"
    sf.write(path, speech, 16000, subtype="FLOAT")
    pipe = _pipe(speech, chunk_seconds=3.0)
    from_file = pipe.encode_file(path)
    in_memory = pipe.encode(speech, pipe.sample_rate)
    np.testing.assert_array_equal(from_file.codes, in_memory.codes)
    assert from_file.metadata == {"source": "long.wav"}


def test_mel_mismatch_names_fields() -> None:
    other = FrameVocoder(dict(SMALL_MEL.to_dict(), n_mels=40, hop_length=160))
    with pytest.raises(MelMismatchError, match=r"hop_length.*n_mels|n_mels.*hop_length"):
        Pipeline(TinyTokenizer(SMALL_MEL), other)


def test_foreign_fingerprint_refused_unless_forced(speech) -> None:
    pipe = _pipe(speech)
    tf = pipe.encode(speech[:8000], pipe.sample_rate)
    other = Pipeline(_tiny(speech, seed=1, dim=4), FrameVocoder(SMALL_MEL))
    assert other.tokenizer.fingerprint() != pipe.tokenizer.fingerprint()
    with pytest.raises(TokenFileError, match="use --force"):
        other.decode(tf)
    assert other.decode(tf, force=True).shape == (8000,)
    bigger = Pipeline(TinyTokenizer(SMALL_MEL, codebook_size=128), FrameVocoder(SMALL_MEL))
    with pytest.raises(TokenFileError, match="codebook sizes"):
        bigger.decode(tf, force=True)


def test_too_short_input_is_a_clear_error(speech) -> None:
    with pytest.raises(AudioError, match="too short"):
        _pipe(speech).encode(np.zeros(10, np.float32), 16_000)


def test_an_array_without_a_sample_rate_is_refused(speech) -> None:
    pipe = _pipe(speech)
    for call in (lambda: pipe.encode(speech[:8000]), lambda: pipe.encode([speech[:8000]]),
                 lambda: pipe.reconstruct(speech[:8000])):
        with pytest.raises(SpectokError, match=f"give sample_rate.*{pipe.sample_rate} Hz"):
            call()


def test_groupnorm_encoder_warns_that_chunks_are_approximate() -> None:
    tok = TinyTokenizer(SMALL_MEL)
    tok.encoder.insert(1, torch.nn.GroupNorm(4, 16))
    assert not is_time_local(tok.encoder)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ChunkedEncoder(tok.eval(), 100)
    assert any("GroupNorm" in str(w.message) for w in caught)


def test_real_conv_tokenizer_chunked_codes_equal_whole(speech) -> None:
    """The project's 1-D conv VQ-VAE without time normalisation: chunked == whole."""
    torch.manual_seed(0)
    tok = ConvVQVAE1d(mel=SMALL_MEL.to_dict(), channels=(32, 32, 32), strides=(2, 2), norm="none",
                      quantizer={"type": "vq", "dim": 8, "codebook_size": 32}).eval()
    mel = MelSpectrogram(SMALL_MEL)(torch.from_numpy(speech[: 16000 * 12]))[0]
    with torch.no_grad():  # codes drawn from real latents, so that they vary
        z = tok._latent(mel[None])[0]
        tok.quantizer.codebook.copy_(z[:, torch.linspace(0, z.shape[-1] - 1, 32).long()].T)
    whole = tok.encode(mel[None])[0]
    assert whole.unique().numel() > 8
    get = lambda a, b: mel[:, a:b]  # noqa: E731
    with torch.no_grad():
        latents, codebook = tok._latent(mel[None]), tok.quantizer.codebook[None]
    for frames in (int(2 * SMALL_MEL.frame_rate), int(7 * SMALL_MEL.frame_rate)):
        assert_equal_up_to_ties(ChunkedEncoder(tok, frames).encode(get, mel.shape[-1]), whole, latents, codebook)
    assert not torch.equal(ChunkedEncoder(tok, 100, receptive_field=0).encode(get, mel.shape[-1]), whole)


def test_chunked_decode_and_vocode_equal_whole(speech) -> None:
    from spectok.inference.chunking import decode_chunked, vocode_chunked

    tok = _tiny(speech)
    codes = tok.encode(MelSpectrogram(SMALL_MEL)(torch.from_numpy(speech[: 16000 * 20])))[0]
    whole = tok.decode(codes[None])[0]
    for cols in (7, 50, 1000):
        torch.testing.assert_close(decode_chunked(tok, codes, cols), whole, rtol=0, atol=1e-4)
    blind = decode_chunked(tok, codes, 7, context_columns=0)
    assert (blind - whole).abs().max() > 1e-3  # the context matters, so the check above can fail
    voc = FrameVocoder(SMALL_MEL)
    torch.testing.assert_close(vocode_chunked(voc, whole, 33), voc(whole[None])[0], rtol=0, atol=1e-5)


def test_default_model_chunked_codes_equal_whole_file(ljspeech_wavs) -> None:
    """The released default tokenizer (time-local, residual VQ): chunks of 2 s, 7 s and 30 s give the
    whole-file codes."""
    from spectok.tokenizers import load_tokenizer

    tok = load_tokenizer("default")
    rate = tok.mel_config.sample_rate
    wav = np.concatenate([load_audio(p, rate)[0] for p in ljspeech_wavs[:6]])[: rate * 40]
    mel = MelSpectrogram(tok.mel_config)(torch.from_numpy(wav))[0]
    whole = tok.encode(mel[None])[0]
    assert whole.shape[0] == len(tok.codebook_sizes) and whole.unique().numel() > 20
    get = lambda a, b: mel[:, a:b]  # noqa: E731
    for seconds in (2, 7, 30):
        chunked = ChunkedEncoder(tok, int(seconds * tok.mel_config.frame_rate)).encode(get, mel.shape[-1])
        assert (chunked == whole).float().mean() > 0.999, f"{seconds} s chunks"
    no_context = ChunkedEncoder(tok, int(2 * tok.mel_config.frame_rate), receptive_field=0)
    assert (no_context.encode(get, mel.shape[-1]) == whole).float().mean() < 0.99  # the check can fail


def test_decode_blocks_equal_decode_and_a_long_file_is_written_in_pieces(tmp_path, ljspeech_wavs):
    """A long token file's waveform comes as chunk-sized blocks whose join is decode()'s output, and
    save_audio writes the blocks to the same file as the whole array."""
    import soundfile as sf

    from spectok.audio.io import load_audio, save_audio
    from spectok.pipeline import Pipeline
    from spectok.tokenizers import load_tokenizer
    from spectok.vocoders import GriffinLim

    tok = load_tokenizer("default")
    pipe = Pipeline(tok, GriffinLim(tok.mel_config, n_iter=4), chunk_seconds=1.0)
    wav = np.concatenate([load_audio(p, 16000)[0] for p in ljspeech_wavs[:2]])
    tf = pipe.encode(wav, pipe.sample_rate)
    assert pipe.is_long_tokens(tf)
    blocks = list(pipe.decode_blocks(tf))
    assert len(blocks) > 3 and max(len(b) for b in blocks) <= pipe.chunk_frames * pipe.hop_length
    whole = pipe.decode(tf)
    assert np.array_equal(np.concatenate(blocks), whole) and len(whole) == len(wav)
    save_audio(tmp_path / "blocks.wav", iter(blocks), 16000)
    save_audio(tmp_path / "whole.wav", whole, 16000)
    assert np.array_equal(sf.read(tmp_path / "blocks.wav")[0], sf.read(tmp_path / "whole.wav")[0])


def test_the_pipeline_leaves_model_modes_as_it_found_them_and_encode_is_pure():
    """A tokenizer with batch norm and dropout, in training mode: Pipeline calls change no mode, no
    running statistic, and give the same codes every time (eval-mode codes)."""
    from spectok.tokenizers import ConvVQVAE1d

    torch.manual_seed(0)
    tok = ConvVQVAE1d(mel="speech-16k", channels=(16, 16), strides=(2,), num_res_blocks=1, norm="batch",
                      dropout=0.3, quantizer={"type": "vq", "dim": 8, "codebook_size": 32})
    tok.train()
    tok.encoder.eval()  # a submodule in its own mode must keep it too
    before = {k: v.clone() for k, v in tok.state_dict().items()}
    wav = np.random.default_rng(0).standard_normal(16_000).astype(np.float32) * 0.1
    pipe = Pipeline(tok)
    first = pipe.encode(wav, sample_rate=16_000).codes
    again = pipe.reconstruct(wav, sample_rate=16_000)
    assert tok.training and not tok.encoder.training and tok.decoder.training
    assert all(torch.equal(before[k], v) for k, v in tok.state_dict().items())
    assert np.array_equal(first, pipe.encode(wav, sample_rate=16_000).codes) and again.shape == wav.shape
    assert torch.equal(tok.encode(pipe.log_mel(wav)[None])[0], torch.from_numpy(first))
    assert tok.training
    tok.eval()
    assert np.array_equal(first, pipe.encode(wav, sample_rate=16_000).codes)
