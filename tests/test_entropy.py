"""Range-coded token files (format version 3): exact round trips, sizes at the code model's cross-entropy,
clear refusals, the released code models, and the CLI's --entropy / --code-model / code-model."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import shared_path
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spectok.entropy import PRECISION, CodeModel, quantize, range_decode, range_encode
from spectok.errors import TokenFileError
from spectok.tokens import TokenFile, from_bytes, read_tokens, to_bytes


def _skewed(sizes: list[int], columns: int, seed: int) -> np.ndarray:
    """Codes drawn from one fixed skewed (Zipf-like) distribution per row (``seed`` picks the draw)."""
    rng = np.random.default_rng(seed)
    rows = []
    for k in sizes:
        p = 1.0 / np.arange(1, k + 1) ** 1.1
        order = np.random.default_rng(k).permutation(k)  # which code is how common: the same for every draw
        rows.append(order[rng.choice(k, size=columns, p=p / p.sum())])
    return np.stack(rows).astype(np.int64)


def _token_file(codes: np.ndarray, sizes: list[int]) -> TokenFile:
    return TokenFile(codes=codes, tokenizer_fingerprint="0123456789abcdef", sample_rate=16000, frame_rate=25.0,
                     codebook_sizes=tuple(sizes), num_samples=codes.shape[1] * 640, metadata={"source": "a.wav"})


SIZES = [2048, 300, 5, 1, 2]
MODEL = CodeModel.fit([_skewed(SIZES, 4000, seed=1)], SIZES)


def test_quantized_frequencies_are_positive_and_sum_to_the_total() -> None:
    f = quantize(np.array([1e-9, 1.0, 1e6, 3.0]))
    assert f.min() >= 1 and f.sum() == 1 << PRECISION and f.argmax() == 2
    for row in MODEL.frequencies:
        assert row.min() >= 1 and row.sum() == 1 << PRECISION


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(columns=st.integers(0, 300), seed=st.integers(0, 10**6), uniform=st.booleans())
def test_range_coding_round_trips_exactly(columns: int, seed: int, uniform: bool) -> None:
    rng = np.random.default_rng(seed)
    codes = (np.stack([rng.integers(0, k, columns) for k in SIZES]) if uniform
             else _skewed(SIZES, columns, seed))
    assert np.array_equal(range_decode(range_encode(codes, MODEL), MODEL, columns), codes)


@pytest.mark.parametrize("pick", ["rarest", "commonest"])
def test_extreme_runs_round_trip(pick: str) -> None:
    choose = np.argmin if pick == "rarest" else np.argmax
    codes = np.stack([np.full(5000, int(choose(f))) for f in MODEL.frequencies])
    assert np.array_equal(range_decode(range_encode(codes, MODEL), MODEL, 5000), codes)


def test_a_file_costs_its_cross_entropy_under_the_model() -> None:
    codes = _skewed(SIZES, 20000, seed=2)
    ideal = MODEL.bits_per_column(codes) * codes.shape[1]
    coded = len(range_encode(codes, MODEL)) * 8
    assert ideal <= coded <= ideal * 1.001 + 40
    packed = codes.shape[1] * sum(int(k - 1).bit_length() for k in SIZES)
    assert coded < 0.8 * packed  # skewed codes: far below ceil(log2 K) bits each


def test_token_file_version_3_round_trips_and_is_smaller() -> None:
    codes = _skewed(SIZES, 2000, seed=3)
    tf = _token_file(codes, SIZES)
    data = to_bytes(tf, MODEL)
    assert int.from_bytes(data[4:6], "little") == 3
    back = from_bytes(data, code_model=MODEL)
    assert np.array_equal(back.codes, codes) and back.header() == tf.header() and back.metadata == tf.metadata
    assert len(data) < 0.8 * len(to_bytes(tf))


def test_every_truncation_and_bit_flip_of_a_range_coded_file_is_refused() -> None:
    data = to_bytes(_token_file(_skewed(SIZES, 50, seed=4), SIZES), MODEL)
    for n in range(len(data)):
        with pytest.raises(TokenFileError, match="x:"):
            from_bytes(data[:n], name="x", code_model=MODEL)
    for i in range(0, len(data), 3):
        bad = bytearray(data)
        bad[i] ^= 0x10
        with pytest.raises(TokenFileError, match="x:"):
            from_bytes(bytes(bad), name="x", code_model=MODEL)


def test_an_unknown_code_model_is_named() -> None:
    data = to_bytes(_token_file(_skewed(SIZES, 10, seed=5), SIZES), MODEL)
    with pytest.raises(TokenFileError, match=f"x: range-coded against code model {MODEL.digest}.*--code-model"):
        from_bytes(data, name="x")
    other = CodeModel.fit([_skewed(SIZES, 100, seed=6)], SIZES)
    with pytest.raises(TokenFileError, match="neither given"):
        from_bytes(data, name="x", code_model=other)


def test_a_model_for_other_codebooks_is_refused_on_write() -> None:
    with pytest.raises(TokenFileError, match="fit one on this tokenizer"):
        to_bytes(_token_file(np.zeros((2, 3), np.int64), [4, 4]), MODEL)


def test_a_short_payload_cannot_claim_many_columns() -> None:
    with pytest.raises(TokenFileError, match="cannot hold 10000000 columns"):
        range_decode(b"\0" * 16, MODEL, 10_000_000, name="x")


def test_a_deflate_bomb_header_is_refused() -> None:
    import struct

    bomb = zlib.compressobj(9, zlib.DEFLATED, -15)
    header = bomb.compress(b" " * (4 << 20)) + bomb.flush()  # 4 MiB of spaces in a few KB
    body = b"SPTK" + struct.pack("<HI", 3, len(header)) + header
    data = body + struct.pack("<I", zlib.crc32(body))
    with pytest.raises(TokenFileError, match="larger than 1 MiB"):
        from_bytes(data, name="x")


def test_code_model_save_load_and_tamper(tmp_path) -> None:
    path = MODEL.save(tmp_path / "m.json")
    assert CodeModel.load(path) == MODEL and CodeModel.load(path).digest == MODEL.digest
    d = json.loads(path.read_text())
    d["frequencies"][2][0] += 1
    d["frequencies"][2][1] -= 1
    path.write_text(json.dumps(d))
    with pytest.raises(TokenFileError, match="do not match its digest"):
        CodeModel.load(path)
    path.write_text("{}")
    with pytest.raises(TokenFileError, match=r"m\.json: .*not a spectok code model"):
        CodeModel.load(path)


def test_released_code_models_load_and_fit_their_tokenizers() -> None:
    from spectok import models
    from spectok.artifacts import read_header
    from spectok.entropy import code_model_for, released_code_model

    for release in models.releases().values():
        assert release.code_model is not None and release.code_model.is_file(), release.name
        model = CodeModel.load(release.code_model)
        header = read_header(release.tokenizer)
        assert code_model_for(header["fingerprint"]) == model
        assert released_code_model(model.digest) == model
        assert model.info["columns"] > 50_000  # fitted on the release data's training split


def _libri_clips(n: int) -> list[Path]:
    """``n`` LibriSpeech clips of ../shared/data (the test skips, saying so, where it is absent)."""
    return sorted(shared_path("LibriSpeech").rglob("*.flac"))[:n]


def test_real_librispeech_tokens_round_trip_below_the_packed_rate() -> None:
    import spectok
    from spectok.entropy import code_model_for

    clips = _libri_clips(3)
    pipe = spectok.Pipeline(spectok.load_tokenizer("default"))
    model = code_model_for(pipe.tokenizer.fingerprint())
    for clip in clips:
        wav, sr = spectok.load_audio(clip, pipe.sample_rate)
        tf = pipe.encode(wav, sample_rate=sr)
        data = to_bytes(tf, model)
        assert int.from_bytes(data[4:6], "little") == 3, clip
        assert np.array_equal(from_bytes(data).codes, tf.codes)  # the released model is found by its digest
        assert len(data) < len(to_bytes(tf))
        assert model.bits_per_column(tf.codes) < 0.99 * 55  # below 11 bits per code


def test_speech_far_from_the_model_keeps_the_smaller_bit_packed_file() -> None:
    uniform = np.stack([np.random.default_rng(7).integers(0, k, 400) for k in SIZES])
    tf = _token_file(uniform, SIZES)
    skew = CodeModel.fit([_skewed(SIZES, 4000, seed=8) * 0], SIZES)  # every row's code 0 is all it has seen
    data = to_bytes(tf, skew)
    assert data == to_bytes(tf) and int.from_bytes(data[4:6], "little") == 2


def test_cli_entropy_files_decode_like_bit_packed_ones(tmp_path) -> None:
    from spectok.cli.main import main

    clip = _libri_clips(1)[0]
    assert main(["encode", str(clip), "-t", "default", "-o", str(tmp_path / "a.sptk"), "-q"]) == 0
    assert main(["encode", str(clip), "-t", "default", "--entropy", "-o", str(tmp_path / "b.sptk"), "-q"]) == 0
    a, b = read_tokens(tmp_path / "a.sptk"), read_tokens(tmp_path / "b.sptk")
    assert np.array_equal(a.codes, b.codes)
    assert (tmp_path / "b.sptk").stat().st_size < (tmp_path / "a.sptk").stat().st_size
    for name in ("a", "b"):
        assert main(["decode", str(tmp_path / f"{name}.sptk"), "-v", "griffin-lim", "--gl-iters", "2",
                     "-o", str(tmp_path / f"{name}.wav"), "-q"]) == 0
    assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "b.wav").read_bytes()


def test_cli_code_model_fits_encodes_and_decodes_with_its_own_table(tmp_path, capsys) -> None:
    from spectok.cli.main import main

    clips = _libri_clips(3)
    assert main(["encode", *map(str, clips), "-t", "default", "-o", str(tmp_path / "tok"), "-q"]) == 0
    table = tmp_path / "mine.codes.json"
    assert main(["code-model", str(tmp_path / "tok"), "-o", str(table)]) == 0
    assert "from 3 utterances" in capsys.readouterr().out
    mine = CodeModel.load(table)
    clip = clips[0]  # one it was fitted on: a table from 3 clips codes little else below 11 bits
    assert main(["encode", str(clip), "-t", "default", "--code-model", str(table), "-o", str(tmp_path / "c.sptk"),
                 "-q"]) == 0
    with pytest.raises(TokenFileError, match="--code-model"):
        read_tokens(tmp_path / "c.sptk")
    assert read_tokens(tmp_path / "c.sptk", mine).codes.shape[0] == 5
    assert main(["decode", str(tmp_path / "c.sptk"), "-v", "griffin-lim", "--gl-iters", "2", "--code-model",
                 str(table), "-o", str(tmp_path / "c.wav"), "-q"]) == 0
    assert main(["decode", str(tmp_path / "c.sptk"), "-v", "griffin-lim", "-o", str(tmp_path / "d.wav"),
                 "-q"]) == 1
    assert "--code-model" in capsys.readouterr().err


def test_cli_refuses_entropy_with_npy_and_a_table_for_other_codebooks(tmp_path, capsys) -> None:
    from spectok.cli.main import main

    clip = str(_libri_clips(1)[0])
    assert main(["encode", clip, "--entropy", "--format", "npy", "-o", str(tmp_path / "a.npy")]) == 1
    assert "drop --format npy" in capsys.readouterr().err
    MODEL.save(tmp_path / "other.json")
    assert main(["encode", clip, "--code-model", str(tmp_path / "other.json"), "-o", str(tmp_path / "a.sptk")]) == 1
    assert "the tokenizer has [2048" in capsys.readouterr().err
    assert not (tmp_path / "a.sptk").exists()
