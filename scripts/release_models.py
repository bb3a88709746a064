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
import time
from dataclasses import dataclass
from pathlib import Path

from spectok.fsutil import read_jsonl
from spectok.training.accounting import run_spectok as spectok
from spectok.training.accounting import training_cpu_s

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
MODELS = REPO / "src" / "spectok" / "models"


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
    # a resumed run follows the preset's optimizer (its schedule)
    return run_training(run, "tokenizer", ["--config", r.preset, "--data", str(data)],
                        ["--set", f"optim={json.dumps(preset_section(r.preset, 'optim'))}"], steps, threads)


def run_training(run: Path, kind: str, fresh: list[str], resumed: list[str], steps: int, threads: int) -> dict:
    """Train (or resume) ``run`` to ``steps`` with ``spectok train KIND``; its CPU and wall time are
    added up over sessions in ``run/release-time.json``, which is returned."""
    record = run / "release-time.json"
    done = json.loads(record.read_text()) if record.is_file() else {
        "cpu_s": 0.0, "wall_s": 0.0, "sessions": [], "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if done.get("steps") == steps:
        return done
    steps_done = sorted(int(p.stem.split("-")[1]) for p in (run / "checkpoints").glob("step-*.pt"))
    args = ["train", kind, "--out", str(run), "--steps", str(steps), "--set", "train.progress=false"]
    args += ["--resume", *resumed] if steps_done else fresh
    t0 = time.time()
    before = training_cpu_s(read_jsonl(run / "metrics.jsonl"))
    untracked = before - (done["cpu_s"] or 0.0)
    if done["cpu_s"] is not None and untracked > 60:  # trained outside this script (e.g. resumed by hand)
        done["sessions"].append({"cpu_s": round(untracked), "threads": None, "load_avg_end": None,
                                 "from_step": None, "note": "trained outside this script; CPU time from metrics.jsonl"})
        done["cpu_s"] += untracked
    spectok(args, threads)
    cpu = training_cpu_s(read_jsonl(run / "metrics.jsonl")) - before
    done["cpu_s"] = None if done["cpu_s"] is None else done["cpu_s"] + cpu  # None: a session went unrecorded
    done["wall_s"] += time.time() - t0
    done["sessions"].append({"cpu_s": round(cpu), "threads": threads, "load_avg_end": os.getloadavg()[0],
                             "from_step": steps_done[-1] if steps_done else 0,
                             "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"})
    done["steps"] = steps
    record.write_text(json.dumps(done, indent=1))
    return done


def evaluate(artifact: Path, data: list[str], out: Path, force: bool, limit: int | None = None,
             vocoder: str = "griffin-lim") -> dict:
    if force or not (out / "report.json").is_file():
        args = ["eval", "-t", str(artifact), "-v", vocoder, *data, "-o", str(out), "-q"]
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
            ("mfcc_dist_db", "MFCC distance (dB)"), ("lsd_db", "LSD mel (dB)"), ("dnsmos_ovrl", "DNSMOS OVRL"),
            ("dnsmos_sig", "DNSMOS SIG")]
    lines = ["| metric | tokenized | copy synthesis (bound) | recordings |", "|---|---|---|---|"]
    for key, label in keys:
        if key in agg.get("tokenized", {}) or key in agg.get("copy", {}):
            lines.append(f"| {label} | {_m(agg, 'tokenized', key)} | {_m(agg, 'copy', key)} | "
                         f"{_m(agg, 'original', key)} |")
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


