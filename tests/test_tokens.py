"""The token file format: round trips, and clear refusals of truncated, corrupt and foreign files."""

from __future__ import annotations

import json
import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spectok.errors import TokenFileError
from spectok.tokens import (
    FORMAT_VERSION,
    MAGIC,
    TokenFile,
    from_bytes,
    read_npy,
    read_tokens,
    smallest_dtype,
    to_bytes,
    write_npy,
    write_tokens,
)


def _token_file(k: int = 2, t: int = 7, sizes: tuple[int, ...] | None = None, seed: int = 0) -> TokenFile:
    sizes = sizes or tuple([300] * k)
    rng = np.random.default_rng(seed)
    codes = np.stack([rng.integers(0, s, size=t) for s in sizes]) if t else np.zeros((len(sizes), 0), np.int64)
    return TokenFile(codes=codes, tokenizer_fingerprint="0123456789abcdef", sample_rate=22050,
                     frame_rate=22050 / 512, codebook_sizes=sizes, num_samples=t * 512,
                     metadata={"source": "clip.wav"})


@st.composite
def token_files(draw) -> TokenFile:
    sizes = tuple(draw(st.lists(st.integers(1, 70000), min_size=1, max_size=4)))
    t = draw(st.integers(0, 40))
    codes = np.array([[draw(st.integers(0, s - 1)) for _ in range(t)] for s in sizes], dtype=np.int64)
    codes = codes.reshape(len(sizes), t)
    return TokenFile(codes=codes, tokenizer_fingerprint=draw(st.text(max_size=20)),
                     sample_rate=draw(st.integers(1, 192000)), frame_rate=draw(st.floats(0.1, 1000.0)),
                     codebook_sizes=sizes, num_samples=draw(st.integers(0, 10**9)),
                     metadata=draw(st.dictionaries(st.text(max_size=5), st.integers(), max_size=3)))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(token_files())
def test_round_trip_preserves_everything(tf: TokenFile) -> None:
    back = from_bytes(to_bytes(tf))
    np.testing.assert_array_equal(back.codes, tf.codes)
    assert back.codes.dtype == np.int64
    assert back.header() == tf.header()


def test_write_and_read_file(tmp_path) -> None:
    tf = _token_file()
    path = write_tokens(tmp_path / "sub" / "a.sptk", tf)
    back = read_tokens(path)
    np.testing.assert_array_equal(back.codes, tf.codes)
    assert back.num_samples == tf.num_samples and back.metadata == {"source": "clip.wav"}
    assert [p.name for p in path.parent.iterdir()] == ["a.sptk"]  # no temporary left behind


@pytest.mark.parametrize(("sizes", "bits"), [((256,), 8), ((257, 4), 9 + 2), ((65536,), 16), ((65537,), 17),
                                             ((1, 2048, 1000), 0 + 11 + 10)])
def test_codes_take_their_bits_and_no_more(sizes, bits) -> None:
    """Bit-packed: T' columns cost ceil(T' * sum(ceil(log2 K_k)) / 8) bytes, and read back exactly."""
    data = to_bytes(_token_file(sizes=sizes, t=13))
    header_bytes = struct.unpack_from("<I", data, 6)[0]
    assert len(data) - 10 - header_bytes - 4 == (13 * bits + 7) // 8
    rng = np.random.default_rng(0)
    codes = np.stack([rng.integers(0, k, size=13) for k in sizes])
    tf = TokenFile(codes, "f", 16000, 25.0, sizes, num_samples=100)
    np.testing.assert_array_equal(from_bytes(to_bytes(tf)).codes, codes)


def test_version_1_files_are_still_read() -> None:
    """The format before bit packing: uint16 codes row-major, ``dtype`` in the header."""
    tf = _token_file(sizes=(2048, 2048), t=7)
    header = {**tf.header(), "dtype": smallest_dtype(tf.codebook_sizes).name}
    del header["packing"]
    text = json.dumps(header).encode()
    body = struct.pack("<4sHI", b"SPTK", 1, len(text)) + text + tf.codes.astype("<u2").tobytes()
    old = body + struct.pack("<I", zlib.crc32(body) & 0xFFFFFFFF)
    back = from_bytes(old, name="old.sptk")
    np.testing.assert_array_equal(back.codes, tf.codes)
    assert back.num_samples == tf.num_samples


