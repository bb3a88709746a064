"""The spectok token file: codes of one recording plus everything needed to decode them.

Layout (all integers little-endian)::

    offset  size  field
    0       4     magic  b"SPTK"
    4       2     format version (uint16): 2 bit-packed, 3 range-coded
    6       4     header length H in bytes (uint32)
    10      H     header: UTF-8 JSON object (see below; raw-deflated in version 3)
    10+H    N     codes, bit-packed row by row (below)
    10+H+N  4     CRC-32 of every byte before it (uint32)

Codes (version 2): row ``k`` of ``[K, T']`` takes ``b_k = ceil(log2 codebook_sizes[k])`` bits
per code (0 for a codebook of one code); every code of row 0, then row 1, ..., each written
most significant bit first, as one bit string padded with zeros to whole bytes
(``N = ceil(T' * sum(b_k) / 8)``). So a file costs the nominal bit rate plus its header: a
5 x 2,048-code default file is 55 bits per column where version 1 took 80.

Codes (version 3, ``--entropy``): range-coded row by row against a :class:`~spectok.entropy.CodeModel`
(integer code frequencies per row), whose digest the header names as ``"code_model"``; the header
says ``"packing": "range"`` and is itself raw-deflated (RFC 1951), since on a short clip it weighs
as much as the codes. A file then costs about the codes' cross-entropy under that model,
near the entropy bound. The reader needs the same model: a released tokenizer's ships with it,
others are passed as ``code_model=``. Where range coding would come out larger (speech far from
what the model was fitted on), the writer keeps the bit-packed version 2 file instead. Bit-packed
files stay version 2, so older readers read them.

The JSON header holds ``tokenizer_fingerprint``, ``sample_rate`` (Hz), ``frame_rate``
(token columns per second), ``codebook_sizes`` (one per row K), ``shape`` ``[K, T']``,
``num_samples`` (length of the original waveform in samples at ``sample_rate``, so a
decoder can trim its output), ``dtype`` and free-form ``metadata``.

Version 1 files (still read) stored the codes row-major in the smallest unsigned type that holds
the largest codebook (``uint8`` up to 256 codes, ``uint16`` up to 65,536, else ``uint32``), named
by the header's ``dtype``; version 2 headers say ``"packing": "bits"``. A reader refuses,
with :class:`~spectok.errors.TokenFileError` naming the file and the reason, a file
that is foreign (wrong magic), from a newer format, truncated, longer than its header
says, corrupt (checksum), or whose codes fall outside their codebooks.

``--format npy`` (:func:`write_npy`) writes the bare ``[K, T']`` int64 array instead,
for people who want a plain array and accept losing the header.
"""

from __future__ import annotations

import json
import math
import os
import stat
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from spectok.entropy import CodeModel, range_decode, range_encode, released_code_model
from spectok.errors import TokenFileError
from spectok.fsutil import atomic_path

MAGIC = b"SPTK"
FORMAT_VERSION = 3  # the newest version read and written (3 only for range-coded files)
_VERSION = {"bits": 2, "range": 3}
SUFFIX = ".sptk"
_PREFIX = struct.Struct("<4sHI")  # magic, version, header length
_CRC = struct.Struct("<I")
_MAX_HEADER = 1 << 20  # a header above 1 MiB means a foreign or corrupt file
_DTYPES: dict[str, type[np.unsignedinteger]] = {"uint8": np.uint8, "uint16": np.uint16, "uint32": np.uint32}


def smallest_dtype(codebook_sizes: list[int] | tuple[int, ...]) -> np.dtype:
    """The smallest unsigned dtype holding every id ``0 .. max(codebook_sizes) - 1``."""
    largest = max(codebook_sizes) - 1
    for name, dt in _DTYPES.items():
        if largest <= np.iinfo(dt).max:
            return np.dtype(dt).newbyteorder("<") if name != "uint8" else np.dtype(dt)
    raise TokenFileError(f"codebook of {largest + 1} codes is too large for a token file (max 2**32)")


