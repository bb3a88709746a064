"""Reproduce the released models, end to end: ``make models`` (``python scripts/release_models.py``).

For each model: prepare its data (``scripts/release_data.py``), train the tokenizer preset with
one thread (``spectok train``; an interrupted run resumes), export the best checkpoint into
``src/spectok/models/``, evaluate the shipped file on its held-out set and on one
out-of-domain case (``spectok eval``), and write the model card and ``index.json`` from
those reports. Every stage is skipped when its output exists, so a second run resumes; pass
``--force-eval`` to re-measure after re-exporting.

Usage::

    python scripts/release_models.py                  # every model
    python scripts/release_models.py default --steps 2000 --work /tmp/rel   # a quick rehearsal
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import resource
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
MODELS = REPO / "src" / "spectok" / "models"
sys.path.insert(0, str(REPO / "scripts"))


@dataclass(frozen=True)
class Recipe:
    data: str  # release_data.py set
    preset: str  # tokenizer preset
    steps: int
    aliases: tuple[str, ...]
    held_out: str  # what the held-out set is (the counts come from the prepared test split)
    ood: tuple[str, str]  # (label, path) of the out-of-domain case
    use: str


RECIPES = {
    "default": Recipe(
        data="speech16k", preset="default", steps=60_000, aliases=("speech16k",),
        held_out="whole speakers never trained on (LibriTTS test-clean, LibriSpeech dev-clean, VCTK)",
        ood=("8 kHz telephone-band digits (Free Spoken Digit Dataset, first 40 clips)",
             str(DATA / "free-spoken-digit-dataset" / "recordings")),
        use="general English read speech at 16 kHz"),
    "ljspeech22k": Recipe(
        data="ljspeech22k", preset="ljspeech22k", steps=32_000, aliases=(),
        held_out="whole LJSpeech clips never trained on",
        ood=("multi-speaker read speech (LibriTTS test-clean, 23 clips, 24 kHz)", str(DATA / "extra" / "LibriTTS")),
        use="LJSpeech text-to-speech (the DCTTS setting: HiFi-GAN 22 kHz mels)"),
}


def spectok(args: list[str], threads: int, log: Path | None = None) -> float:
    """Run ``spectok ARGS`` with ``threads`` threads; returns the child's CPU seconds."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONWARNINGS="ignore")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    print("$ spectok " + shlex.join(args), flush=True)
    with open(log, "a") if log else open(os.devnull, "w") as sink:
        code = subprocess.call([sys.executable, "-m", "spectok", *args], env=env, stdout=sink if log else None)
    if code:
        raise SystemExit(f"spectok {args[0]} failed with exit status {code}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def preset_section(preset: str, key: str) -> dict:
    """One section of a shipped tokenizer preset (``configs/tokenizer/PRESET.yaml``)."""
    import yaml

    return yaml.safe_load((REPO / "configs" / "tokenizer" / f"{preset}.yaml").read_text())[key]


def optimizer_words(cfg: dict) -> str:
    """The generator's optimizer and learning-rate schedule in a few words, from a training config."""
    g = cfg.get("optim", {}).get("generator", {})
    words = f"{g.get('kind', 'adam').capitalize()}, learning rate {g.get('lr', float('nan')):g}"
    if g.get("schedule") == "step":
        words += f" (x{g.get('gamma', 0.5):g} every {g.get('step_size', 10000):,} steps)"
    elif g.get("schedule") not in (None, "constant"):
        words += f" ({g['schedule']} schedule)"
    return words


def train(name: str, r: Recipe, data: Path, work: Path, steps: int, threads: int) -> dict:
    run = work / "runs" / name
    record = run / "release-time.json"
    done = json.loads(record.read_text()) if record.is_file() else {"cpu_s": 0.0, "wall_s": 0.0, "sessions": []}
    if done.get("steps") == steps:
        return done
    steps_done = sorted(int(p.stem.split("-")[1]) for p in (run / "checkpoints").glob("step-*.pt"))
    resume = bool(steps_done)
    args = ["train", "tokenizer", "--out", str(run), "--steps", str(steps), "--set", "train.progress=false"]
    args += ["--resume", "--set", f"optim={json.dumps(preset_section(r.preset, 'optim'))}"] if resume else [
        "--config", r.preset, "--data", str(data)]  # a resumed run follows the preset's optimizer (its schedule)
    t0 = time.time()
    cpu = spectok(args, threads)
    done["cpu_s"] = None if done["cpu_s"] is None else done["cpu_s"] + cpu  # None: a session went unrecorded
    done["wall_s"] += time.time() - t0
    done["sessions"].append({"cpu_s": round(cpu), "threads": threads, "load_avg_end": os.getloadavg()[0],
                             "from_step": steps_done[-1] if steps_done else 0,
                             "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"})
    done["steps"] = steps
    record.write_text(json.dumps(done, indent=1))
    return done


def evaluate(artifact: Path, data: list[str], out: Path, force: bool, limit: int | None = None) -> dict:
    if force or not (out / "report.json").is_file():
        args = ["eval", "-t", str(artifact), "-v", "griffin-lim", *data, "-o", str(out), "-q"]
        spectok(args + (["--limit", str(limit)] if limit else []), threads=2)
        (out / "load.json").write_text(json.dumps({"load_avg_1min_after": os.getloadavg()[0]}))
    report = json.loads((out / "report.json").read_text())
    load = out / "load.json"
    report["load_avg"] = json.loads(load.read_text())["load_avg_1min_after"] if load.is_file() else None
    return report


# ---- the card ------------------------------------------------------------------------------------
def _licences() -> dict[str, str]:
    out = {"LibriSpeech": "CC BY 4.0", "CMU_ARCTIC": "CMU ARCTIC BSD-style", "LJSpeech": "public domain"}
    with open(DATA / "extra" / "MANIFEST.tsv", encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            out[row["corpus"]] = row["corpus_licence"]
    return out


def data_table(prepared: Path) -> str:
    from spectok.data.prepared import open_prepared

    ps = open_prepared(prepared)
    lic = _licences()
    lines = ["| split | corpus | speakers | clips | minutes | licence |", "|---|---|---|---|---|---|"]
    for split in ("train", "valid", "test"):
        groups: dict[str, list[dict]] = {}
        for row in ps.split(split):
            groups.setdefault(row["speaker"].split(":")[0] if ":" in row["speaker"] else "LJSpeech", []).append(row)
        for corpus, rows in sorted(groups.items()):
            lines.append(f"| {split} | {corpus} | {len({r['speaker'] for r in rows})} | {len(rows)} | "
                         f"{sum(r['seconds'] for r in rows) / 60:.1f} | {lic.get(corpus, '?')} |")
    return "\n".join(lines)


CREDITS = {"LibriSpeech": "LibriSpeech (Panayotov et al. 2015)", "LibriTTS": "LibriTTS (Zen et al. 2019)",
           "VCTK": "VCTK (Yamagishi et al.)", "VCC2016": "the Voice Conversion Challenge 2016 (Toda et al.)",
           "CMU_ARCTIC": "CMU ARCTIC (Kominek and Black 2004)", "CommonVoice": "Common Voice (Mozilla)",
           "LJSpeech": "LJSpeech (Keith Ito and Linda Johnson 2017)", "HiFiTTS": "Hi-Fi TTS (Bakhturina et al. 2021)"}


def credits(prepared: Path) -> str:
    """The corpora whose recordings are in the prepared folder, credited."""
    from spectok.data.prepared import open_prepared

    found = sorted({r["speaker"].split(":")[0] if ":" in r["speaker"] else "LJSpeech"
                    for r in open_prepared(prepared).records})
    return ", ".join(CREDITS.get(c, c) for c in found)


def _m(agg: dict, group: str, key: str) -> str:
    s = agg.get(group, {}).get(key)
    if not s or s.get("mean") is None:
        return "–"
    return f"{s['mean']:.3f} [{s['ci_low']:.3f}, {s['ci_high']:.3f}]"


def results_table(report: dict) -> str:
    agg = report["aggregate"]
    keys = [("pesq", "PESQ (wideband; narrowband for sources below 16 kHz)"), ("stoi", "STOI"),
            ("mcd_db", "MCD (dB)"), ("lsd_db", "LSD mel (dB)"), ("dnsmos_ovrl", "DNSMOS OVRL"),
            ("dnsmos_sig", "DNSMOS SIG")]
    lines = ["| metric | tokenized | copy synthesis (bound) |", "|---|---|---|"]
    for key, label in keys:
        if key in agg.get("tokenized", {}) or key in agg.get("copy", {}):
            lines.append(f"| {label} | {_m(agg, 'tokenized', key)} | {_m(agg, 'copy', key)} |")
    return "\n".join(lines)


def token_vocoder_note(name: str, fingerprint: str) -> str:
    """The measured vocoder trained on this model's decoded mels (benchmarks/bench_token_vocoder.py), if run
    on this very model (its fingerprint)."""
    result = REPO / "runs" / "bench-token-vocoder" / "result.json"
    r = json.loads(result.read_text()) if result.is_file() else {}
    if r.get("tokenizer") != fingerprint:
        return ("No vocoder was trained on this model's tokens (one trained on an earlier `default`'s decoded "
                "mels lost to Griffin-Lim: benchmarks/RESULTS.md, \"Quality per bit\", lever 5). ")
    (gl_name, gl), (voc_name, voc) = list(r["rows"].items())
    return (f"An iSTFT vocoder trained on this model's decoded mels ({r['train']['steps']} steps, "
            f"{r['train']['cpu_s'] / 60:.0f} CPU-min) reaches tokenized PESQ-WB {voc['tokenized_pesq']:.2f} / STOI "
            f"{voc['tokenized_stoi']:.3f} on the held-out set, against {gl['tokenized_pesq']:.2f} / "
            f"{gl['tokenized_stoi']:.3f} for Griffin-Lim (`benchmarks/bench_token_vocoder.py`). ")


def quantizer_words(q: dict) -> str:
    """The quantizer in a few words, from its config."""
    if q["type"] == "fsq":
        return f"finite scalar quantization, levels {q['levels']}"
    if q["type"] == "rvq":
        return f"residual VQ, {q['num_quantizers']} stages of {q['codebook_size']} codes"
    return f"VQ, {q.get('codebook_size')} codes"


def write_card(name: str, r: Recipe, artifact: Path, report: dict, ood: dict, timing: dict, prepared: Path,
               steps: int) -> None:
    import hashlib

    from spectok.artifacts import read_header

    header = read_header(artifact)
    tr = header.get("training", {})
    tok = report["tokenizer"]
    tokens, speed = report["tokens"], report["speed"]
    sha = hashlib.sha256(artifact.read_bytes()).hexdigest()
    cmd = f"python scripts/release_models.py {name}"
    from spectok.data.prepared import open_prepared

    test = open_prepared(prepared).split("test")
    n_speakers = len({r["speaker"] for r in test})
    held = f"{len(test)} clips" + (f" of {n_speakers} speakers" if n_speakers > 1 else "")
    session = timing["sessions"][-1]
    agg_t, agg_c = report["aggregate"]["tokenized"], report["aggregate"]["copy"]
    ood_t = ood["report"]["aggregate"]["tokenized"]
    cfg = tr.get("config", {})
    first = min(sess.get("from_step", 0) for sess in timing["sessions"])
    untimed = (f" (a first process trained steps 0-{first} and was stopped before this record began; "
               f"its CPU time is not counted)" if first else "")
    batch, crop = cfg.get("train", {}).get("batch_size"), cfg.get("data", {}).get("crop_frames")
    sessions = timing["sessions"]
    if timing["cpu_s"] is not None:
        spent = f"{timing['cpu_s'] / 60:.0f} CPU-minutes ({timing['wall_s'] / 60:.0f} min wall)"
    else:  # some session's CPU time was not recorded: give the wall time and what was recorded
        recorded = [x for x in sessions if x.get("cpu_s") is not None]
        notes = "; ".join(x["note"] for x in sessions if x.get("note"))
        spent = (f"{timing['wall_s'] / 60:.0f} min wall in {len(sessions)} session(s), CPU time recorded for "
                 f"{len(recorded)} of them ({sum(x['cpu_s'] for x in recorded) / 60:.0f} CPU-min)"
                 + (f" ({notes})" if notes else ""))
    quant, voc_note = quantizer_words(tok["config"]["quantizer"]), token_vocoder_note(name, header["fingerprint"])
    card = f"""# spectok `{name}`{' (alias ' + ', '.join(f'`{a}`' for a in r.aliases) + ')' if r.aliases else ''}

A speech tokenizer for {r.use}: log-mel ({header['mel']['sample_rate']} Hz, hop {header['mel']['hop_length']}) →
{len(tok['codebook_sizes'])} tokens per column of {math.prod(tok['config']['strides'])} frames,
{tok['frame_rate']:.1f} columns/s, codebooks {sorted(set(tok['codebook_sizes']))}
({quant}) → **{tok['bitrate']:.0f} bit/s**. Decoded log-mels go to any vocoder of the same front end. The
paired vocoder (`-v default`) is **Griffin-Lim**: no trained vocoder has been shown to beat it here.
{voc_note}The trained vocoders measured so far lose to Griffin-Lim even on true LJSpeech
mels at the CPU budgets available (iSTFT vocoder after 37 min: PESQ-WB 1.99, HiFi-GAN V3 after 13 min:
1.05, Griffin-Lim: 3.55; benchmarks/RESULTS.md, "Vocoders").

- file: `src/spectok/models/{artifact.name}` ({artifact.stat().st_size / 1e6:.2f} MB, float32,
  {tok['parameters'] / 1e6:.2f} M parameters), SHA-256 `{sha}`
- load: `spectok.load_tokenizer("{name}")`, or `-t {name}` in any command
- training preset: `{r.preset}` (`spectok presets`), class `{header['class']}`, fingerprint `{header['fingerprint']}`

## Training data
Real recordings from ../shared/data (small public subsets of the corpora, see its README), split by
{'whole speakers' if name == 'default' else 'whole clips'}:

{data_table(prepared)}

Credits: {credits(prepared)}; the licence of every file is listed in `extra/MANIFEST.tsv`.

## Training
{tr.get('step', steps)} steps picked by validation log-mel L1 (best of {steps}), batch {batch}, crops of {crop}
frames, {optimizer_words(cfg)}; {spent}{untimed} on
{session['machine']}, {session['threads']} thread(s), no GPU (load average at the end
{session['load_avg_end']:.1f}).
Validation log-mel L1 {tr.get('valid', {}).get('l1', float('nan')):.4f} (natural-log units).
Reproduce: `{cmd}` (or `make models`).

## Held-out results
`spectok eval -t {name} -v griffin-lim` on {held}, {r.held_out}; mean and 95 % interval over
utterances.
Tokenized: audio → codes → log-mel → Griffin-Lim (32 iterations); copy synthesis: audio → log-mel →
Griffin-Lim, the bound the vocoder sets.

{results_table(report)}

Tokens: {tokens['used_fraction'] * 100:.0f} % of the {tokens['total_codes']} codes used, entropy
{tokens['entropy_bits_per_second']:.0f} bit/s of the nominal {tokens['nominal_bits_per_second']:.0f} bit/s.
Speed on this machine ({speed['torch_threads']} thread(s), batch 1, float64 front end): encode
{speed['encode_x_realtime']:.0f}× real time, tokens → log-mel {speed['tokenizer_decode_x_realtime']:.0f}×,
Griffin-Lim {speed['vocoder_x_realtime']:.0f}× (load average {report['load_avg'] or float('nan'):.1f} after the
run; on an idle machine see benchmarks/bench_inference.py, and `spectok encode` uses the faster float32
front end).

## Intended use and limits
For {r.use}, English, one speaker at a time, clean recordings. Not for music, noisy or overlapped
speech, or other languages: it was trained on none. One out-of-domain case measured,
{ood['label']}:

{results_table(ood['report'])}

On held-out speech the tokens keep the words (STOI {agg_t['stoi']['mean']:.2f} against {agg_c['stoi']['mean']:.2f} for
copy synthesis) but lose much of the fine structure at this rate (PESQ {agg_t['pesq']['mean']:.2f} against
{agg_c['pesq']['mean']:.2f}): understandable, not to be mistaken for the recording. Out of domain they lose more
(STOI {ood_t['stoi']['mean']:.2f}, PESQ {ood_t['pesq']['mean']:.2f}).
"""
    (MODELS / f"{name}.md").write_text(card, encoding="utf-8")
    index_path = MODELS / "index.json"
    index = json.loads(index_path.read_text()) if index_path.is_file() else {}
    agg = report["aggregate"]["tokenized"]
    index[name] = {"aliases": list(r.aliases), "tokenizer": artifact.name, "vocoder": "griffin-lim",
                   "card": f"{name}.md",
                   "headline": {"pesq": round(agg["pesq"]["mean"], 3), "stoi": round(agg["stoi"]["mean"], 3),
                                "held_out": held}}
    index_path.write_text(json.dumps(dict(sorted(index.items())), indent=1) + "\n")
    print(f"wrote {MODELS / (name + '.md')} and index.json")


def release(name: str, steps: int | None, threads: int, work: Path, force_eval: bool) -> None:
    import release_data

    r = RECIPES[name]
    steps = steps or r.steps
    data = REPO / "runs" / "data" / "release" / r.data
    release_data.main([r.data, str(data), "-j", "2"])
    timing = train(name, r, data, work, steps, threads)
    artifact = MODELS / f"{name}.safetensors"
    if force_eval or not artifact.is_file():
        spectok(["export", str(work / "runs" / name), "-o", str(artifact)], threads)
    report = evaluate(artifact, [str(data)], work / "eval" / name, force_eval)
    ood = {"label": r.ood[0], "report": evaluate(artifact, [r.ood[1]], work / "eval" / f"{name}-ood", force_eval,
                                                 limit=40 if "digit" in r.ood[1] else None)}
    write_card(name, r, artifact, report, ood, timing, data, steps)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("names", nargs="*", metavar="NAME",
                    help=f"models to release (default: all of {', '.join(RECIPES)})")
    ap.add_argument("--steps", type=int, help="training steps (default: each recipe's)")
    ap.add_argument("--threads", type=int, default=1, help="training threads (default 1)")
    ap.add_argument("--work", type=Path, default=REPO / "runs" / "release", help="runs and reports")
    ap.add_argument("--force-eval", action="store_true", help="re-export and re-measure")
    args = ap.parse_args()
    unknown = sorted(set(args.names) - set(RECIPES))
    if unknown:
        ap.error(f"unknown model(s) {unknown}; choose from {', '.join(RECIPES)}")
    for name in args.names or list(RECIPES):
        release(name, args.steps, args.threads, args.work, args.force_eval)


if __name__ == "__main__":
    main()
