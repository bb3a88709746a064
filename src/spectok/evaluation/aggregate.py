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


def paired_difference(before: list[dict], after: list[dict], metric: str, group: str = "tokenized") -> M.Summary:
    """The mean of ``after − before`` per utterance, with its 95 % interval (a paired comparison).

    ``before``, ``after``: the ``utterances`` of two reports on the same clips (matched by
    ``id``); a clip missing ``group/metric`` on either side is left out. Pairing removes the
    clip-to-clip spread that two separate intervals carry, so a gain can be shown on few clips.
    """
    old = {r["id"]: r.get(group, {}).get(metric) for r in before}
    diffs = [r[group][metric] - old[r["id"]] for r in after
             if old.get(r["id"]) is not None and r.get(group, {}).get(metric) is not None]
    return M.summarize(diffs)


def paired_comparison(before: dict, after: dict, metrics: dict[str, str] | None = None,
                      group: str = "tokenized") -> dict:
    """Two eval reports on the same clips (``report.json`` dicts), side by side, and their difference.

    Returns ``{"clips": N, "before": {name: {"mean", "ci95"}}, "after": {...}, "gain": {name: {"mean",
    "ci95", "clips"}}}``, the gain being :func:`paired_difference` (after − before, clip by clip).
    ``metrics`` maps report keys to the names used here (default PESQ-WB and STOI).
    """
    metrics = metrics or {"pesq": "pesq_wb", "stoi": "stoi"}

    def ci(s: dict) -> dict:
        return {"mean": s["mean"], "ci95": [s["ci_low"], s["ci_high"]]}

    out: dict = {"clips": len(before["utterances"]), "before": {}, "after": {}, "gain": {}}
    for key, name in metrics.items():
        out["before"][name] = ci(before["aggregate"][group][key])
        out["after"][name] = ci(after["aggregate"][group][key])
        gain = paired_difference(before["utterances"], after["utterances"], key, group).to_dict()
        out["gain"][name] = {**ci(gain), "clips": gain["n"]}
    return out


def format_ci(s: dict, sign: str = "") -> str:
    """``"mean [low, high]"`` of a :func:`paired_comparison` entry, 3 decimals (``sign="+"`` for gains)."""
    lo, hi = s["ci95"]
    return f"{s['mean']:{sign}.3f} [{lo:{sign}.3f}, {hi:{sign}.3f}]"


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
    (not wideband for some, narrowband for others), else by the tokenizer's MFCC distance (lower is better)."""
    if not records:
        return {"metric": None, "best": None, "median": None, "worst": None}
    if all("pesq" in r["tokenized"] for r in records) and len({r["notes"].get("pesq") for r in records}) == 1:
        key, metric = (lambda r: -r["tokenized"]["pesq"]), "tokenized/pesq"
    else:
        key, metric = (lambda r: r["tokenizer"].get("mfcc_dist_db", math.inf)), "tokenizer/mfcc_dist_db"
    order = sorted(records, key=lambda r: (key(r), r["id"]))
    return {"metric": metric, "best": order[0]["id"], "median": order[(len(order) - 1) // 2]["id"],
            "worst": order[-1]["id"]}
