"""Validation in a helper process, for a process that validates and recommends one patient after another.

A helper thread does not overlap validation with reasoning here: pyoxigraph releases the GIL for every
row and triple it hands back (and pyrudof for each call), so two busy threads pass the GIL back and forth
hundreds of times a patient and each waits for the other. Measured on 2 cores: a thread saved ~0 ms of a
~24 ms patient, a helper process ~5 ms. So a process that asks for its *second* validated recommendation
(a server, a notebook, a loop over patients: not a one-shot ``myeloma-kg recommend``, which would pay the
start and gain nothing) starts one helper process in the background. Until that process is warm, and for
documents it cannot take, validation stays on the helper thread (:mod:`myeloma_kg.concurrency`).

The helper is a plain ``python -m myeloma_kg.offload`` child talking over a socket pair (not
``multiprocessing``, whose spawn start re-imports the caller's main script). It gets the document as
written (the mapping, its source and position) and returns the :class:`~myeloma_kg.validate.ValidationReport`
of :func:`~myeloma_kg.validate.validate` on the same conversion, so the report is the one the calling process
would have made (the tests compare them). It exits when the calling process closes its end or exits.

``MYELOMA_KG_VALIDATION_PROCESS=0`` turns the helper off (also off with ``MYELOMA_KG_THREADS=1``, on a
single core, and on platforms without ``pass_fds``).
"""

from __future__ import annotations

import atexit
import os
import pickle
import socket
import subprocess
import sys
import threading
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .concurrency import thread_count

if TYPE_CHECKING:  # pragma: no cover
    from .patient import PatientDocument
    from .validate import ValidationReport

def _dumps(value: Any) -> bytes:
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


_loads = pickle.loads

#: validated recommendations a process asks for before it starts the helper (the first shows nothing yet)
START_AFTER_CALLS = 1
#: seconds to wait for one report before giving the helper up (a patient takes milliseconds)
REPLY_TIMEOUT_S = 120.0
#: helpers started per process at most (one at a time; a new one only after one died)
MAX_STARTS = 3


def enabled() -> bool:
    """Whether validation may move to a helper process on this machine and in this environment."""
    setting = os.environ.get("MYELOMA_KG_VALIDATION_PROCESS", "").strip().lower()
    if setting in ("0", "false", "no", "off"):
        return False
    return thread_count() >= 2 and os.name == "posix"