def vocoder_paragraph(name: str, fallback: str) -> str:
    """What the tokenizer's card says of its paired vocoder (the index's pairing, the vocoder card)."""
    index_path = MODELS / "index.json"
    entry = json.loads(index_path.read_text()).get(name, {}) if index_path.is_file() else {}
    voc = VOCODERS.get(name)
    card = f"`{voc.card}`" if voc and (MODELS / voc.card).is_file() else None
    if entry.get("vocoder", "griffin-lim") != "griffin-lim":
        return (f"The paired vocoder (`-v default`) is the trained `{entry['vocoder']}`, trained on this model's "
                f"decoded mels; its card {card} gives its figures against Griffin-Lim.")
    if card:
        return (f"The paired vocoder (`-v default`) is **Griffin-Lim** (32 iterations from the phase-gradient "
                f"start): the vocoder in training on this model's decoded mels has not yet met the pairing "
                f"targets (its card {card} says where it stands).")
    return f"The paired vocoder (`-v default`) is **Griffin-Lim**. {fallback}"


def quantizer_words(q: dict) -> str:
    """The quantizer in a few words, from its config."""
    if q["type"] == "fsq":
        return f"finite scalar quantization, levels {q['levels']}"
    if q["type"] == "rvq":
        return f"residual VQ, {q['num_quantizers']} stages of {q['codebook_size']} codes"
    return f"VQ, {q.get('codebook_size')} codes"


def usage_words(tokens: dict) -> str:
    """Usage per codebook (residual stage, FSQ group, or a grid's shared codebook), as ``spectok eval`` counts it."""
    per = tokens.get("codebook_used_fraction") or []
    if len(per) <= 1:
        return "one codebook"
    return "per codebook " + ", ".join(f"{100 * f:.0f} %" for f in per)


def write_card(name: str, r: Recipe, artifact: Path, report: dict, ood: dict, timing: dict, prepared: Path,
               steps: int) -> None:
    import hashlib

    from spectok.artifacts import read_header

    header = read_header(artifact)
    tr = header.get("training", {})
    tok = report["tokenizer"]
    tokens = report["tokens"]
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
({quant}) → **{tok['bitrate']:.0f} bit/s**. Decoded log-mels go to any vocoder of the same front end.
{vocoder_paragraph(name, voc_note)}

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

