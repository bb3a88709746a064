"""How much can a language model squeeze out of speech tokens? A worked example of token datasets.

1. ``spectok tokenize`` the LibriSpeech and LJSpeech recordings in ../shared/data (or ``--corpus
   NAME=ROOT`` of your own) with a tokenizer, into token datasets under ``--work``;
2. train a tiny causal transformer on the **delayed** layout of the codes (MusicGen's: row ``k``
   shifted by ``k`` steps, one step predicts all K codebooks of a column, codebook ``k`` after the
   codebooks ``< k`` of the same column) for a fixed budget of CPU time;
3. report its cross-entropy on held-out utterances in **bits per second** next to the tokens' nominal
   rate, an order-0 code model fitted on the training tokens (what ``spectok encode --entropy`` codes
   at) and the held-out tokens' own order-0 entropy (the eval report's "entropy bound").

The corpora are split by utterance (a hash): 80 % train, 10 % valid (picks the step: the model is
evaluated every 100 steps and the best kept, early stopping), 10 % test (the figure reported). Each
head's bias starts at the log of its codebook's training frequencies, so the model starts from the
order-0 rate and what it gains below it comes from context.

Bits per second = (bits per column, summed over the K codebooks) x columns per second. The gap
between the order-0 figures and the language model's is the structure in time a model of the tokens
can use: the lower a tokenizer's LM rate at equal nominal rate, the easier its tokens are to model.

Usage::

    python examples/token_lm.py -t default --cpu-minutes 4
    python examples/token_lm.py -t runs/fsq.safetensors --name speech16k-fsq --cpu-minutes 4

Writes ``WORK/NAME/results.json`` and prints one table row. One torch thread by default.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from spectok.data.token_loader import TokenDataset, delay_codes, read_card, undelay_codes
from spectok.entropy import CodeModel

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
CORPORA = {"librispeech": DATA / "LibriSpeech", "ljspeech": DATA / "LJSpeech-1.1"}


class DelayedTokenLM(nn.Module):
    """A causal transformer over delayed codes ``[B, K, S]``: the input at step ``s`` is the sum of the
    K codebooks' embeddings at step ``s - 1`` (a learned start vector at step 0) plus a position; K heads
    give the logits of each codebook at step ``s``.

    Args:
        codebook_sizes: K sizes; id ``size`` of row ``k`` is its padding (the delay's gaps).
        dim, layers, heads: the transformer's width, depth and attention heads.
        context: the most steps a window holds.
    """

    def __init__(self, codebook_sizes: list[int], dim: int = 128, layers: int = 3, heads: int = 4,
                 context: int = 128) -> None:
        super().__init__()
        self.sizes = list(codebook_sizes)
        self.embed = nn.ModuleList(nn.Embedding(k + 1, dim) for k in self.sizes)
        self.start = nn.Parameter(torch.zeros(dim))
        self.position = nn.Parameter(torch.randn(context, dim) * 0.02)
        block = nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout=0.1, batch_first=True, norm_first=True)
        self.body = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.heads = nn.ModuleList(nn.Linear(dim, k) for k in self.sizes)

    def forward(self, delayed: torch.Tensor) -> list[torch.Tensor]:
        """``[B, K, S]`` ids -> K logits ``[B, S, size_k]``, step ``s`` predicted from steps ``< s``."""
        b, _, s = delayed.shape
        x = sum(emb(delayed[:, k]) for k, emb in enumerate(self.embed))  # [B, S, D]
        x = torch.cat([self.start.expand(b, 1, -1), x[:, :-1]], dim=1) + self.position[:s]
        mask = nn.Transformer.generate_square_subsequent_mask(s, device=delayed.device)
        h = self.norm(self.body(x, mask=mask, is_causal=True))
        return [head(h) for head in self.heads]


def bits(model: DelayedTokenLM, delayed: torch.Tensor) -> torch.Tensor:
    """Summed cross-entropy in bits over the real tokens of ``[B, K, S]`` (gaps hold each row's pad id)."""
    total = delayed.new_zeros((), dtype=torch.float32)
    for k, logits in enumerate(model(delayed)):
        target = delayed[:, k].masked_fill(delayed[:, k] == model.sizes[k], -100)
        total = total + F.cross_entropy(logits.transpose(1, 2), target, ignore_index=-100, reduction="sum")
    return total / math.log(2)


def tokenize(tokenizer: str, work: Path, corpora: dict[str, Path]) -> list[Path]:
    """Token datasets of each corpus (``spectok tokenize``; resumed, so a second run reuses them)."""
    out = []
    for corpus, root in corpora.items():
        if not root.is_dir():
            sys.exit(f"{root}: not found (this example reads ../shared/data; give --corpus NAME=ROOT)")
        dest = work / corpus
        subprocess.run([sys.executable, "-m", "spectok", "tokenize", corpus, str(root), str(dest), "-t", tokenizer,
                        "--valid-ratio", "0.1", "--test-ratio", "0.1", "--threads", "1"], check=True)
        out.append(dest)
    return out


def load(datasets: list[Path], split: str, pad: list[int]) -> list[torch.Tensor]:
    """Every utterance of ``split`` as delayed codes ``[K, T + K - 1]`` (row ``k``'s gaps = ``pad[k]``)."""
    out = []
    for root in datasets:
        for item in TokenDataset(root, split):
            d = delay_codes(item["codes"], -1)
            out.append(torch.where(d < 0, torch.as_tensor(pad)[:, None], d))
    return out


def windows(utterances: list[torch.Tensor], length: int) -> list[torch.Tensor]:
    """Each utterance cut into consecutive windows of at most ``length`` steps (for validation)."""
    return [u[:, i:i + length] for u in utterances for i in range(0, u.shape[1], length)]


def batch_of(items: list[torch.Tensor], pad: list[int]) -> torch.Tensor:
    s = max(x.shape[1] for x in items)
    out = torch.as_tensor(pad)[None, :, None].repeat(len(items), 1, s)
    for i, x in enumerate(items):
        out[i, :, : x.shape[1]] = x
    return out


@torch.no_grad()
def validate(model: DelayedTokenLM, valid: list[torch.Tensor], pad: list[int], batch: int) -> float:
    model.eval()
    total = sum(float(bits(model, batch_of(valid[i:i + batch], pad))) for i in range(0, len(valid), batch))
    model.train()
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-t", "--tokenizer", default="default", help="a released name or a tokenizer artifact")
    ap.add_argument("--name", help="the row's name (default: the tokenizer's)")
    ap.add_argument("--corpus", action="append", metavar="NAME=ROOT",
                    help="a corpus layout and folder (default: librispeech and ljspeech in ../shared/data)")
    ap.add_argument("--work", type=Path, default=REPO / "runs" / "token-lm", help="datasets and results")
    ap.add_argument("--cpu-minutes", type=float, default=4.0, help="training budget in CPU-minutes (default 4)")
    ap.add_argument("--context", type=int, default=128, help="steps per window (default 128: ~5 s at 25 columns/s)")
    ap.add_argument("--dim", type=int, default=128, help="transformer width (default 128)")
    ap.add_argument("--layers", type=int, default=3, help="transformer layers (default 3)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    name = args.name or Path(args.tokenizer).stem
    corpora = dict(c.split("=", 1) for c in args.corpus) if args.corpus else CORPORA
    datasets = tokenize(args.tokenizer, args.work / name, {k: Path(v) for k, v in corpora.items()})
    card = read_card(datasets[0])
    sizes, frame_rate = card["codebook_sizes"], card["frame_rate"]
    pad = list(sizes)
    train, valid_utts, test_utts = (load(datasets, split, pad) for split in ("train", "valid", "test"))
    valid, test = windows(valid_utts, args.context), windows(test_utts, args.context)
    k = len(sizes)
    # each utterance of T columns holds K * T real tokens; bits per column sums the K codebooks
    train_columns, valid_columns, test_columns = (sum(u.shape[1] - k + 1 for u in utts)
                                                  for utts in (train, valid_utts, test_utts))

    def codes(utts: list[torch.Tensor]) -> list[np.ndarray]:  # the delayed layout back to [K, T']
        return [undelay_codes(u).numpy() for u in utts]

    unigram = CodeModel.fit(codes(train), sizes)
    order0_model = sum(unigram.bits_per_column(c) * c.shape[1] for c in codes(test_utts)) / test_columns
    order0_test = CodeModel.fit(codes(test_utts), sizes).info["entropy_bits_per_column"]

    model = DelayedTokenLM(sizes, dim=args.dim, layers=args.layers, context=args.context)
    with torch.no_grad():  # start from the order-0 model: each head's bias = log training frequency
        for head, freqs in zip(model.heads, unigram.frequencies):
            head.bias.copy_(torch.log(torch.as_tensor(freqs, dtype=torch.float32) / freqs.sum()))
    best = (validate(model, valid, pad, args.batch) / valid_columns, 0, copy.deepcopy(model.state_dict()))
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    budget, used, step, curve = args.cpu_minutes * 60, 0.0, 0, []  # used: training CPU-s (validation not counted)
    weights = np.array([u.shape[1] for u in train], dtype=np.float64)
    while used < budget:
        cpu0 = time.process_time()
        frac = used / budget
        for group in opt.param_groups:  # linear warm-up over 5 % of the budget, then cosine to 10 %
            group["lr"] = args.lr * (frac / 0.05 if frac < 0.05 else 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
        picks = rng.choice(len(train), size=args.batch, p=weights / weights.sum())
        crops = []
        for i in picks:
            u = train[i]
            start = int(rng.integers(0, max(u.shape[1] - args.context, 0) + 1))
            crops.append(u[:, start:start + args.context])
        batch = batch_of(crops, pad)
        real = int((batch != torch.as_tensor(pad)[None, :, None]).sum())
        loss = bits(model, batch) / real
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        used += time.process_time() - cpu0
        if step % 100 == 0 or used >= budget:
            per_column = validate(model, valid, pad, args.batch) / valid_columns
            curve.append({"step": step, "cpu_s": round(used, 1), "valid_bits_per_second": per_column * frame_rate})
            if per_column < best[0]:
                best = (per_column, step, copy.deepcopy(model.state_dict()))
            print(f"step {step}  cpu {curve[-1]['cpu_s']:.0f} s  train {loss.item() * k:.2f} bits/column  "
                  f"valid {curve[-1]['valid_bits_per_second']:.0f} bit/s", flush=True)
    model.load_state_dict(best[2])
    lm = validate(model, test, pad, args.batch) / test_columns
    result = {"name": name, "tokenizer": args.tokenizer, "codebooks": sizes, "frame_rate": frame_rate,
              "nominal_bits_per_second": frame_rate * sum(math.log2(s) for s in sizes),
              "order0_code_model_bits_per_second": order0_model * frame_rate,
              "order0_entropy_of_test_bits_per_second": order0_test * frame_rate,
              "lm_bits_per_second": lm * frame_rate, "best_step": best[1], "train_columns": train_columns,
              "valid_columns": valid_columns, "test_columns": test_columns, "test_utterances": len(test_utts),
              "steps": step, "cpu_minutes": args.cpu_minutes,
              "parameters": sum(p.numel() for p in model.parameters()), "context_steps": args.context,
              "threads": args.threads, "load_average": os.getloadavg()[0], "curve": curve}
    (args.work / name / "results.json").write_text(json.dumps(result, indent=1))
    r = result
    print("| tokens | nominal bit/s | order-0 code model | order-0 entropy of the test set | LM (delayed), best "
          "step | LM / nominal |")
    print(f"| {name} | {r['nominal_bits_per_second']:.0f} | {r['order0_code_model_bits_per_second']:.0f} | "
          f"{r['order0_entropy_of_test_bits_per_second']:.0f} | {r['lm_bits_per_second']:.0f} (step {best[1]}) | "
          f"{r['lm_bits_per_second'] / r['nominal_bits_per_second']:.2f} |")


if __name__ == "__main__":
    main()
