"""``spectok prepare``: compute the log-mels of a corpus into a prepared folder."""

from __future__ import annotations

import argparse
import sys

from spectok.cli.common import add_command


def _shard(text: str) -> tuple[int, int]:
    """Parse ``i/n`` (0-based shard index i of n)."""
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard takes i/n, e.g. 0/4, not {text!r}") from None
    if not 0 <= i < n:
        raise argparse.ArgumentTypeError(f"--shard {text}: need 0 <= i < n")
    return i, n


def register(sub) -> None:
    from spectok.data.corpora import CORPORA

    p = add_command(sub, "prepare", "Compute the log-mels of a corpus into OUT (mels/, manifest.jsonl, mel.json).",
                    "spectok prepare librispeech LibriSpeech/ runs/speech -j 2\n"
                    "  spectok train tokenizer --config default --data runs/speech --out runs/tok\n"
                    "  spectok prepare ljspeech ../shared/data/LJSpeech-1.1 runs/lj --mel hifigan-22k -j 2",
                    run)
    p.add_argument("corpus", metavar="CORPUS", choices=sorted(n for n in CORPORA if n != "cifar10"),
                   help="corpus layout: %(choices)s")
    p.add_argument("root", metavar="ROOT", help="the corpus folder")
    p.add_argument("out", metavar="OUT", help="the prepared folder (resumed when it exists)")
    p.add_argument("--mel", default="speech-16k", metavar="PRESET|FILE",
                   help="mel preset name or YAML file (default: %(default)s, the front end of the 'default' preset "
                   "and model; hifigan-22k for the 22 kHz HiFi-GAN / DCTTS setting)")
    p.add_argument("-j", "--jobs", type=int, default=1, metavar="N", help="worker processes (default: 1)")
    p.add_argument("--trim-silence", type=float, default=None, metavar="DB",
                   help="trim leading/trailing audio more than DB dB below the loudest frame")
    p.add_argument("--shard", type=_shard, default=(0, 1), metavar="i/n",
                   help="prepare only shard i of n (0-based; a hash of the id), e.g. 0/4")
    p.add_argument("--dtype", choices=("float16", "float32"), default="float16",
                   help="storage dtype of the mels (default: %(default)s)")
    p.add_argument("--valid-ratio", type=float, default=0.05, help="valid fraction of the hash split")
    p.add_argument("--test-ratio", type=float, default=0.05, help="test fraction of the hash split")


    from spectok.cli.common import add_tokenizer_option

    q = add_command(sub, "prepare-decoded", "Copy a prepared folder with every log-mel replaced by its tokenized "
                    "reconstruction (decode(encode(mel))): training data for a vocoder that knows the tokens.",
                    "spectok prepare-decoded runs/speech runs/speech-decoded -t default\n"
                    "  spectok train vocoder --config istft --set model.mel=speech-16k --data runs/speech-decoded "
                    "--out runs/voc", _decoded)
    q.add_argument("src", metavar="PREPARED", help="a prepared folder (spectok prepare)")
    q.add_argument("out", metavar="OUT", help="the decoded copy (resumed when it exists)")
    add_tokenizer_option(q)


def _decoded(args: argparse.Namespace) -> int:
    from spectok.data.decoded import prepare_decoded

    n = prepare_decoded(args.src, args.out, args.tokenizer)
    print(f"{args.out}: {n} mels decoded by {args.tokenizer}")
    return 0


def run(args: argparse.Namespace) -> int:
    from spectok.data.corpora import open_corpus
    from spectok.data.features import prepare

    corpus = open_corpus(args.corpus, args.root, valid_ratio=args.valid_ratio, test_ratio=args.test_ratio)
    report = prepare(corpus, args.out, mel=args.mel, jobs=args.jobs, trim_silence_db=args.trim_silence,
                     shard=args.shard, dtype=args.dtype)
    print(report.summary())
    for row in report.failures[:5]:
        print(f"  failed: {row['error']}", file=sys.stderr)
    if len(report.failures) > 5:
        print(f"  ... and {len(report.failures) - 5} more (see the errors file in {args.out})", file=sys.stderr)
    if not report.ok:
        print(f"spectok prepare: error: nothing succeeded ({report.failed} files failed)", file=sys.stderr)
        return 1
    return 0