class ValidationProcess:
    """One helper process that validates patient documents for this process, one at a time.

    >>> helper = ValidationProcess()     # doctest: +SKIP
    >>> helper.wait_ready(30)            # doctest: +SKIP
    True
    >>> pending = helper.submit(doc)     # doctest: +SKIP  (None when busy, not ready or not applicable)
    >>> report = pending.result()        # doctest: +SKIP
    """

    def __init__(self) -> None:
        ours, theirs = socket.socketpair()
        env = dict(os.environ)
        # the child imports this very package, wherever the caller found it
        package_root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join([package_root] + [p for p in [env.get("PYTHONPATH", "")] if p])
        env["MYELOMA_KG_THREADS"] = "1"
        env["MYELOMA_KG_VALIDATION_PROCESS"] = "0"
        try:
            self._process: subprocess.Popen[bytes] | None = subprocess.Popen(
                [sys.executable, "-m", "myeloma_kg.offload", str(theirs.fileno())],
                pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, env=env,
                close_fds=True)
        finally:
            theirs.close()
        self._conn = Connection(ours.detach())
        self._owner = os.getpid()
        self._ready = False
        self._handshake = threading.Lock()
        self._busy = threading.Lock()

    @property
    def alive(self) -> bool:
        """Whether the helper runs (a helper that failed once is stopped and never used again)."""
        return self._process is not None and self._process.poll() is None

    def ready(self) -> bool:
        """Whether the helper is warm and takes documents (never blocks)."""
        return self.wait_ready(0.0)

    def wait_ready(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the helper to be warm; whether it is."""
        if not self._ready and self.alive:
            with self._handshake:  # one thread reads the helper's "ready"
                try:
                    if not self._ready and self._conn.poll(timeout):
                        self._ready = self._conn.recv() == "ready"
                except (EOFError, OSError):
                    self.stop()
        return self._ready and self.alive

    def submit(self, doc: PatientDocument) -> PendingReport | None:
        """Send a document converted from a mapping to the helper; None when the helper is not ready, busy
        with another document, or the document was not converted from a mapping (the caller validates
        it itself)."""
        if doc.data is None or os.getpid() != self._owner or not self.ready():
            return None
        if not self._busy.acquire(blocking=False):
            return None
        try:
            message = _dumps((doc.data, doc.source, doc.position))
        except Exception:  # noqa: BLE001 -- a mapping that does not pickle: validated by the caller
            self._busy.release()
            return None
        try:
            self._conn.send_bytes(message)
        except OSError:  # a dead helper
            self._busy.release()
            self.stop()
            return None
        return PendingReport(self, doc)

    def _reply(self) -> ValidationReport | None:
        """The helper's report for the document sent, or None (the helper is then stopped, or the
        document raised there: either way the caller validates it itself)."""
        try:
            if not self._conn.poll(REPLY_TIMEOUT_S):
                self.stop()
                return None
            status, report = _loads(self._conn.recv_bytes())
        except (EOFError, OSError):
            self.stop()
            return None
        except Exception:  # noqa: BLE001 -- a reply that does not unpickle: validate locally
            return None
        finally:
            self._busy.release()
        return report if status == "ok" else None

    def stop(self) -> None:
        """Stop the helper: a warm one exits when its end of the socket closes, one still warming up
        (which reads the socket only when warm) is killed, so that a short-lived caller never waits."""
        process, self._process = self._process, None
        try:
            self._conn.close()
        except OSError:
            pass
        if process is None or os.getpid() != self._owner:
            return
        if not self._ready:
            process.kill()
        try:
            process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class PendingReport:
    """A document sent to the helper process; :meth:`result` gives its report."""

    def __init__(self, helper: ValidationProcess, doc: PatientDocument) -> None:
        self._helper = helper
        self._doc = doc

    def result(self) -> ValidationReport:
        """The report (validated here instead when the helper failed or the document raised there, so
        an error surfaces exactly as in this process)."""
        report = self._helper._reply()
        if report is None:
            from .validate import validate

            return validate(self._doc)
        return report


_lock = threading.Lock()
# a forked child resets this (_forget_in_forked_child): its count and helper are its own
_state: dict[str, Any] = {"calls": 0, "starts": 0, "helper": None}


def helper() -> ValidationProcess | None:
    """This process's helper, started on the call after :data:`START_AFTER_CALLS` calls (None until then,
    when disabled, and after :data:`MAX_STARTS` helpers died). It may not be ready yet."""
    if not enabled():
        return None
    with _lock:
        _state["calls"] += 1
        current: ValidationProcess | None = _state["helper"]
        if current is not None and current.alive:
            return current
        if _state["calls"] <= START_AFTER_CALLS or _state["starts"] >= MAX_STARTS:
            return None
        if _state["starts"] == 0:
            atexit.register(stop_helper)
        _state["starts"] += 1
        try:
            _state["helper"] = ValidationProcess()
        except OSError:
            _state["helper"] = None
            _state["starts"] = MAX_STARTS
        return _state["helper"]


def wait_for_helper(timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for this process's helper, if one was started, to be warm; whether it
    is (for a caller that wants its next calls measured or served at full speed)."""
    current: ValidationProcess | None = _state["helper"]
    return current is not None and current.wait_ready(timeout)


def stop_helper() -> None:
    """Stop this process's helper, if any (a later call may start another)."""
    with _lock:
        current, _state["helper"] = _state["helper"], None
        _state["calls"] = 0
    if current is not None:
        current.stop()


def _forget_in_forked_child() -> None:
    """A forked child (a cohort worker, a server worker) closes its copy of the parent's socket, so that
    the helper still exits with the parent; the child starts its own helper if it needs one."""
    current = _state["helper"]
    if current is not None:
        current._process = None  # the parent's, not this child's, to wait for
        try:
            current._conn.close()
        except OSError:
            pass
    _state.update(calls=0, starts=0, helper=None)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_forked_child)


def _serve(fd: int) -> None:
    """The helper's loop: warm up, say ``ready``, then validate each document received until the socket
    closes."""
    from .patient import PatientDocument
    from .validate import EXAMPLES_DIR, validate

    conn = Connection(fd)
    try:  # loads the shapes, the knowledge base's types and pyrudof before the first document
        validate(EXAMPLES_DIR / "pt-017.yaml")
    except Exception:  # noqa: BLE001, S110 -- a failed warm-up only makes the first document slower
        pass
    conn.send("ready")
    while True:
        try:
            data, source, position = _loads(conn.recv_bytes())
        except (EOFError, OSError):
            return
        try:
            reply: tuple[str, Any] = ("ok", validate(PatientDocument.from_dict(data, source=source, position=position)))
        except Exception:  # noqa: BLE001 -- the caller validates this one itself, where the error surfaces
            reply = ("error", None)
        try:
            message = _dumps(reply)
        except Exception:  # noqa: BLE001 -- a report that does not pickle
            message = _dumps(("error", None))
        try:
            conn.send_bytes(message)
        except OSError:
            return


if __name__ == "__main__":
    _serve(int(sys.argv[1]))
