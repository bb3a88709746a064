"""The models shipped in src/spectok/models/: loadable by name, honest cards, working end to end."""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pytest
import torch

import spectok
from spectok import models
from spectok.audio.io import load_audio
from spectok.audio.mel import MelSpectrogram
from spectok.cli.main import main
from spectok.inference.chunking import ChunkedEncoder

pytestmark = pytest.mark.usefixtures("single_thread")
RELEASED = {"default": ("speech-16k", 1400.0), "ljspeech22k": ("hifigan-22k", 1200.0)}


def test_the_released_models_are_shipped() -> None:
    assert set(models.releases()) == set(RELEASED)
    assert models.find("speech16k").name == "default"


@pytest.mark.parametrize("name", sorted(RELEASED))
def test_model_loads_by_name_with_its_front_end_and_bitrate(name) -> None:
    mel, max_bitrate = RELEASED[name]
    tok = spectok.load_tokenizer(name)
    assert tok.mel_config == spectok.MelConfig.preset(mel)
    assert tok.bitrate <= max_bitrate + 0.01
    release = models.find(name)
    assert release.tokenizer.stat().st_size < 10e6
    voc = spectok.load_vocoder(name)
    assert voc.mel_config == tok.mel_config


@pytest.mark.parametrize("name", sorted(RELEASED))
def test_card_states_the_shipped_file_hash_and_its_figures(name) -> None:
    release = models.find(name)
    card = release.card.read_text(encoding="utf-8")
    sha = hashlib.sha256(release.tokenizer.read_bytes()).hexdigest()
    assert sha in card, "the card must describe the shipped file (re-run scripts/release_models.py --force-eval)"
    for section in ("## Training data", "## Training", "## Held-out results", "## Intended use and limits"):
        assert section in card
    pesq = release.headline["pesq"]
    assert re.search(rf"\| PESQ-WB \| {pesq:.3f}", card) or f"{pesq:.3f}" in card


@pytest.mark.parametrize("name", sorted(RELEASED))
def test_chunked_codes_equal_whole_file_on_real_speech(name, ljspeech_wavs) -> None:
    tok = spectok.load_tokenizer(name)
    rate = tok.mel_config.sample_rate
    wav = np.concatenate([load_audio(p, rate)[0] for p in ljspeech_wavs[:6]])[: rate * 30]
    mel = MelSpectrogram(tok.mel_config)(torch.from_numpy(wav))[0]
    whole = tok.encode(mel[None])[0]
    assert whole.unique().numel() > 50  # a trained model: codes vary with the speech
    get = lambda a, b: mel[:, a:b]  # noqa: E731
    for seconds in (2, 7):
        chunked = ChunkedEncoder(tok, int(seconds * tok.mel_config.frame_rate)).encode(get, mel.shape[-1])
        assert torch.equal(chunked, whole), f"{seconds} s chunks"
    blind = ChunkedEncoder(tok, int(2 * tok.mel_config.frame_rate), receptive_field=0).encode(get, mel.shape[-1])
    assert not torch.equal(blind, whole)  # the context matters, so the check above can fail


def test_encode_decode_with_the_default_names(tmp_path, ljspeech_wavs, capsys) -> None:
    clip = ljspeech_wavs[0]
    assert main(["encode", str(clip), "-t", "default", "-o", str(tmp_path / "tok")]) == 0
    assert main(["decode", str(tmp_path / "tok"), "-t", "default", "-v", "default", "-o", str(tmp_path / "wav")]) == 0
    out, sr = load_audio(tmp_path / "wav" / f"{clip.stem}.wav")
    ref, _ = load_audio(clip, sr)
    assert sr == 16000 and abs(len(out) - len(ref)) < 400
    # tokenized speech keeps the envelope: correlation of frame energies with the original
    frames = lambda w: np.log(np.square(w[: len(w) // 400 * 400].reshape(-1, 400)).mean(1) + 1e-8)  # noqa: E731
    n = min(len(out), len(ref)) // 400
    assert np.corrcoef(frames(out)[:n], frames(ref)[:n])[0, 1] > 0.8


TRAINED_VOCODERS = [r for r in models.releases().values() if r.trained_vocoder is not None]


@pytest.mark.parametrize("release", TRAINED_VOCODERS, ids=lambda r: r.name)
def test_trained_vocoder_ships_with_an_honest_card(release) -> None:
    """The vocoder trained on a model's decoded mels: under 5 MB, its card states the shipped file's
    SHA-256 and whether it is paired, and the index pairs it only as the card says."""
    assert release.trained_vocoder.stat().st_size <= 5e6
    card = release.vocoder_card.read_text(encoding="utf-8")
    assert hashlib.sha256(release.trained_vocoder.read_bytes()).hexdigest() in card
    for section in ("## Training", "## Held-out results", "Pairing targets"):
        assert section in card
    paired = release.vocoder != models.GRIFFIN_LIM
    assert ("**Paired**" in card) == paired and ("not paired" in card) == (not paired)
    voc = spectok.load_vocoder(str(release.trained_vocoder))
    assert voc.mel_config == spectok.load_tokenizer(release.name).mel_config
    assert spectok.models.resolve_vocoder_file(release.name) == release.trained_vocoder  # what --init continues


@pytest.mark.parametrize("release", TRAINED_VOCODERS, ids=lambda r: r.name)
def test_trained_vocoder_streams_equal_to_whole_and_exports_to_onnx(release, ljspeech_wavs, tmp_path) -> None:
    ort = pytest.importorskip("onnxruntime")
    from spectok.onnx_export import export_onnx

    tok, voc = spectok.load_tokenizer(release.name), spectok.load_vocoder(str(release.trained_vocoder))
    pipe = spectok.Pipeline(tok, voc)
    wav, _ = load_audio(ljspeech_wavs[0], pipe.sample_rate)
    tokens = pipe.encode(wav[: 3 * pipe.sample_rate], sample_rate=pipe.sample_rate)
    whole = pipe.decode(tokens)
    pieces = (tokens.codes[:, i:i + 1] for i in range(tokens.codes.shape[1]))
    streamed = np.concatenate(list(pipe.stream_decode(pieces, tokens.num_samples, step_frames=4)))
    assert np.abs(streamed - whole).max() < 1e-4
    export_onnx(voc, tmp_path)
    mel = pipe.decode_mel(tokens.codes)[None]
    audio = ort.InferenceSession(str(tmp_path / "vocoder.onnx")).run(None, {"mel": mel.numpy()})[0]
    with torch.no_grad():
        np.testing.assert_allclose(audio, voc(mel).numpy(), rtol=0, atol=1e-4)
