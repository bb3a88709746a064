"""``spectok models`` and ``spectok presets``: what ships with spectok, ready to use or to train."""

from __future__ import annotations

import argparse
import json

from spectok.cli.common import add_command


def register(sub) -> None:
    p = add_command(sub, "models", "List the released models shipped with spectok (usable as -t/-v NAME).",
                    "spectok models", _models)
    p.add_argument("--json", action="store_true", help="one JSON object per model instead of a table")
    p = add_command(sub, "presets", "List the training presets (usable as 'train --config NAME').",
                    "spectok presets", _presets)
    p.add_argument("--json", action="store_true", help="one JSON object per preset instead of a table")


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_table(header: list[str], rows: list[list[str]], right: set[int] = frozenset()) -> None:
    """Columns as wide as their widest cell (header included); columns in ``right`` right-aligned."""
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    for row in [header, *rows]:
        cells = [str(c).rjust(w) if i in right else str(c).ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
        print("  ".join(cells).rstrip())


def _models(args: argparse.Namespace) -> int:
    import spectok.models as models

    rows = [models.describe(r) for r in models.releases().values()]
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return 0
    if not rows:
        print("no released models in this installation")
        return 0
    print_table(["name", "front end", "bit/s", "MB", "vocoder", "PESQ-WB", "STOI", "held-out set"],
                [[", ".join([r["name"], *r["aliases"]]), r["mel"], _fmt(r["bitrate"], ".0f"), f"{r['size_mb']:.1f}",
                  r["vocoder"], _fmt(r.get("pesq"), ".2f"), _fmt(r.get("stoi"), ".2f"), r.get("held_out", "-")]
                 for r in rows], right={2, 3, 5, 6})
    print("model cards:", ", ".join(str(models.releases()[r["name"]].card) for r in rows))
    return 0


def preset_rows() -> list[dict]:
    """Name, kind, task, front end and (tokenizers) bit/s of every shipped training preset."""
    from spectok.audio.mel import MelConfig
    from spectok.training.config import PRESET_KINDS, load_config, preset_files

    rows = []
    for kind in PRESET_KINDS:
        for name, path in preset_files(kind).items():
            cfg = load_config(path)
            mel = (cfg.get("model") or {}).get("mel") or cfg.get("mel")
            row = {"name": name, "kind": kind, "task": cfg["task"], "mel": mel if isinstance(mel, str) else
                   ("custom" if mel else None), "bitrate": None, "file": str(path)}
            if kind == "tokenizer":
                from spectok.artifacts import build_section

                model = build_section(cfg["model"], "tokenizer")
                row["bitrate"] = float(model.bitrate) if model.mel_config is not None else None
                if model.mel_config is not None and row["mel"] == "custom":
                    row["mel"] = MelConfig.coerce(model.mel_config).fingerprint()
            rows.append(row)
    return rows


def _presets(args: argparse.Namespace) -> int:
    rows = preset_rows()
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return 0
    print_table(["name", "kind", "task", "front end", "bit/s"],
                [[r["name"], r["kind"], r["task"], r["mel"] or "-", _fmt(r["bitrate"], ".0f")] for r in rows],
                right={4})
    return 0
