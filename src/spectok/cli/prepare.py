"""``spectok prepare``: compute the log-mels of a corpus into a prepared folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

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


def add_corpus_arguments(p: argparse.ArgumentParser, out_help: str, prepared: bool = False) -> None:
    """CORPUS ROOT OUT: a corpus layout (or, with ``prepared``, a prepared folder) and the output."""
    from spectok.data.corpora import CORPORA

    layouts = sorted(n for n in CORPORA if n != "cifar10") + (["prepared"] if prepared else [])
    p.add_argument("corpus", metavar="CORPUS", choices=layouts, help="corpus layout: %(choices)s"
                   + (" (prepared: a folder from 'spectok prepare', its ids, speakers, splits and texts)"
                      if prepared else ""))
    p.add_argument("root", metavar="ROOT", help="the corpus folder")
    p.add_argument("out", metavar="OUT", help=out_help)


def add_selection_arguments(p: argparse.ArgumentParser, resume_note: str) -> None:
    """The hash split's ratios and the deterministic speaker subset."""
    p.add_argument("--valid-ratio", type=float, default=0.05, help="valid fraction of the hash split")
    p.add_argument("--test-ratio", type=float, default=0.05, help="test fraction of the hash split")
    g = p.add_argument_group(f"speaker subset (deterministic; {resume_note})")
    g.add_argument("--speakers", type=lambda t: [x.strip() for x in t.split(",") if x.strip()], metavar="A,B,...",
                   help="only these speakers (e.g. HJK,BWC for L2-ARCTIC)")
    g.add_argument("--num-speakers", type=int, metavar="N", help="N speakers, chosen by a hash with --seed")
    g.add_argument("--max-per-speaker", type=int, metavar="M", help="at most M utterances per speaker")
    g.add_argument("--seed", type=int, default=0, help="seed of the speaker and utterance choice (default 0)")


def corpus_items(args: argparse.Namespace, command: str):
    """The items that CORPUS ROOT and the selection options name, and the selection (None: all)."""
    from spectok.data.corpora import open_corpus, select_items
    from spectok.errors import DataError

    if args.corpus == "prepared":
        from spectok.data.corpora import CorpusItem
        from spectok.data.prepared import open_prepared

        corpus = [CorpusItem(r["id"], Path(r["path"]), r["speaker"], r["split"], r.get("text"))
                  for r in open_prepared(args.root).records]
    else:
        corpus = open_corpus(args.corpus, args.root, valid_ratio=args.valid_ratio, test_ratio=args.test_ratio)
    if args.speakers is not None and args.num_speakers is not None:
        raise DataError("give --speakers or --num-speakers, not both")
    if args.speakers is None and args.num_speakers is None and args.max_per_speaker is None:
        return corpus, None
    selection = {"speakers": args.speakers, "num_speakers": args.num_speakers,
                 "max_per_speaker": args.max_per_speaker, "seed": args.seed}
    corpus = select_items(list(corpus), args.speakers, args.num_speakers, args.max_per_speaker, args.seed)
    print(f"spectok {command}: selected {len(corpus)} items of {len({it.speaker for it in corpus})} speakers",
          file=sys.stderr)
    return corpus, selection


def register(sub) -> None:
    p = add_command(sub, "prepare", "Compute the log-mels of a corpus into OUT (mels/, manifest.jsonl, mel.json).",
                    "spectok prepare librispeech LibriSpeech/ runs/speech -j 2\n"
                    "  spectok train tokenizer --config default --data runs/speech --out runs/tok\n"
                    "  spectok prepare ljspeech ../shared/data/LJSpeech-1.1 runs/lj --mel hifigan-22k -j 2",
                    run)
    add_corpus_arguments(p, "the prepared folder (resumed when it exists)")
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
    add_selection_arguments(p, "recorded in mel.json, a resumed run must match")


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
    from spectok.fsutil import check_output_folder

    check_output_folder(args.out, [args.src])
    n = prepare_decoded(args.src, args.out, args.tokenizer)
    print(f"{args.out}: {n} mels decoded by {args.tokenizer}")
    return 0


def run(args: argparse.Namespace) -> int:
    from spectok.data.prepare import prepare
    from spectok.fsutil import check_output_folder

    check_output_folder(args.out, [args.root])
    corpus, selection = corpus_items(args, "prepare")
    report = prepare(corpus, args.out, mel=args.mel, jobs=args.jobs, trim_silence_db=args.trim_silence,
                     shard=args.shard, dtype=args.dtype, selection=selection)
    print(report.summary())
    for row in report.failures[:5]:
        print(f"  failed: {row['error']}", file=sys.stderr)
    if len(report.failures) > 5:
        print(f"  ... and {len(report.failures) - 5} more (see the errors file in {args.out})", file=sys.stderr)
    if not report.ok:
        print(f"spectok prepare: error: nothing succeeded ({report.failed} files failed)", file=sys.stderr)
        return 1
    return 0