@dataclass
class TokenFile:
    """The codes of one recording and what is needed to decode them.

    Attributes:
        codes: ``[K, T']`` integer array, row ``k`` holding ids in ``[0, codebook_sizes[k])``.
        tokenizer_fingerprint: :meth:`Tokenizer.fingerprint` of the tokenizer that made them.
        sample_rate: Hz of the waveform the codes describe.
        frame_rate: token columns per second.
        codebook_sizes: size of the codebook behind each row, ``len == K``.
        num_samples: length of the original waveform in samples (decoders trim to it).
        metadata: free-form JSON-friendly extras (e.g. the source file name).
    """

    codes: np.ndarray
    tokenizer_fingerprint: str
    sample_rate: int
    frame_rate: float
    codebook_sizes: tuple[int, ...]
    num_samples: int
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        codes = np.asarray(self.codes.detach().cpu() if hasattr(self.codes, "detach") else self.codes)
        if not isinstance(self.codebook_sizes, (list, tuple)):
            raise TokenFileError(f"codebook sizes must be a list of integers, got {self.codebook_sizes!r}")
        self.codebook_sizes = tuple(_whole(k, "a codebook size") for k in self.codebook_sizes)
        self.sample_rate = _whole(self.sample_rate, "sample_rate")
        self.num_samples = _whole(self.num_samples, "num_samples")
        if isinstance(self.frame_rate, bool) or not isinstance(self.frame_rate, (int, float)) \
                or not math.isfinite(self.frame_rate):
            raise TokenFileError(f"frame_rate must be a finite number, got {self.frame_rate!r}")
        if codes.ndim != 2:
            raise TokenFileError(f"token codes must be [K, T'], got shape {tuple(codes.shape)}")
        if not np.issubdtype(codes.dtype, np.integer):
            raise TokenFileError(f"token codes must be integers, got {codes.dtype}")
        if codes.shape[0] != len(self.codebook_sizes):
            raise TokenFileError(f"codes have {codes.shape[0]} rows but {len(self.codebook_sizes)} "
                                 f"codebook sizes were given")
        if any(k < 1 for k in self.codebook_sizes):
            raise TokenFileError(f"codebook sizes must be positive, got {list(self.codebook_sizes)}")
        if codes.size:
            limits = np.asarray(self.codebook_sizes, dtype=np.int64)[:, None]
            bad = (codes < 0) | (codes.astype(np.int64) >= limits)
            if bad.any():
                k, t = (int(i) for i in np.argwhere(bad)[0])
                raise TokenFileError(f"code {int(codes[k, t])} at row {k}, column {t} is outside its "
                                     f"codebook of {self.codebook_sizes[k]}")
        if self.num_samples < 0 or self.sample_rate <= 0 or not self.frame_rate > 0:
            raise TokenFileError("num_samples must be >= 0 and sample_rate, frame_rate > 0")
        self.codes = codes
        self.sample_rate = int(self.sample_rate)
        self.frame_rate = float(self.frame_rate)
        self.num_samples = int(self.num_samples)

    @property
    def duration(self) -> float:
        """Seconds of audio the codes describe."""
        return self.num_samples / self.sample_rate

    @property
    def bits(self) -> float:
        """Information content at the nominal rate: columns * sum(log2 codebook size)."""
        return self.codes.shape[1] * sum(math.log2(k) for k in self.codebook_sizes)

    def header(self, code_model: CodeModel | None = None) -> dict[str, Any]:
        """The JSON header; with ``code_model``, that of a range-coded file (version 3)."""
        h = {"tokenizer_fingerprint": self.tokenizer_fingerprint, "sample_rate": self.sample_rate,
             "frame_rate": self.frame_rate, "codebook_sizes": list(self.codebook_sizes),
             "shape": list(self.codes.shape), "num_samples": self.num_samples, "packing": "bits",
             "metadata": self.metadata}
        if code_model is not None:
            h.update(packing="range", code_model=code_model.digest)
        return h


def code_bits(codebook_sizes: list[int] | tuple[int, ...]) -> list[int]:
    """Bits per code of each row: ``ceil(log2 size)`` (0 for a codebook of one code)."""
    return [int(k - 1).bit_length() for k in codebook_sizes]


