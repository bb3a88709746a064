"""A long-lived child process for calls into C libraries that can crash: :class:`Isolated`.

The PESQ C library has crashed (SIGSEGV) on a few minutes of audio, and any native metric can run
out of memory. Run in the evaluating process, such a crash ends the whole run. Through
:class:`Isolated` it ends one call: :meth:`Isolated.call` raises :class:`WorkerDied` naming the
signal or exit status, and the next call starts a fresh child. The child is started with ``spawn``
(a clean interpreter, no copy of the parent's threads), once, and serves every call after that;
arguments and results travel pickled through a pipe (two waveforms of a 10 s clip: ~1 MB).
"""

from __future__ import annotations

import multiprocessing
import signal
from collections.abc import Callable
from typing import Any

from spectok.memory import release_free_memory


class WorkerDied(RuntimeError):
    """The child process ended during a call (a crash, or the kernel's out-of-memory killer)."""


class CallFailed(RuntimeError):
    """The function raised in the child; the message is ``Type: message`` of the child's exception."""


def _serve(conn) -> None:
    """The child's loop: receive ``(fn, args)``, send ``(True, result)`` or ``(False, "Type: message")``."""
    while True:
        try:
            fn, args = conn.recv()
        except (EOFError, OSError):
            return
        try:
            reply = (True, fn(*args))
        except Exception as e:  # any failure of the function is the caller's to report
            reply = (False, f"{type(e).__name__}: {e}")
        conn.send(reply)
        del fn, args, reply
        release_free_memory()  # thousands of calls would otherwise fragment the heap upward


class Isolated:
    """Calls module-level functions in one child process, restarted after it dies.

    ``call(fn, *args)`` returns ``fn(*args)`` computed in the child; ``fn`` and ``args`` must be
    picklable (``fn`` by its module and name). Raises :class:`WorkerDied` when the child dies
    during the call and :class:`CallFailed` when ``fn`` raises. ``close()`` stops the child (also
    on garbage collection and at interpreter exit: the child is a daemon).
    """

    def __init__(self) -> None:
        self._proc = None
        self._conn = None

    def _start(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child,), daemon=True, name="spectok-metrics")
        self._proc.start()
        child.close()

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self._proc is None or not self._proc.is_alive():
            self.close()
            self._start()
        try:
            self._conn.send((fn, args))
            ok, value = self._conn.recv()
        except (EOFError, BrokenPipeError, ConnectionResetError):
            self._proc.join(10)
            code = self._proc.exitcode
            self.close()
            how = (f"was killed by signal {signal.Signals(-code).name}" if code is not None and code < 0
                   else f"exited with status {code}")
            raise WorkerDied(f"the metric process {how} (a crash or out of memory in a native library)") from None
        if not ok:
            raise CallFailed(value)
        return value

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        if self._proc is not None:
            if self._proc.is_alive():
                self._proc.terminate()
            self._proc.join(5)
        self._proc = self._conn = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: the daemon child goes with it
            pass
