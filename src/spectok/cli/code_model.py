"""``spectok code-model``: fit the code frequencies that ``encode --code-model`` range-codes against."""

from __future__ import annotations

import argparse
import itertools
import math
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from spectok.cli.common import add_command
from spectok.errors import SpectokError

if TYPE_CHECKING:  # numpy stays out of `spectok --help`'s start-up
    import numpy as np


def register(sub) -> None:
    p = add_command(sub, "code-model", "Count a tokenizer's codes over token files or a token dataset and write "
                    "the code frequencies (JSON) that 'spectok encode --code-model' range-codes against, so files "
                    "approach the entropy bound. Fit it on training speech, not on the clips you measure.",
                    "spectok code-model runs/tokens --split train -o my-tokenizer.codes.json\n"
                    "  spectok encode clips/ -t my-tokenizer.safetensors --code-model my-tokenizer.codes.json -o tok/",
                    run)
    p.add_argument("inputs", nargs="+", type=Path, metavar="TOKENS",
                   help=".sptk files, folders of them, or token dataset folders (from 'spectok tokenize')")
    p.add_argument("--split", default="train", choices=("train", "valid", "test"),
                   help="the split read from a token dataset (default: train)")
    p.add_argument("-o", "--out", required=True, type=Path, help="the code model to write (.json)")


def _codes(inputs: list[Path], split: str) -> Iterator[tuple[list[int], str, np.ndarray]]:
    """``(codebook sizes, tokenizer fingerprint, [K, T'] codes)`` of every utterance in the inputs."""
    from spectok.cli.codec import collect_some
    from spectok.data.token_loader import TokenDataset
    from spectok.tokens import read_tokens

    for root in inputs:
        if (root / "dataset.json").is_file():
            ds = TokenDataset(root, split)
            for item in ds:
                yield list(ds.card["codebook_sizes"]), str(ds.card["fingerprint"]), item["codes"].numpy()
        else:
            for path, _ in collect_some([root], (".sptk",), "token files (.sptk)"):
                tf = read_tokens(path)
                yield list(tf.codebook_sizes), tf.tokenizer_fingerprint, tf.codes


def run(args: argparse.Namespace) -> int:
    from spectok.entropy import CodeModel
    from spectok.fsutil import check_output_file

    check_output_file(args.out, args.inputs, suffix=".json")
    items = _codes(args.inputs, args.split)
    head = next(items, None)
    if head is None:
        raise SpectokError(f"no token files or dataset utterances in {', '.join(map(str, args.inputs))}")
    sizes, fingerprint, _ = head
    count = 0

    def checked() -> Iterator[np.ndarray]:
        nonlocal count
        for other_sizes, other, codes in itertools.chain([head], items):
            if other_sizes != sizes or other != fingerprint:
                raise SpectokError(f"the inputs mix tokenizers ({fingerprint} with codebooks {sizes}, and {other} "
                                   f"with {other_sizes}); give one tokenizer's tokens")
            count += 1
            yield codes

    model = CodeModel.fit(checked(), sizes, {"tokenizer_fingerprint": fingerprint,
                                             "fitted_on": [str(p) for p in args.inputs], "split": args.split})
    model.info["utterances"] = count
    model.save(args.out)
    print(f"{args.out}: code model {model.digest} from {count} utterances, {model.info['columns']:,} columns; "
          f"entropy {model.info['entropy_bits_per_column']:.1f} bits per column "
          f"(nominal {sum(math.log2(k) for k in sizes):.1f})")
    return 0
