"""Range coding of token codes against fixed code frequencies: token files near the entropy bound.

A tokenizer's codes are far from uniform (a residual VQ's later stages and an FSQ grid's corners
are rare), so a file that spends ``ceil(log2 K)`` bits on every code (format version 2) is larger
than the information in it. A :class:`CodeModel` holds, for each row ``k`` of the ``[K, T']``
codes, integer frequencies of its ``codebook_sizes[k]`` codes that sum to ``2**PRECISION``
(every code at least 1, so any code can be coded), fitted once on a corpus's tokens. With it,
:func:`range_encode` spends about ``-log2(p(code))`` bits per code: on average the cross-entropy
of the file's codes under the model, which approaches the order-0 entropy bound when the model
was fitted on similar speech.

The coder is the byte-wise range coder with carry propagation of LZMA (32-bit range, renormalised
below 2**24, so with 16-bit frequencies a code costs at most ~2**-8 bits more than its ideal
length). Codes are coded row by row (all of row 0, then row 1, ...), each row with its own
frequencies. Encoder and decoder are plain Python integers: about 1 µs a code.

A model is named by its :attr:`CodeModel.digest` (SHA-256 of its sizes and frequencies); a
range-coded token file stores that digest, and a reader must be given the same model (the
released models ship theirs: :func:`released_code_model`).
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import json
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from spectok import models
from spectok.artifacts import read_header
from spectok.errors import TokenFileError
from spectok.fsutil import atomic_path

PRECISION = 16  # each row's frequencies sum to 2**PRECISION
_TOTAL = 1 << PRECISION
_TOP = 1 << 24  # renormalise when the range falls below this
_MASK32 = 0xFFFFFFFF
#: most codes decoded from a model whose columns can cost 0 bits (only one-code rows): no payload bounds them
_MAX_FREE_SYMBOLS = 1 << 26


@dataclass(frozen=True, eq=False)
class CodeModel:
    """Integer code frequencies per row of ``[K, T']`` codes.

    Attributes:
        frequencies: one int64 array per row, ``len == codebook_sizes[k]``, each entry >= 1,
            each array summing to ``2**PRECISION``.
        info: free-form JSON-friendly provenance (tokenizer name and fingerprint, what it was
            fitted on, columns seen, the fitted set's entropy in bits per column).
    """

    frequencies: tuple[np.ndarray, ...]
    info: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        freqs = tuple(np.asarray(f, dtype=np.int64) for f in self.frequencies)
        for k, f in enumerate(freqs):
            if f.ndim != 1 or f.size < 1 or f.size > _TOTAL or (f < 1).any() or int(f.sum()) != _TOTAL:
                raise TokenFileError(f"code model row {k}: frequencies must be {f.size} integers >= 1 that sum "
                                     f"to 2**{PRECISION} (a codebook of at most {_TOTAL} codes)")
        object.__setattr__(self, "frequencies", freqs)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CodeModel) and other.digest == self.digest

    def __hash__(self) -> int:
        return hash(self.digest)

    @property
    def codebook_sizes(self) -> tuple[int, ...]:
        return tuple(int(f.size) for f in self.frequencies)

    @property
    def digest(self) -> str:
        """First 16 hex digits of the SHA-256 of the sizes and frequencies: the model's name in files."""
        h = hashlib.sha256(json.dumps(self.codebook_sizes).encode())
        for f in self.frequencies:
            h.update(f.astype("<i8").tobytes())
        return h.hexdigest()[:16]

    @classmethod
    def fit(cls, codes: Iterable[np.ndarray], codebook_sizes: Iterable[int],
            info: dict[str, Any] | None = None) -> CodeModel:
        """Count the codes of ``[K, T']`` arrays and turn the counts into frequencies.

        Each count gets half a code added (so unseen codes stay codable and rare ones are not
        over-trusted), then the row is scaled to ``2**PRECISION`` with every entry >= 1.
        """
        sizes = [int(k) for k in codebook_sizes]
        counts = [np.zeros(k, dtype=np.int64) for k in sizes]
        columns = 0
        for c in codes:
            c = np.asarray(c)
            if c.ndim != 2 or c.shape[0] != len(sizes):
                raise TokenFileError(f"codes of shape {tuple(c.shape)} do not fit {len(sizes)} codebooks")
            for k, row in enumerate(c):
                counts[k] += np.bincount(row.astype(np.int64), minlength=sizes[k])[: sizes[k]]
            columns += c.shape[1]
        if not columns:
            raise TokenFileError("no codes to fit a code model on")
        entropy = sum(_entropy_bits(n) for n in counts)
        return cls(tuple(quantize(n + 0.5) for n in counts),
                   {**(info or {}), "columns": columns, "entropy_bits_per_column": round(entropy, 4)})

    def bits_per_column(self, codes: np.ndarray) -> float:
        """Ideal coded size of ``[K, T']`` codes under this model, in bits per column."""
        logs = [np.log2(_TOTAL / f) for f in self.frequencies]
        return float(sum(logs[k][row].sum() for k, row in enumerate(np.asarray(codes)))) / max(codes.shape[1], 1)

    def min_bits_per_column(self) -> float:
        """The fewest bits one column can cost (each row's most frequent code)."""
        return float(sum(math.log2(_TOTAL / int(f.max())) for f in self.frequencies))

    def to_json(self) -> dict[str, Any]:
        return {"format": "spectok-code-model", "precision": PRECISION, "digest": self.digest, "info": self.info,
                "frequencies": [f.tolist() for f in self.frequencies]}

    def save(self, path: str | os.PathLike) -> Path:
        """Write as JSON, atomically."""
        out = Path(path)
        with atomic_path(out) as tmp:
            tmp.write_text(json.dumps(self.to_json(), separators=(",", ":")) + "\n", encoding="utf-8")
        return out

    @classmethod
    def load(cls, path: str | os.PathLike) -> CodeModel:
        """Read a model written by :meth:`save`; :class:`TokenFileError` naming the file if it is not one."""
        p = Path(path)
        try:
            d = json.loads(p.read_text(encoding="utf-8"))
            if d.get("format") != "spectok-code-model" or d.get("precision") != PRECISION:
                raise TokenFileError("not a spectok code model (format or precision differs)")
            model = cls(tuple(np.asarray(f, dtype=np.int64) for f in d["frequencies"]), dict(d.get("info") or {}))
        except FileNotFoundError:
            raise TokenFileError(f"{p}: file not found") from None
        except TokenFileError as e:
            raise TokenFileError(f"{p}: {e}") from None
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise TokenFileError(f"{p}: not a readable code model ({type(e).__name__}: {e})") from None
        if d.get("digest") not in (None, model.digest):
            raise TokenFileError(f"{p}: its frequencies do not match its digest (the file was altered)")
        return model


def quantize(weights: np.ndarray) -> np.ndarray:
    """Positive weights -> integers >= 1 summing to ``2**PRECISION``, close to proportional."""
    w = np.asarray(weights, dtype=np.float64)
    spare = _TOTAL - w.size
    if spare < 0:
        raise TokenFileError(f"a codebook of {w.size} codes is too large for {PRECISION}-bit frequencies")
    share = w / w.sum() * spare
    f = np.floor(share).astype(np.int64)
    left = spare - int(f.sum())  # hand the remainder to the largest fractional parts
    if left:
        f[np.argsort(f - share, kind="stable")[:left]] += 1
    return f + 1


def _entropy_bits(counts: np.ndarray) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum())


def range_encode(codes: np.ndarray, model: CodeModel) -> bytes:
    """``[K, T']`` codes -> bytes, row by row, each code at its row's frequency."""
    codes = np.asarray(codes)
    if codes.ndim != 2 or codes.shape[0] != len(model.frequencies):
        raise TokenFileError(f"codes of shape {tuple(codes.shape)} do not fit the code model's "
                             f"{len(model.frequencies)} rows")
    out = bytearray()
    low, rng, cache, pending = 0, _MASK32, 0, 1

    def shift_low() -> None:  # move low's top byte out, propagating a carry into the bytes held back
        nonlocal low, cache, pending
        if low < 0xFF000000 or low > _MASK32:
            carry = low >> 32
            out.append((cache + carry) & 0xFF)
            out.extend(((0xFF + carry) & 0xFF,) * (pending - 1))
            pending, cache = 0, (low >> 24) & 0xFF
        pending += 1
        low = (low << 8) & _MASK32

    for row, freqs in zip(codes, model.frequencies):
        if row.size and (int(row.max()) >= freqs.size or int(row.min()) < 0):
            raise TokenFileError(f"a code is outside its codebook of {freqs.size}")
        starts = np.concatenate([[0], np.cumsum(freqs)[:-1]]).tolist()
        sizes = freqs.tolist()
        for c in row.tolist():
            r = rng >> PRECISION
            low += r * starts[c]
            rng = r * sizes[c]
            while rng < _TOP:
                rng <<= 8
                shift_low()
    for _ in range(5):
        shift_low()
    return bytes(out[1:])  # the first byte is always the initial cache (0)


def range_decode(payload: bytes, model: CodeModel, columns: int, name: str = "<bytes>") -> np.ndarray:
    """The inverse of :func:`range_encode`: ``[K, columns]`` int64.

    Raises:
        TokenFileError: naming ``name``, when the payload is too short for ``columns`` columns
            (checked before decoding, from the model's cheapest column) or runs out while decoding.
    """
    k_rows = len(model.frequencies)
    floor_bits = model.min_bits_per_column()
    if floor_bits > 0 and columns * floor_bits > len(payload) * 8 + 64:
        raise TokenFileError(f"{name}: {len(payload)} payload bytes cannot hold {columns} columns of codes")
    if floor_bits == 0 and columns * k_rows > _MAX_FREE_SYMBOLS:
        raise TokenFileError(f"{name}: implausible token count {columns} for this code model")
    if len(payload) < 4:
        raise TokenFileError(f"{name}: a range-coded payload has at least 4 bytes, this one {len(payload)}")
    data, limit, pos = payload, len(payload), 4  # the encoder wrote exactly the bytes this reads
    code = int.from_bytes(data[:4], "big")
    rng = _MASK32
    out = np.zeros((k_rows, columns), dtype=np.int64)
    for k, freqs in enumerate(model.frequencies):
        cum = np.cumsum(freqs).tolist()
        starts = [0, *cum[:-1]]
        sizes = freqs.tolist()
        row = [0] * columns
        for t in range(columns):
            r = rng >> PRECISION
            v = min(code // r, _TOTAL - 1)
            c = bisect.bisect_right(cum, v)
            row[t] = c
            code -= r * starts[c]
            rng = r * sizes[c]
            while rng < _TOP:
                if pos >= limit:
                    raise TokenFileError(f"{name}: range-coded payload ends before its {columns} columns")
                code = ((code << 8) | data[pos]) & _MASK32
                rng <<= 8
                pos += 1
        out[k] = row
    return out


def released_code_model(digest: str) -> CodeModel | None:
    """The code model shipped with a released tokenizer whose digest is ``digest``, else None."""
    for path in models.code_model_files():
        model = _shipped(str(path))
        if model.digest == digest:
            return model
    return None


@functools.cache
def _shipped(path: str) -> CodeModel:
    """A code model file inside the installed package, read once per process (every range-coded token
    file of a released tokenizer looks its table up)."""
    return CodeModel.load(path)


def code_model_for(tokenizer_fingerprint: str) -> CodeModel | None:
    """The code model of the released tokenizer with this fingerprint (a fine-tuned copy keeps the
    fingerprint, and its codes stay decodable with the table, if a little less well coded), else None."""
    for release in models.releases().values():
        if release.code_model is not None and read_header(release.tokenizer).get("fingerprint") == \
                tokenizer_fingerprint:
            return _shipped(str(release.code_model))
    return None
