"""Long clips in ``spectok eval``: read them piece by piece, and combine the pieces' records.

- :class:`SampleWindow`: samples ``[a, b)`` of a stream of audio blocks, holding one request.
- :func:`combine_segments`: one utterance record from its segments' records.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


class SampleWindow:
    """Samples ``[a, b)`` of a stream of blocks, for ``a`` and ``b`` that never move back: what lies
    before the last ``a`` asked for is dropped, so memory is one request plus one block."""

    def __init__(self, blocks: Iterable[np.ndarray]) -> None:
        self.blocks, self.buf, self.start = iter(blocks), np.zeros(0, np.float32), 0

    def take(self, a: int, b: int) -> np.ndarray:
        if a < self.start:
            raise ValueError(f"SampleWindow: sample {a} was already dropped (from {self.start} on)")
        self.buf, self.start = self.buf[a - self.start:], a
        parts = [self.buf]
        have = len(self.buf)
        while have < b - a:
            block = next(self.blocks, None)
            if block is None:  # the stream ended short of the header's length: zeros
                parts.append(np.zeros(b - a - have, np.float32))
                break
            parts.append(block)
            have += len(block)
        if len(parts) > 1:
            self.buf = np.concatenate(parts)
        return self.buf[: b - a]


#: ``spectok eval`` runs clips longer than this in segments of at most this length (each with the
#: models' full context, so the signals equal whole-clip processing) and combines their metrics
#: by length; PESQ is defined on clips of a few seconds to about half a minute.
SEGMENT_SECONDS = 30.0


def combine_segments(parts: list[dict]) -> dict:
    """One utterance record from the records of its consecutive segments: totals of the lengths and
    timings, length-weighted means of every metric (over the segments that have it, noted when not
    all do), the union of flags; a failure stays a failure only where no segment was measured."""
    weights = [p["seconds"] for p in parts]
    rec = {k: parts[0][k] for k in ("id", "path", "source_sample_rate")}
    for k in ("seconds", "frames", "token_columns"):
        rec[k] = sum(p[k] for p in parts) if k != "seconds" else float(sum(weights))
    rec["failures"], rec["notes"] = {}, {}
    for group in ("tokenizer", "tokenized", "copy", "original"):
        values = {}
        for key in dict.fromkeys(k for p in parts for k in p.get(group, {})):
            pairs = [(p[group][key], w) for p, w in zip(parts, weights) if key in p.get(group, {})]
            values[key] = sum(v * w for v, w in pairs) / sum(w for _, w in pairs)
            if len(pairs) < len(parts):
                rec["notes"][f"{group}/{key}"] = f"measured on {len(pairs)} of {len(parts)} segments"
        rec[group] = values
    for i, p in enumerate(parts):
        for key, reason in p["failures"].items():
            group, _, name = key.partition("/")
            if name not in rec.get(group, {}):
                rec["failures"].setdefault(key, f"segment {i + 1}: {reason}")
    for p in parts:
        for key, note in p["notes"].items():
            rec["notes"].setdefault(key, note)
    rec["notes"]["segments"] = (f"{len(parts)} segments of <= {SEGMENT_SECONDS:.0f} s, each run with the models' "
                                "full context; every metric is the length-weighted mean of the segments'")
    rec["gap"] = {k: rec["tokenized"][k] - rec["copy"][k] for k in rec["tokenized"] if k in rec["copy"]}
    rec["flags"] = list(dict.fromkeys(f for p in parts for f in p["flags"]))
    rec["timing"] = {k: sum(p["timing"][k] for p in parts) for k in parts[0]["timing"]}
    return rec
