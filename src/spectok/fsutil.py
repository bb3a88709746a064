"""Atomic file writing: write to a temporary name in the same folder, then rename.

A process killed at any moment leaves either the old file or the new one, never a
half-written file under the final name. With ``durable=True`` (training checkpoints,
release artifacts, ONNX exports: files that cost minutes to hours to remake) the data is
also flushed to disk (``fsync``) before the rename and the folder after it, so a power loss
or a crash of the machine cannot leave an empty or torn file under the final name either.
That costs a few milliseconds per file, so the many small per-item outputs (prepared mels,
token files, audio, plots) are atomic against a killed process only.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

from spectok.errors import SpectokError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, durable: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix); rename it to ``path`` on success.

    On an exception the temporary file is removed and the exception propagates. ``durable``:
    fsync the file before the rename and its folder after (survives a power loss).
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.stem}.tmp{os.getpid()}{final.suffix}")
    try:
        yield tmp
        _ordinary_mode(tmp)
        if durable:
            _fsync(tmp)
        os.replace(tmp, final)
        if durable:
            _fsync(final.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


#: ``atomic_path``'s temporary name: ``.STEM.tmpPID.SUFFIX`` beside the final ``STEM.SUFFIX``
_TEMP_NAME = re.compile(r"^\.(?P<stem>.+)\.tmp(?P<pid>\d+)(?P<suffix>\.[^.]*)?$")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):  # another user's process: alive
        return True
    return True


def remove_stale_temps(folder: str | os.PathLike, names: Collection[str] | None = None) -> list[Path]:
    """Delete the temporary files that :func:`atomic_path` writers killed mid-write left in ``folder``.

    Only files named like its temporaries (``.STEM.tmpPID.SUFFIX``) whose process ``PID`` no longer
    runs are removed (a live writer's are kept); with ``names``, only the temporaries of those final
    file names (``STEM.SUFFIX``). Not recursive. Returns the removed paths.
    """
    folder = Path(folder)
    removed = []
    for p in folder.glob(".*.tmp*") if folder.is_dir() else ():
        m = _TEMP_NAME.match(p.name)
        if not m or (names is not None and m["stem"] + (m["suffix"] or "") not in names) or _alive(int(m["pid"])):
            continue
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
            removed.append(p)
    return removed


def _umask() -> int:
    """The process umask (read from /proc on Linux: setting it to read it would race with threads)."""
    with contextlib.suppress(OSError, ValueError, StopIteration):
        with open("/proc/self/status", encoding="ascii") as f:
            return int(next(line for line in f if line.startswith("Umask:")).split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _ordinary_mode(path: Path) -> None:
    """Give a written file the mode a plain ``open()`` would (0o666 minus the umask): some writers
    (safetensors) create theirs 0600, which a rename would carry to the final name."""
    if path.is_file():
        os.chmod(path, 0o666 & ~_umask())


def _fsync(path: Path) -> None:
    """Flush a file's (or a folder's entries') data to disk; a no-op where the OS refuses (folders on Windows)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def append_jsonl(path: str | os.PathLike, record: dict) -> None:
    """Append one JSON line and fsync it, so a kill leaves at most a torn final line.

    Readers use :func:`read_jsonl`, which ignores a torn (unparsable) last line.
    """
    line = json.dumps(record, sort_keys=True) + "\n"
    with open(path, "a", encoding="utf-8") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """Read a JSON-lines file; a torn last line (from a killed writer) is skipped."""
    p = Path(path)
    if not p.exists():
        return []
    records = []
    lines = p.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                continue  # torn final line from an interrupted append
            raise
    return records


def check_output_file(output: str | os.PathLike, inputs: Collection[str | os.PathLike], suffix: str | None = None
                      ) -> Path:
    """Refuse, before any work, an output *file* that would replace something the command reads.

    Args:
        output: the file the command will write.
        inputs: the files and folders it reads (links are resolved before comparing).
        suffix: the suffix the output must have (e.g. ``".png"``), or None.

    Raises:
        SpectokError: ``output`` is an existing folder, is (or lies inside) an input folder's
            file that is read, is an input file, or has another suffix; one line naming both paths.
    """
    out = Path(output)
    if out.is_dir():
        raise SpectokError(f"{out}: is a folder; -o names the file to write here")
    if suffix is not None and out.suffix.lower() != suffix:
        raise SpectokError(f"{out}: the output must be a {suffix} file")
    target = resolved(out)
    for given in inputs:
        src = resolved(Path(given))
        if target == src:
            raise SpectokError(f"refusing to write {out}: it is the input {given} (choose another -o)")
    return out


def check_output_folder(output: str | os.PathLike, inputs: Collection[str | os.PathLike]) -> Path:
    """Refuse an output *folder* that is an input, lies inside an input folder, or is an existing file.

    Inside an input folder the command would read its own outputs on the next run."""
    out = Path(output)
    if out.exists() and not out.is_dir():
        raise SpectokError(f"{out}: is a file; -o names the folder to write here")
    target = resolved(out)
    for given in inputs:
        src = resolved(Path(given))
        if target == src or (src.is_dir() and src in target.parents):
            raise SpectokError(f"refusing to write into {out}: it is inside the input {given}, whose files "
                               "would be read again (choose -o outside it)")
        if target in src.parents:
            raise SpectokError(f"refusing to write into {out}: it holds the input {given} (choose another -o)")
    return out


def resolved(path: Path) -> Path:
    """``path.resolve()``, or its absolute form when it cannot be resolved (a symbolic link loop: the
    file is then reported as not found when it is read, like any other missing input)."""
    try:
        return path.resolve()
    except (RuntimeError, OSError):  # Python raises RuntimeError on a symbolic link loop
        return path.absolute()
