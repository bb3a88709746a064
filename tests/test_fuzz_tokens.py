"""10,000 mutated token files, seeded, with their header length and CRC recomputed so that only the
validation can catch them: every one is refused with a TokenFileError or, when accepted, is
consistent; no other exception, and no allocation above 1 GB (tracemalloc, which numpy reports to)."""

from __future__ import annotations

import json
import math
import random
import struct
import tracemalloc
import zlib

import numpy as np
import pytest
import torch

import spectok
from spectok.errors import TokenFileError
from spectok.tokens import from_bytes, to_bytes

N_FILES = 10_000
GIB = 1 << 30

WILD = [0, -1, 1, 2, 3, 7, 16000, 22050, 10 ** 9, 2 ** 31, 2 ** 63, -2 ** 63, 1e-9, 1e300, float("inf"), float("nan"),
        "16000", None, [], {}, [1, 2], True, "uint64", "float32", "", "x" * 300]


@pytest.fixture(scope="module")
def setting():
    tok = spectok.load_tokenizer("default")
    pipe = spectok.Pipeline(tok)
    t = tok.time_downsample * tok.mel_config.hop_length
    codes = np.random.default_rng(0).integers(0, 125, size=(len(tok.codebook_sizes), 40))
    valid = spectok.TokenFile(codes, tok.fingerprint(), tok.mel_config.sample_rate, tok.frame_rate,
                              tuple(tok.codebook_sizes), num_samples=40 * t - 17)
    return pipe, to_bytes(valid)


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One to three mutations of a valid file, then a consistent header length and CRC."""
    magic, version, hlen = struct.unpack_from("<4sHI", data, 0)
    header = json.loads(data[10:10 + hlen])
    body = bytearray(data[10 + hlen:-4])
    for _ in range(rng.randint(1, 3)):
        kind = rng.random()
        if kind < 0.6:  # a header field set to something else
            key = rng.choice(sorted(header) + ["extra"])
            header[key] = rng.choice(WILD + [header.get(key)] * 2)
            if key == "shape" and rng.random() < 0.5:
                header[key] = [rng.choice([0, 1, 8, 9, 10 ** 6]), rng.choice([0, 1, 39, 40, 41, 10 ** 9])]
        elif kind < 0.8 and body:  # flipped code bytes
            for _ in range(rng.randint(1, 8)):
                body[rng.randrange(len(body))] = rng.randrange(256)
        elif kind < 0.9:  # truncated or extended codes
            body = body[: rng.randrange(len(body) + 1)] if rng.random() < 0.5 else body + bytes(rng.randrange(1, 64))
        else:  # the version
            version = rng.choice([0, 1, 2, 65535])
    text = json.dumps(header, allow_nan=True).encode()
    out = struct.pack("<4sHI", magic, version, len(text)) + text + bytes(body)
    return out + struct.pack("<I", zlib.crc32(out) & 0xFFFFFFFF)


def check_accepted(pipe, tf) -> None:
    """A mutated file that passes every check must describe a decodable, bounded output."""
    tok = pipe.tokenizer
    assert tf.codes.shape[0] == len(tok.codebook_sizes) and tf.codes.shape[1] > 0
    assert tf.sample_rate == tok.mel_config.sample_rate and math.isclose(tf.frame_rate, tok.frame_rate)
    samples_per_column = tok.time_downsample * tok.mel_config.hop_length
    slack = 1 + tok.receptive_field // tok.time_downsample  # "within one receptive field"
    assert tf.num_samples <= (tf.codes.shape[1] + slack) * samples_per_column  # output bounded by the codes
    mel = pipe.decode_mel(tf.codes)
    assert torch.isfinite(mel).all()


def test_ten_thousand_mutated_token_files_are_refused_or_consistent(setting):
    pipe, valid = setting
    rng = random.Random(1234)
    refused = accepted = 0
    tracemalloc.start()
    try:
        for i in range(N_FILES):
            data = mutate(valid, rng)
            tracemalloc.reset_peak()
            try:
                tf = from_bytes(data, name=f"fuzz-{i}")
                pipe.check_tokens(tf, name=f"fuzz-{i}")
            except TokenFileError:
                refused += 1
            except Exception as e:  # noqa: BLE001
                pytest.fail(f"fuzz-{i}: {type(e).__name__}: {e} (not a clean refusal)")
            else:
                accepted += 1
                check_accepted(pipe, tf)
            assert tracemalloc.get_traced_memory()[1] < GIB, f"fuzz-{i} allocated over 1 GB"
    finally:
        tracemalloc.stop()
    assert refused + accepted == N_FILES
    # most mutations touch something checked; the rest are valid files: bit-packed codes of a
    # 2,048-code book have no invalid value, so a changed code byte (the CRC is recomputed) is a file
    assert refused > 0.75 * N_FILES
