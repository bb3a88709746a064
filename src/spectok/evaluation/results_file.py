"""The per-utterance results of ``spectok eval`` (``utterances.jsonl``), so a killed run resumes.

The first line is ``{"identity": ...}`` (tokenizer, vocoder, options); a later run with the same
identity keeps the records already measured and measures only the rest.
"""

from __future__ import annotations

import json
from pathlib import Path

from spectok.fsutil import write_text_atomic


def read_results(path: Path, identity: dict) -> dict[str, dict]:
    """``{"id\\tpath": record}`` of an earlier run's JSONL with the same identity (else empty); a last
    line cut by a kill is ignored."""
    if not path.is_file():
        return {}
    lines = path.read_text(encoding="utf-8").splitlines()
    try:
        if not lines or json.loads(lines[0]) != {"identity": identity}:
            return {}
    except json.JSONDecodeError:
        return {}
    out = {}
    for line in lines[1:]:
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        out[f"{rec['id']}\t{rec['path']}"] = rec
    return out


class ResultsFile:
    """The per-utterance JSONL, rewritten once with the records kept, then appended and flushed per record."""

    def __init__(self, path: Path, identity: dict, kept: dict[str, dict]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, "".join(json.dumps(x) + "\n" for x in [{"identity": identity}, *kept.values()]))
        self.f = open(path, "a", encoding="utf-8")

    def write(self, record: dict) -> None:
        self.f.write(json.dumps(record) + "\n")
        self.f.flush()

    def close(self) -> None:
        self.f.close()