Tokens: {tokens['used_fraction'] * 100:.0f} % of the {tokens['total_codes']} codes used ({usage_words(tokens)}), entropy
{tokens['entropy_bits_per_second']:.0f} bit/s of the nominal {tokens['nominal_bits_per_second']:.0f} bit/s.
Speed: benchmarks/RESULTS.md ("Targets", "Decode" and "Inference"), measured on an idle 2-core machine;
the eval run behind this card timed nothing a reader should quote.

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
    index[name] = {"aliases": list(r.aliases), "tokenizer": artifact.name,
                   "vocoder": index.get(name, {}).get("vocoder", "griffin-lim"),
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


# ---- the paired vocoder ---------------------------------------------------------------------------
@dataclass(frozen=True)
class VocoderRecipe:
    preset: str  # vocoder preset, trained on the tokenizer's decoded mels of its own release data
    steps: int  # steps of one training run (its learning-rate schedule's length)
    file: str
    card: str
    gan_preset: str  # its adversarial phase, continuing from the shipped (spectrally trained) weights
    gan_steps: int


VOCODERS = {"default": VocoderRecipe(preset="istft-16k", steps=100_000, file="default-vocoder.safetensors",
                                     card="default-vocoder.md", gan_preset="istft-16k-gan", gan_steps=5_000)}
#: What a trained vocoder must reach against Griffin-Lim (32 iterations) on the tokenized held-out set
#: to be paired with its tokenizer (issue 28): PESQ-WB >=, STOI >= -0.005, DNSMOS OVRL >= +0.15.
PAIRING = (("pesq", 0.0), ("stoi", -0.005), ("dnsmos_ovrl", 0.15))


def pairing_verdict(voc: dict, gl: dict) -> list[tuple[str, float, float, bool]]:
    """``(metric, vocoder mean, Griffin-Lim mean + margin, met)`` for each pairing target."""
    out = []
    for key, margin in PAIRING:
        v, g = voc["aggregate"]["tokenized"][key]["mean"], gl["aggregate"]["tokenized"][key]["mean"] + margin
        out.append((key, v, g, v >= g))
    return out


def margins(voc: dict, gl: dict) -> tuple[int, float]:
    """(targets met, sum of the margins over them): the order in which candidate vocoders rank."""
    verdict = pairing_verdict(voc, gl)
    return sum(met for *_, met in verdict), sum(v - g for _, v, g, _ in verdict)


def release_vocoder(name: str, steps: int | None, threads: int, work: Path, force_eval: bool,
                    gan: bool = False) -> None:
    """Train (resume, or continue from the shipped weights), export a candidate, measure it against
    Griffin-Lim, and ship it (card, pairing) only when it ranks above the shipped weights (:func:`margins`).

    ``gan``: the adversarial phase (``VocoderRecipe.gan_preset``) in its own run folder, from the
    shipped weights; its last step is the candidate (validation mel L1 does not rank GAN steps)."""
    import release_data

    r, vr = RECIPES[name], VOCODERS[name]
    data = REPO / "runs" / "data" / "release" / r.data
    release_data.main([r.data, str(data), "-j", "2"])
    decoded = data.parent / f"{r.data}-decoded"
    spectok(["prepare-decoded", str(data), str(decoded), "-t", name], 2)
    shipped = MODELS / vr.file
    fresh = ["--config", vr.gan_preset if gan else vr.preset, "--data", str(decoded)]
    if shipped.is_file():  # a new machine: continue from the committed weights (fresh optimizer)
        fresh += ["--init", str(shipped)]
    run = work / "runs" / f"{name}-vocoder{'-gan' if gan else ''}"
    timing = run_training(run, "vocoder", fresh, [], steps or (vr.gan_steps if gan else vr.steps), threads)
    if "--init" in fresh and "init" not in timing:
        timing["init"] = True
    index_path = MODELS / "index.json"
    index = json.loads(index_path.read_text())
    budget = index[name].get("vocoder_budget", {"cpu_s": 0.0, "runs": []})
    key = {"run": run.relative_to(REPO).as_posix() if run.is_relative_to(REPO) else run.name,
           "started": timing.get("started")}
    entry = next((x for x in budget["runs"] if {k: x.get(k) for k in key} == key), None)
    if entry is None:  # each run once (a new machine's run has the same folder, another start)
        entry = {**key, "init": shipped.name if shipped.is_file() and timing.get("init") else None}
        budget["runs"].append(entry)
    entry.update(cpu_s=timing["cpu_s"], steps=timing["steps"])
    budget["cpu_s"] = sum(x["cpu_s"] or 0.0 for x in budget["runs"])
    tokenizer = MODELS / f"{name}.safetensors"
    gl = evaluate(tokenizer, [str(data)], work / "eval" / f"{name}-gl", force_eval)
    candidate = run / "candidate.safetensors"
    spectok(["export", str(run), "-o", str(candidate), "--checkpoint", "last" if gan else "best"], threads)
    cand = evaluate(tokenizer, [str(data)], run / "eval-candidate", True, vocoder=str(candidate))
    voc = evaluate(tokenizer, [str(data)], work / "eval" / f"{name}-vocoder", force_eval, vocoder=str(shipped)) \
        if shipped.is_file() else None
    ranks = margins(cand, gl), (margins(voc, gl) if voc is not None else None)
    if ranks[1] is None or ranks[0] > ranks[1]:
        print(f"the candidate ranks above the shipped weights {ranks[0]} > {ranks[1]}: shipping it")
        os.replace(candidate, shipped)
        voc = evaluate(tokenizer, [str(data)], work / "eval" / f"{name}-vocoder", True, vocoder=str(shipped))
    else:
        print(f"the candidate {ranks[0]} does not rank above the shipped weights {ranks[1]}: "
              "kept the shipped file (its budget is recorded all the same)")
    verdict = pairing_verdict(voc, gl)
    paired = all(met for *_, met in verdict)
    index[name].update(vocoder=vr.file if paired else "griffin-lim", vocoder_budget=budget,
                       trained_vocoder={"file": vr.file, "card": vr.card, "paired": paired})
    index_path.write_text(json.dumps(dict(sorted(index.items())), indent=1) + "\n")
    write_vocoder_card(name, vr, shipped, voc, gl, verdict, paired, budget, timing, data)


def losses_words(cfg: dict, vr: VocoderRecipe) -> str:
    """The card's sentence on how the shipped weights were trained (spectral losses, then the GAN phase)."""
    train, data = cfg.get("train", {}), cfg.get("data", {})
    spectral = ("multi-resolution STFT (spectral convergence + log-magnitude L1) and mel L1; AdamW, cosine "
                f"schedule, batch {train.get('batch_size')} of {data.get('segment_samples')}-sample segments")
    if cfg.get("task") != "vocoder-gan":
        return f"Losses: {spectral}, over {train.get('steps')} steps."
    loss = cfg.get("loss", {})
    return (f"Trained first with the spectral losses alone (preset `{vr.preset}`: {spectral}), then in an "
            f"adversarial phase (preset `{vr.gan_preset}`, {train.get('steps')} steps from those weights): "
            f"LSGAN against a multi-period discriminator and a multi-resolution spectrogram discriminator, "
            f"feature matching (x{loss.get('feature_matching_weight')}), the spectral losses kept "
            f"(mel L1 x{loss.get('mel_weight')}).")


def budget_rows(budget: dict) -> str:
    """The card's list of the vocoder's training runs and their CPU time."""
    rows = []
    for r in budget["runs"]:
        start = f" from `{r['init']}`" if r.get("init") else ""
        rows.append(f"- `{r['run']}`{start}: {r['steps']} steps, {(r['cpu_s'] or 0) / 3600:.2f} CPU-hours"
                    + (f" ({r['note']})" if r.get("note") else ""))
    return "\n".join(rows)


def write_vocoder_card(name: str, vr: VocoderRecipe, artifact: Path, voc: dict, gl: dict, verdict: list,
                       paired: bool, budget: dict, timing: dict, data: Path) -> None:
    import hashlib

    from spectok.artifacts import read_header

    header = read_header(artifact)
    tr = header.get("training", {})
    cfg = tr.get("config", {})
    model = cfg.get("model", {})
    from spectok.vocoders import load_vocoder

    params = sum(p.numel() for p in load_vocoder(artifact).parameters())
    session = timing["sessions"][-1]
    agg_v, agg_g = voc["aggregate"], gl["aggregate"]
    rows = ["| vocoder | use | PESQ-WB | STOI | DNSMOS OVRL |", "|---|---|---|---|---|"]
    for label, agg in (("this vocoder", agg_v), ("Griffin-Lim (32 iterations, phase-gradient start)", agg_g)):
        for group, use in (("tokenized", "tokenized (codes → decoded mel → vocoder)"),
                           ("copy", "copy synthesis (true mel → vocoder)")):
            rows.append(f"| {label} | {use} | {_m(agg, group, 'pesq')} | {_m(agg, group, 'stoi')} | "
                        f"{_m(agg, group, 'dnsmos_ovrl')} |")
    rows.append(f"| the recordings | – | – | – | {_m(agg_g, 'original', 'dnsmos_ovrl')} |")
    words = {"pesq": "PESQ-WB ≥ Griffin-Lim's", "stoi": "STOI ≥ Griffin-Lim's − 0.005",
             "dnsmos_ovrl": "DNSMOS OVRL ≥ Griffin-Lim's + 0.15"}
    targets = "\n".join(f"- {words[k]}: {v:.3f} against {g:.3f}, **{'met' if met else 'not met'}**"
                        for k, v, g, met in verdict)
    status = (f"**Paired**: `-v default` and `spectok.load_vocoder(\"default\", tokenizer=...)` use it with `{name}`."
              if paired else
              f"**In training, not paired**: it has not met every target below, so `{name}`'s paired vocoder is "
              f"still Griffin-Lim. The file ships so that training continues from it on any machine "
              f"(`python scripts/release_models.py {name} --vocoder`); load it by path to try it.")
    card = f"""# spectok `{name}` vocoder

An iSTFT vocoder (ConvNeXt backbone at the mel frame rate, inverse-STFT head; preset `{vr.preset}`) for the
`{name}` tokenizer's decoded log-mels ({header['mel']['sample_rate']} Hz, hop {header['mel']['hop_length']}).
{status}

- file: `src/spectok/models/{artifact.name}` ({artifact.stat().st_size / 1e6:.2f} MB, float32,
  {params / 1e6:.2f} M parameters),
  SHA-256 `{hashlib.sha256(artifact.read_bytes()).hexdigest()}`
- model: `{header['class']}`, dim {model.get('dim')}, {model.get('n_layers')} ConvNeXt blocks, head FFT {
        model.get('n_fft')}; receptive field and look-ahead stated, so it streams exactly
- load: `spectok.load_vocoder("src/spectok/models/{artifact.name}")`{
        f', or `-v default` with `-t {name}`' if paired else ''}

## Training
Inputs: `{name}`'s decoded log-mels (`spectok prepare-decoded`: every mel of its training split through
the tokenizer and back) of its own release data; targets: the real waveforms. The held-out speakers
were never used (the train split below; valid picks the step):

{data_table(data)}

{losses_words(cfg, vr)}
This file: step {tr.get('step')} of its run{
        ', its last (held-out scores, not validation mel L1, rank adversarial steps)'
        if cfg.get('task') == 'vocoder-gan'
        else ', picked by validation mel L1'} ({tr.get('valid', {}).get('mel_l1', float('nan')):.4f}).
Budget so far: {budget['cpu_s'] / 3600:.2f} one-thread CPU-hours over {len(budget['runs'])} run(s)
({session['machine']}, no GPU); a run's weights replace this file only when they rank above it on the
pairing targets below:

{budget_rows(budget)}

## Held-out results
`spectok eval -t {name} -v {artifact.name}` and `-v griffin-lim` on the tokenizer's held-out speakers
(the same clips as its card); mean and 95 % interval over utterances.

{chr(10).join(rows)}

Pairing targets (tokenized speech, issue 28):
{targets}

Speed and streaming: benchmarks/RESULTS.md, "Decode" (`benchmarks/bench_decode.py`).
"""
    (MODELS / vr.card).write_text(card, encoding="utf-8")
    print(f"wrote {MODELS / vr.card}; paired: {paired}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("names", nargs="*", metavar="NAME",
                    help=f"models to release (default: all of {', '.join(RECIPES)})")
    ap.add_argument("--steps", type=int, help="training steps (default: each recipe's)")
    ap.add_argument("--threads", type=int, default=1, help="training threads (default 1)")
    ap.add_argument("--work", type=Path, default=REPO / "runs" / "release", help="runs and reports")
    ap.add_argument("--force-eval", action="store_true", help="re-export and re-measure")
    ap.add_argument("--vocoder", action="store_true", help="the models' paired vocoders instead (train on the "
                    "decoded mels, continuing from the shipped weights on a new machine; measure; pair if it wins)")
    ap.add_argument("--gan", action="store_true", help="with --vocoder: its adversarial phase (MPD + "
                    "multi-resolution spectrogram discriminator), from the shipped weights, in its own run")
    args = ap.parse_args()
    unknown = sorted(set(args.names) - set(RECIPES))
    if unknown:
        ap.error(f"unknown model(s) {unknown}; choose from {', '.join(RECIPES)}")
    if args.vocoder:
        for name in args.names or list(VOCODERS):
            if name not in VOCODERS:
                ap.error(f"no vocoder recipe for {name}; choose from {', '.join(VOCODERS)}")
            release_vocoder(name, args.steps, args.threads, args.work, args.force_eval, args.gan)
        return
    for name in args.names or list(RECIPES):
        release(name, args.steps, args.threads, args.work, args.force_eval)


if __name__ == "__main__":
    main()
