"""``spectok code-model``: fit the code frequencies that ``encode --code-model`` range-codes against."""

from __future__ import annotations

import argparse
import itertools
import math
from collections.abc import Iterator
from pathlib import Path

from spectok.cli.common import add_command
from spectok.errors import SpectokError


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


def _codes(inputs: list[Path], split: str) -> Iterator[tuple[list[int], str, object]]:
    """``(codebook sizes, tokenizer fingerprint, [K, T'] codes)`` of every utterance in the inputs."""
    from spectok.cli.codec import collect_some
    from spectok.data.token_loader import TokenDataset
    from spectok.tokens import read_tokens

    for root in inputs:
        if (root / "dataset.json").is_file():
            ds = TokenDataset(root, split)
            for item in ds:
                yield ds.card["codebook_sizes"], ds.card["fingerprint"], item["codes"].numpy()
        else:
            for path, _ in collect_some([root], (".sptk",), "token files (.sptk)"):
                tf = read_tokens(path)
                yield list(tf.codebook_sizes), tf.tokenizer_fingerprint, tf.codes


def run(args: argparse.Namespace) -> int:
    from spectok.entropy import CodeModel
    from spectok.fsutil import check_output_file

    check_output_file(args.out, args.inputs, suffix=".json")
    seen: dict[str, object] = {}

    def codes() -> Iterator[object]:
        for sizes, fingerprint, c in _codes(args.inputs, args.split):
            if seen.setdefault("sizes", sizes) != sizes or seen.setdefault("fingerprint", fingerprint) != fingerprint:
                raise SpectokError(f"the inputs mix tokenizers ({seen['fingerprint']} with codebooks "
                                   f"{seen['sizes']}, and {fingerprint} with {sizes}); give one tokenizer's tokens")
            seen["utterances"] = int(seen.get("utterances", 0)) + 1
            yield c

    it = codes()
    first = next(it, None)
    if first is None:
        raise SpectokError(f"no token files or dataset utterances in {', '.join(map(str, args.inputs))}")
    model = CodeModel.fit(itertools.chain([first], it), seen["sizes"],
                          {"tokenizer_fingerprint": seen["fingerprint"],
                           "fitted_on": [str(p) for p in args.inputs], "split": args.split})
    model.info["utterances"] = seen["utterances"]
    model.save(args.out)
    bits = model.info["entropy_bits_per_column"]
    print(f"{args.out}: code model {model.digest} from {seen['utterances']} utterances, "
          f"{model.info['columns']:,} columns; entropy {bits:.1f} bits per column "
          f"(nominal {sum(math.log2(k) for k in seen['sizes']):.1f})")
    return 0