def pack_codes(codes: np.ndarray, bits: list[int]) -> bytes:
    """``[K, T']`` codes -> bytes: row by row, ``bits[k]`` bits per code, most significant first."""
    parts = []
    for row, b in zip(codes.astype(np.uint64), bits):
        if b:
            shifts = np.arange(b - 1, -1, -1, dtype=np.uint64)
            parts.append(((row[:, None] >> shifts) & np.uint64(1)).astype(np.uint8).reshape(-1))
    flat = np.concatenate(parts) if parts else np.zeros(0, np.uint8)
    return np.packbits(flat).tobytes()


def unpack_codes(payload: bytes, bits: list[int], columns: int) -> np.ndarray:
    """The inverse of :func:`pack_codes`: ``[len(bits), columns]`` int64."""
    flat = np.unpackbits(np.frombuffer(payload, dtype=np.uint8))
    out = np.zeros((len(bits), columns), dtype=np.int64)
    at = 0
    for k, b in enumerate(bits):
        if b:
            chunk = flat[at: at + columns * b].reshape(columns, b).astype(np.int64)
            out[k] = chunk @ (np.int64(1) << np.arange(b - 1, -1, -1, dtype=np.int64))
            at += columns * b
    return out


def _payload_bytes(h: dict, k: int, t: int) -> int | None:
    """Payload size in bytes that header ``h`` of shape ``[k, t]`` implies (None: range-coded)."""
    if h.get("packing") == "range":
        return None
    if h.get("packing") == "bits":
        return (t * sum(code_bits(h["codebook_sizes"])) + 7) // 8
    return k * t * np.dtype(_DTYPES[h["dtype"]]).itemsize


