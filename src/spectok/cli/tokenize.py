"""``spectok tokenize``: a whole corpus into a token dataset (Parquet files with transcripts)."""

from __future__ import annotations

import argparse
import sys

from spectok.cli.common import add_command, add_tokenizer_option
from spectok.cli.prepare import _shard, add_corpus_arguments, add_selection_arguments, corpus_items


def register(sub) -> None:
    p = add_command(sub, "tokenize", "Encode a whole corpus into a token dataset: Parquet files of codes with id, "
                    "speaker, split and transcript, plus dataset.json (readable by pyarrow, pandas and Hugging Face "
                    "datasets; spectok.TokenDataset streams it for training).",
                    "spectok tokenize librispeech ../shared/data/LibriSpeech runs/tokens -t default -j 2\n"
                    "  spectok tokenize ljspeech LJSpeech-1.1 runs/lj-tokens --shard 0/4      # machine 0 of 4\n"
                    "  torchrun --nproc_per_node 4 -m spectok tokenize folder clips/ runs/tok  # shard from RANK",
                    run)
    add_corpus_arguments(p, "the dataset folder (resumed when it exists; shards of other runs may share it)",
                         prepared=True)
    add_tokenizer_option(p)
    p.add_argument("-j", "--jobs", type=int, default=1, metavar="N",
                   help="worker processes, one torch thread each (default: 1, this process)")
    p.add_argument("--shard", type=_shard, metavar="i/n",
                   help="this machine's shard of n (0-based; a hash of the id); default: from the launcher "
                   "(torchrun's RANK/WORLD_SIZE, a Slurm array's task id and count), else 0/1")
    p.add_argument("--part-size", type=int, default=64, metavar="N",
                   help="utterances per Parquet file, the unit of resume (default: %(default)s)")
    add_selection_arguments(p, "the same selection on every shard")


def run(args: argparse.Namespace) -> int:
    from spectok.data.token_shards import launcher_shard, tokenize_corpus
    from spectok.fsutil import check_output_folder

    check_output_folder(args.out, [args.root])
    items, _ = corpus_items(args, "tokenize")
    shard = args.shard or launcher_shard()
    report = tokenize_corpus(items, args.out, args.tokenizer, corpus=args.corpus, shard=shard, jobs=args.jobs,
                             part_size=args.part_size)
    print(report.summary())
    for row in report.failures[:5]:
        print(f"  failed: {row['error']}", file=sys.stderr)
    if len(report.failures) > 5:
        print(f"  ... and {len(report.failures) - 5} more (see {args.out}/failures/)", file=sys.stderr)
    if report.failed and not report.utterances and not report.parts_skipped:
        print(f"spectok tokenize: error: nothing succeeded ({report.failed} files failed)", file=sys.stderr)
        return 1
    return 0
