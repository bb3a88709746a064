"""A prepared folder whose log-mels went through a tokenizer: vocoder training on decoded mels.

A vocoder trained on true log-mels meets something else at inference: the tokenizer's
*decoded* log-mels, smoother than real ones. :func:`prepare_decoded` writes a copy of a
prepared folder in which every mel is replaced by ``tokenizer.decode(tokenizer.encode(mel))``
(whole utterance, cropped to the original frame count), with the same manifest, so the
source audio and its trim offsets still give the real waveform as the target. Any vocoder
trains on it unchanged (``spectok train vocoder --data DECODED``): its input stays a
log-mel of the same front end, so it still composes with every tokenizer of that front end.

``mel.json`` records the tokenizer (class, fingerprint, artifact SHA-256) under
``"decoded_by"``; resuming with another tokenizer is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch

from spectok.data.prepared import open_prepared
from spectok.errors import DataError
from spectok.fsutil import atomic_path, write_json_atomic, write_text_atomic
from spectok.models import resolve_tokenizer
from spectok.tokenizers import load_tokenizer


def prepare_decoded(src: str | os.PathLike, dst: str | os.PathLike, tokenizer: str | os.PathLike,
                    progress: bool | None = None) -> int:
    """Write ``dst``: ``src`` with every log-mel replaced by its tokenized reconstruction.

    Args:
        src: a prepared folder (``spectok prepare``).
        dst: the decoded copy (created; resumed when it exists).
        tokenizer: a tokenizer artifact or released model name; its front end must be ``src``'s.
        progress: tqdm bar (None: when stderr is a terminal).

    Returns:
        The number of mels written by this call (finished ones are skipped).

    Raises:
        MelMismatchError: the tokenizer's front end differs from the prepared one.
        DataError: ``dst`` was decoded by another tokenizer.
    """
    from tqdm import tqdm


    source, out = open_prepared(src), Path(dst)
    path = resolve_tokenizer(tokenizer)
    tok = load_tokenizer(path)
    tok.mel_config.check_compatible(source.mel_config, what=f"tokenizer {path} and prepared set {source.root}")
    by = {"class": type(tok).__name__, "fingerprint": tok.fingerprint(),
          "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "source": str(source.root.resolve())}
    meta_file = out / "mel.json"
    meta = json.loads(meta_file.read_text(encoding="utf-8")) if meta_file.is_file() else None
    if meta is not None and (meta.get("decoded_by") or {}).get("sha256") != by["sha256"]:
        raise DataError(f"{out}: decoded by another tokenizer ({meta.get('decoded_by')}); choose another folder")
    (out / "mels").mkdir(parents=True, exist_ok=True)
    if meta is None:
        src_meta = json.loads((source.root / "mel.json").read_text(encoding="utf-8"))
        write_json_atomic(out / "mel.json", {**src_meta, "decoded_by": by})
    rows = list(source.records)
    done = 0
    with torch.inference_mode():
        for row in tqdm(rows, unit="file", desc="decode", disable=None if progress is None else not progress):
            target = out / "mels" / f"{row['id']}.npy"
            if target.is_file():
                continue
            mel = source.load_mel(row["id"])
            rec = tok.decode(tok.encode(torch.from_numpy(np.asarray(mel, dtype=np.float32))[None]))
            rec = rec[0, :, : mel.shape[-1]].numpy().astype(mel.dtype)
            with atomic_path(target) as tmp, open(tmp, "wb") as f:
                np.save(f, rec, allow_pickle=False)
            done += 1
    write_text_atomic(out / "manifest.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    return done