def _whole(value: Any, what: str) -> int:
    """``value`` as an int when it is a whole number (not a bool, NaN, infinity or string)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TokenFileError(f"{what} must be an integer, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or value != int(value) or abs(number) >= 2 ** 62:
        raise TokenFileError(f"{what} must be an integer of sensible size, got {value!r}")
    return int(value)


def to_bytes(tf: TokenFile, code_model: CodeModel | None = None) -> bytes:
    """Serialize a :class:`TokenFile` (see the module docstring for the layout): bit-packed, or
    range-coded against ``code_model`` (whose codebook sizes must be the file's) unless that comes
    out larger than bit-packing (speech far from what the model was fitted on): never a bigger file."""
    if code_model is not None and code_model.codebook_sizes != tf.codebook_sizes:
        raise TokenFileError(f"the code model is for codebooks {list(code_model.codebook_sizes)}, these codes "
                             f"have {list(tf.codebook_sizes)}: fit one on this tokenizer's codes")
    packed = _serialize(tf, None)
    if code_model is None:
        return packed
    coded = _serialize(tf, code_model)
    return coded if len(coded) < len(packed) else packed


def _serialize(tf: TokenFile, code_model: CodeModel | None) -> bytes:
    header = json.dumps(tf.header(code_model), sort_keys=True, separators=(",", ":")).encode("utf-8")
    if code_model is None:
        payload, version = pack_codes(tf.codes, code_bits(tf.codebook_sizes)), _VERSION["bits"]
    else:  # version 3 deflates its header too: on a short clip it weighs as much as the codes
        z = zlib.compressobj(9, zlib.DEFLATED, -15)
        header = z.compress(header) + z.flush()
        payload, version = range_encode(tf.codes, code_model), _VERSION["range"]
    body = _PREFIX.pack(MAGIC, version, len(header)) + header + payload
    return body + _CRC.pack(zlib.crc32(body) & 0xFFFFFFFF)


def from_bytes(data: bytes, name: str = "<bytes>", code_model: CodeModel | None = None) -> TokenFile:
    """Parse token-file bytes; raises :class:`TokenFileError` naming ``name`` and the reason.

    A range-coded file (version 3) is decoded with ``code_model`` when its digest is the one the
    file names, else with the released code model of that digest."""

    def fail(reason: str) -> TokenFileError:
        return TokenFileError(f"{name}: {reason}")

    if len(data) < _PREFIX.size:
        if MAGIC.startswith(data[:4]) and data:
            raise fail(f"truncated token file ({len(data)} bytes, the fixed prefix alone is {_PREFIX.size})")
        raise fail("not a spectok token file (too short, no SPTK magic)")
    magic, version, hlen = _PREFIX.unpack_from(data)
    if magic != MAGIC:
        hint = " (a NumPy .npy array: pass --format npy)" if data[:6] == b"\x93NUMPY" else ""
        raise fail(f"not a spectok token file (magic {magic!r}, expected {MAGIC!r}){hint}")
    if version > FORMAT_VERSION or version == 0:
        raise fail(f"token file format version {version}; this spectok reads version {FORMAT_VERSION}")
    if hlen > _MAX_HEADER:
        raise fail(f"corrupt token file (header length {hlen} bytes is implausible)")
    if len(data) < _PREFIX.size + hlen + _CRC.size:
        raise fail(f"truncated token file ({len(data)} bytes, header alone needs {_PREFIX.size + hlen})")
    body, (crc,) = data[:-_CRC.size], _CRC.unpack(data[-_CRC.size:])
    if zlib.crc32(body) & 0xFFFFFFFF != crc:
        raise fail(_size_or_checksum_reason(data, hlen))
    try:
        h = _header(body[_PREFIX.size:_PREFIX.size + hlen], version)
        k, t = (int(x) for x in h["shape"])
        if version >= 2 and h.get("packing") != {2: "bits", 3: "range"}[version]:
            raise fail(f"token file version {version} with packing {h.get('packing')!r} in its header")
        if k != len(h["codebook_sizes"]) or k < 0 or t < 0:
            raise fail(f"header shape [{k}, {t}] does not fit its {len(h['codebook_sizes'])} codebook sizes")
        payload = body[_PREFIX.size + hlen:]
        need = _payload_bytes(h, k, t)
        if need is not None and len(payload) != need:
            raise fail(f"code payload is {len(payload)} bytes, header shape [{k}, {t}] needs {need}")
        if h.get("packing") == "range":
            codes = range_decode(payload, _code_model_for(h, code_model, name), t, name)
        elif h.get("packing") == "bits":
            codes = unpack_codes(payload, code_bits(h["codebook_sizes"]), t)
        else:
            dtype = np.dtype(_DTYPES[h["dtype"]]).newbyteorder("<")
            codes = np.frombuffer(payload, dtype=dtype).reshape(k, t).astype(np.int64)
        return TokenFile(codes=codes, tokenizer_fingerprint=str(h["tokenizer_fingerprint"]),
                         sample_rate=h["sample_rate"], frame_rate=h["frame_rate"],
                         codebook_sizes=tuple(h["codebook_sizes"]), num_samples=h["num_samples"],
                         metadata=dict(h.get("metadata") or {}))
    except TokenFileError as e:
        if str(e).startswith(name):
            raise
        raise fail(str(e)) from e
    except (ValueError, KeyError, TypeError, UnicodeDecodeError, OverflowError, AttributeError) as e:
        raise fail(f"corrupt token file header ({type(e).__name__}: {e})") from e


def _header(raw: bytes, version: int) -> dict:
    """The JSON header of a file of ``version`` (3: raw-deflated, inflated to at most 1 MiB)."""
    if version >= 3:
        z = zlib.decompressobj(-15)
        try:
            raw = z.decompress(raw, _MAX_HEADER)
        except zlib.error as e:
            raise ValueError(f"the deflated header does not inflate ({e})") from None
        if not z.eof or z.unconsumed_tail:
            raise ValueError("the deflated header is truncated or larger than 1 MiB")
    h = json.loads(raw.decode("utf-8"))
    if not isinstance(h, dict):
        raise TypeError("the header is not a JSON object")
    return h


def _code_model_for(h: dict, given: CodeModel | None, name: str) -> CodeModel:
    """The code model a range-coded header names: ``given`` if it is that one, else a released one."""
    digest = str(h.get("code_model"))
    model = given if given is not None and given.digest == digest else released_code_model(digest)
    if model is None:
        raise TokenFileError(f"{name}: range-coded against code model {digest}, which is neither given "
                             f"(--code-model FILE, code_model=) nor shipped with a released tokenizer")
    if model.codebook_sizes != tuple(h["codebook_sizes"]):
        raise TokenFileError(f"{name}: code model {digest} does not fit its codebooks {h['codebook_sizes']}")
    return model


def _size_or_checksum_reason(data: bytes, hlen: int) -> str:
    """Tell a truncated file from a flipped bit when the checksum fails."""
    try:
        h = _header(data[_PREFIX.size:_PREFIX.size + hlen], 2)
        k, t = (int(x) for x in h["shape"])
        payload = _payload_bytes(h, k, t)
    except Exception:
        payload = None
    if payload is None:  # also a range-coded file, whose size its header does not give
        return "corrupt token file (checksum mismatch)"
    expected = _PREFIX.size + hlen + payload + _CRC.size
    # the header itself may be what changed, so the sizes it implies are a guess: say so
    if len(data) < expected:
        return (f"truncated token file, or altered ({len(data)} of the {expected} bytes its header implies; "
                "checksum mismatch)")
    if len(data) > expected:
        return (f"token file has {len(data) - expected} unexpected trailing bytes, or was altered "
                "(checksum mismatch)")
    return "corrupt token file (checksum mismatch: the file was altered)"


def write_tokens(path: str | os.PathLike, tf: TokenFile, code_model: CodeModel | None = None) -> Path:
    """Write ``tf`` to ``path`` atomically (temporary name, then rename); range-coded against
    ``code_model`` when one is given (format version 3), else bit-packed (version 2)."""
    out = Path(path)
    data = to_bytes(tf, code_model)
    with atomic_path(out) as tmp:
        tmp.write_bytes(data)
    return out


#: the largest token file read (a bound taken before reading, so a link to /dev/zero cannot exhaust memory)
MAX_FILE_BYTES = 1 << 30


def read_tokens(path: str | os.PathLike, code_model: CodeModel | None = None) -> TokenFile:
    """Read a token file written by :func:`write_tokens` (a range-coded one with ``code_model``,
    or the released code model its header names).

    Raises:
        TokenFileError: naming ``path`` and the reason (missing, foreign, truncated,
            corrupt, newer format, codes outside their codebooks).
    """
    p = Path(path)
    try:
        mode = p.stat().st_mode  # follows links: a link to a device is judged by the device
        if not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
            raise TokenFileError(f"{p}: not a regular file (a FIFO, device or socket); give a token file")
        with open(p, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise TokenFileError(f"{p}: larger than {MAX_FILE_BYTES >> 20} MiB, more than any token file holds "
                                 "(about 60 days of 16 kHz speech at 1.4 kbit/s)")
    except FileNotFoundError:
        raise TokenFileError(f"{p}: file not found") from None
    except IsADirectoryError:
        raise TokenFileError(f"{p}: is a directory, not a token file") from None
    except OSError as e:
        raise TokenFileError(f"{p}: cannot read ({e.strerror or e})") from e
    return from_bytes(data, name=str(p), code_model=code_model)


def write_npy(path: str | os.PathLike, codes: np.ndarray) -> Path:
    """Write bare ``[K, T']`` codes as an int64 ``.npy`` array, atomically (no header, no checks)."""
    out = Path(path)
    arr = np.asarray(codes.detach().cpu() if hasattr(codes, "detach") else codes).astype(np.int64)
    with atomic_path(out) as tmp, open(tmp, "wb") as f:
        np.save(f, arr, allow_pickle=False)
    return out


def read_npy(path: str | os.PathLike) -> np.ndarray:
    """Read a bare ``[K, T']`` integer ``.npy`` array; :class:`TokenFileError` if it is not one."""
    p = Path(path)
    if p.exists() and not (p.is_file() or p.is_dir()):
        raise TokenFileError(f"{p}: not a regular file (a FIFO, device or socket); give a .npy array")
    try:
        arr = np.load(p, allow_pickle=False)
    except FileNotFoundError:
        raise TokenFileError(f"{p}: file not found") from None
    except (OSError, ValueError, EOFError) as e:
        raise TokenFileError(f"{p}: not a readable .npy array ({e})") from e
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.integer):
        raise TokenFileError(f"{p}: expected integer codes of shape [K, T'], got {arr.dtype} {arr.shape}")
    return arr.astype(np.int64)