def test_every_truncation_is_refused() -> None:
    data = to_bytes(_token_file(t=5))
    for n in range(len(data)):
        with pytest.raises(TokenFileError, match=r"^cut\.sptk: (truncated|not a spectok|corrupt)"):
            from_bytes(data[:n], name="cut.sptk")


def test_truncation_says_truncated() -> None:
    data = to_bytes(_token_file(t=50))
    with pytest.raises(TokenFileError, match="truncated token file"):
        from_bytes(data[:-7], name="x")


def test_every_single_bit_flip_is_refused() -> None:
    data = to_bytes(_token_file(t=4))
    for i in range(len(data)):
        for bit in (0, 3, 7):
            bad = bytearray(data)
            bad[i] ^= 1 << bit
            with pytest.raises(TokenFileError):
                from_bytes(bytes(bad), name="flip")


def test_trailing_bytes_are_refused() -> None:
    with pytest.raises(TokenFileError, match="trailing bytes|checksum"):
        from_bytes(to_bytes(_token_file()) + b"\0\0", name="x")


@pytest.mark.parametrize("content", [b"", b"RIFF\x24\x00\x00\x00WAVEfmt ", b"hello world, not tokens",
                                     b"\x89PNG\r\n\x1a\n" + bytes(100)])
def test_foreign_files_are_refused(tmp_path, content) -> None:
    p = tmp_path / "foreign.sptk"
    p.write_bytes(content)
    with pytest.raises(TokenFileError, match=r"foreign\.sptk: not a spectok token file"):
        read_tokens(p)


def test_npy_given_as_token_file_hints_at_format(tmp_path) -> None:
    p = write_npy(tmp_path / "a.npy", np.zeros((1, 3), np.int64))
    with pytest.raises(TokenFileError, match="--format npy"):
        read_tokens(p)


def test_newer_format_version_is_refused() -> None:
    data = bytearray(to_bytes(_token_file()))
    data[4:6] = (FORMAT_VERSION + 1).to_bytes(2, "little")
    with pytest.raises(TokenFileError, match=f"format version {FORMAT_VERSION + 1}"):
        from_bytes(bytes(data), name="x")


def test_missing_file_and_directory(tmp_path) -> None:
    with pytest.raises(TokenFileError, match="file not found"):
        read_tokens(tmp_path / "nope.sptk")
    with pytest.raises(TokenFileError, match="is a directory"):
        read_tokens(tmp_path)


def test_codes_outside_codebook_refused_on_write() -> None:
    with pytest.raises(TokenFileError, match="outside its codebook of 10"):
        TokenFile(codes=np.array([[1, 10]]), tokenizer_fingerprint="f", sample_rate=16000, frame_rate=50.0,
                  codebook_sizes=(10,), num_samples=640)
    with pytest.raises(TokenFileError, match="2 rows but 1"):
        TokenFile(codes=np.zeros((2, 3), np.int64), tokenizer_fingerprint="f", sample_rate=16000,
                  frame_rate=50.0, codebook_sizes=(10,), num_samples=0)


def test_magic_is_at_the_start() -> None:
    assert to_bytes(_token_file()).startswith(MAGIC)


def test_npy_round_trip_and_refusals(tmp_path) -> None:
    codes = _token_file().codes
    back = read_npy(write_npy(tmp_path / "c.npy", codes))
    np.testing.assert_array_equal(back, codes)
    np.save(tmp_path / "f.npy", np.zeros((2, 3), np.float32))
    with pytest.raises(TokenFileError, match="expected integer codes"):
        read_npy(tmp_path / "f.npy")
    (tmp_path / "junk.npy").write_bytes(b"junk")
    with pytest.raises(TokenFileError, match="not a readable .npy"):
        read_npy(tmp_path / "junk.npy")
