"""Summaries of the per-utterance records: aggregates with intervals, speed, and ranking.

Records are the dicts :meth:`spectok.evaluation.runner.Evaluator.measure` returns.
"""

from __future__ import annotations

import math

import torch

from spectok.evaluation import metrics as M

#: metric groups of a record (see :mod:`spectok.evaluation.runner`)
GROUPS = ("tokenizer", "tokenized", "copy", "gap", "original")


def aggregate(records: list[dict]) -> dict:
    """``{group: {metric: Summary dict + "failed"}}`` over the utterances (gap: paired differences)."""
    out: dict = {}
    for group in GROUPS:
        names = sorted({k for r in records for k in r.get(group, {})})
        out[group] = {}
        for name in names:
            values = [r[group][name] for r in records if name in r.get(group, {})]
            out[group][name] = dict(M.summarize(values).to_dict(), failed=len(records) - len(values))
    return out


def speed(records: list[dict], device: torch.device) -> dict:
    """Audio seconds per compute second of each stage, over the whole set."""
    total = {k: sum(r["timing"][k] for r in records) for k in
             ("audio_s", "encode_s", "tokenizer_decode_s", "decode_s", "vocoder_s")}

    def ratio(k: str) -> float | None:
        return total["audio_s"] / total[k] if total[k] > 0 else None

    return {"audio_seconds": total["audio_s"], "encode_x_realtime": ratio("encode_s"),
            "decode_x_realtime": ratio("decode_s"), "tokenizer_decode_x_realtime": ratio("tokenizer_decode_s"),
            "vocoder_x_realtime": ratio("vocoder_s"), "compute_seconds": {k: v for k, v in total.items()
                                                                          if k != "audio_s"},
            "device": str(device), "torch_threads": torch.get_num_threads(), "batch_size": 1}


def rank(records: list[dict]) -> dict:
    """Best, median and worst utterance: by tokenized PESQ when every utterance has one on one scale
    (not wideband for some, narrowband for others), else by the tokenizer's MCD (lower is better)."""
    if not records:
        return {"metric": None, "best": None, "median": None, "worst": None}
    if all("pesq" in r["tokenized"] for r in records) and len({r["notes"].get("pesq") for r in records}) == 1:
        key, metric = (lambda r: -r["tokenized"]["pesq"]), "tokenized/pesq"
    else:
        key, metric = (lambda r: r["tokenizer"].get("mcd_db", math.inf)), "tokenizer/mcd_db"
    order = sorted(records, key=lambda r: (key(r), r["id"]))
    return {"metric": metric, "best": order[0]["id"], "median": order[(len(order) - 1) // 2]["id"],
            "worst": order[-1]["id"]}
