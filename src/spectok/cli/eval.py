"""``spectok eval``: one offline report of quality per bit, codebook health and speed.

DATA is a prepared folder (its test split, else valid, else all items), a folder of audio
(searched recursively) or audio files; see :mod:`spectok.evaluation.sources`. Unreadable
files are listed in the report and in ``failures.tsv`` and skipped. The exit status is 1 when any
input could not be evaluated (the others are, and are reported), 0 when all were.

With an image tokenizer, DATA is ``cifar10 ROOT`` (the CIFAR-10 batches folder) and the report
is :mod:`spectok.evaluation.image`'s: MSE, PSNR, codebook use, bits per image, a grid of
originals over reconstructions, and the training curves of ``--run``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from spectok.cli.common import Runner, add_command, add_tokenizer_option, add_vocoder_option, load_models


def register(sub) -> None:
    p = add_command(sub, "eval", "Measure a tokenizer (+ vocoder) on speech, or an image tokenizer on CIFAR-10: "
                    "report.json, report.md, report.html.",
                    "spectok eval -t default -v griffin-lim data/prepared/lj -o reports/lj --limit 50\n"
                    "  spectok eval -t cifar.safetensors cifar10 cifar-10-batches-py -o rep --run runs/cifar",
                    _eval)
    p.add_argument("data", nargs="+", type=Path, metavar="DATA",
                   help="prepared folders (test split, else valid, else all), folders of audio, or audio files; "
                        "for an image tokenizer: cifar10 ROOT")
    add_tokenizer_option(p)
    add_vocoder_option(p)
    p.add_argument("-o", "--out", required=True, type=Path, help="report folder (created)")
    p.add_argument("--limit", type=int, default=None,
                   help="evaluate only the first N items found (sorted by id; unreadable files count)")
    p.add_argument("--device", default="cpu", help="torch device for the models (default cpu)")
    p.add_argument("--no-dnsmos", action="store_true",
                   help="skip DNSMOS even when speechmos is installed (it is skipped anyway when it is not)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument("--split", default="test", choices=("test", "valid", "train"),
                   help="image tokenizers: the CIFAR-10 split to score (default test, 10,000 images)")
    p.add_argument("--run", type=Path, default=None,
                   help="image tokenizers: the training run folder whose metrics.jsonl gives the loss curves")


def _eval(args: argparse.Namespace) -> int:
    from spectok.evaluation.html import write_report
    from spectok.evaluation.runner import describe_model, evaluate
    from spectok.evaluation.sources import collect

    tok, _ = load_models(args, with_vocoder=False)
    if tok.mel_config is None:
        return _eval_images(args, tok)
    from spectok.fsutil import check_output_folder

    check_output_folder(args.out, args.data)
    collection = collect(args.data, limit=args.limit)
    tok, voc = load_models(args)
    from spectok.fsutil import remove_stale_temps

    for folder in (args.out, args.out / "audio", args.out / "plots"):  # what a killed earlier run left
        remove_stale_temps(folder)
    from spectok.models import resolve_tokenizer
    from spectok.vocoders.loading import resolve_vocoder

    result = evaluate(tok, voc, collection, args.out,
                      tokenizer_info=describe_model(tok, resolve_tokenizer(args.tokenizer)),
                      vocoder_info=describe_model(voc, resolve_vocoder(args.vocoder, tok)), device=args.device,
                      dnsmos=False if args.no_dnsmos else None, progress=not args.quiet)
    options = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k not in ("func", "data")}
    options["data"] = [str(d) for d in args.data]
    paths = write_report(result, args.out, options=options)
    runner = Runner("eval", 0, quiet=True, out=args.out)
    for s in result.skipped:
        runner.record(s["path"] or s["id"], s["reason"])
        print(f"spectok eval: skipped {s['path'] or s['id']}: {s['reason']}", file=sys.stderr)
    n = len(result.utterances)
    runner.done = n
    agg = result.aggregate
    line = [f"spectok eval: {n} utterance(s), {len(result.skipped)} skipped"]
    for group in ("tokenized", "copy"):
        for key in ("pesq", "stoi"):
            mean = agg.get(group, {}).get(key, {}).get("mean")
            if mean is not None:
                line.append(f"{key.upper()} {group} {mean:.3f}")
    line.append(f"{result.tokens['nominal_bits_per_second']:.0f} bit/s nominal, "
                f"{result.tokens['entropy_bits_per_second']:.0f} entropy bound")
    print("; ".join(line), file=sys.stderr)
    print(f"spectok eval: report in {paths['html']} (+ report.json, report.md)", file=sys.stderr)
    return runner.finish()  # the exit-code policy: any input that failed makes it 1, with failures.tsv


def _eval_images(args: argparse.Namespace, tok) -> int:
    from spectok.errors import SpectokError
    from spectok.evaluation.image import evaluate_images
    from spectok.evaluation.runner import describe_model
    from spectok.models import resolve_tokenizer

    if len(args.data) != 2 or str(args.data[0]) != "cifar10":
        raise SpectokError(f"{args.tokenizer} is an image tokenizer: give DATA as 'cifar10 ROOT' "
                           f"(the CIFAR-10 batches folder), not {' '.join(map(str, args.data))}")
    report = evaluate_images(tok, args.data[1], args.out, describe_model(tok, resolve_tokenizer(args.tokenizer)),
                             split=args.split, limit=args.limit, run_dir=args.run)
    s = report["scores"]
    print(f"spectok eval: {s['images']} images; MSE {s['mse']['mean']:.4f}; PSNR {s['psnr_db']['mean']:.2f} dB; "
          f"{s['codebook']['used_fraction'] * 100:.1f} % of {s['codebook_size']} codes used; "
          f"{s['bits_per_image']:.0f} bits per image", file=sys.stderr)
    print(f"spectok eval: report in {Path(args.out) / 'report.html'} (+ report.json, report.md, grid.png)",
          file=sys.stderr)
    return 0
