"""A bounded verification queue: one worker thread, a fixed number of waiting submissions, queryable status.

Why: verification downloads and scores an attacker's checkpoint, so it is the
expensive thing a submitter can make the Space do. One worker thread runs one
submission at a time (its scoring in a child process with a wall-time limit,
``leaderboard.verify``); at most ``max_queue`` submissions wait behind it, and
``submit`` beyond that raises ``QueueFull`` at once instead of letting work
pile up. The submission itself is already stored and shows as pending; it can
be queued again later.

Each submission's job goes ``queued`` -> ``verifying`` -> ``verified`` /
``mismatch`` / ``failed`` / ``unsupported`` (the verification's overall
status; ``failed`` also when verification itself raised, with the reason).
``status(submission_id)`` answers for the status view of the Space; the last
``history`` finished jobs are remembered in memory, older ones are read from
the store's verification files by the caller.

Usage::

    worker = VerifyWorker.for_store(store, catalog=catalog)   # or VerifyWorker(callable)
    worker.submit(submission_id)          # raises QueueFull when max_queue are waiting
    worker.status(submission_id).state    # "queued", "verifying", "verified", ...
    worker.close()
"""

from __future__ import annotations

import collections
import functools
import os
import threading
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Mapping

from leaderboard.verify import public_reason, verify_and_store

ENV_QUEUE = "LEADERBOARD_VERIFY_QUEUE"
DEFAULT_MAX_QUEUE = 20
DEFAULT_HISTORY = 1_000
JOB_STATES = ("queued", "verifying", "verified", "mismatch", "failed", "unsupported")
FINAL_STATES = JOB_STATES[2:]


class QueueFull(RuntimeError):
    """The verification queue already holds ``max_queue`` submissions; the message says what happens next."""


@dataclass
class JobStatus:
    """Where one submission's verification stands."""

    submission_id: str
    state: str  # one of JOB_STATES
    queued_at: str
    started_at: str | None = None
    finished_at: str | None = None
    position: int | None = None  # 1 = next to run, while queued
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def max_queue_from_env(environ: Mapping[str, str] = os.environ) -> int:
    """``LEADERBOARD_VERIFY_QUEUE`` (a whole number >= 1), default 20."""
    value = environ.get(ENV_QUEUE, "").strip()
    if not value:
        return DEFAULT_MAX_QUEUE
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{ENV_QUEUE}={value!r}: expected a whole number of waiting submissions >= 1, e.g. 20")
    return int(value)


class VerifyWorker:
    """One thread verifying queued submission ids with ``verify(submission_id) -> verification dict``."""

    def __init__(
        self,
        verify: Callable[[str], Mapping[str, Any]],
        *,
        max_queue: int = DEFAULT_MAX_QUEUE,
        history: int = DEFAULT_HISTORY,
        on_done: Callable[[str, JobStatus], None] | None = None,
        name: str = "hf-unlearn-verify",
    ) -> None:
        if max_queue < 1:
            raise ValueError(f"max_queue={max_queue}: need room for at least one waiting submission")
        self._verify = verify
        self.max_queue = max_queue
        self._history = history
        self._on_done = on_done
        self._queue: collections.deque[str] = collections.deque()
        self._jobs: collections.OrderedDict[str, JobStatus] = collections.OrderedDict()
        self._current: str | None = None
        self._closed = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @classmethod
    def for_store(cls, store: Any, *, max_queue: int | None = None,
                  on_done: Callable[[str, JobStatus], None] | None = None, **verify_kwargs: Any) -> "VerifyWorker":
        """A worker running ``verify_and_store(store, id, **verify_kwargs)`` (catalog, limits, signing_key, ...)."""
        return cls(functools.partial(verify_and_store, store, **verify_kwargs),
                   max_queue=max_queue_from_env() if max_queue is None else max_queue, on_done=on_done)

    # --- queue ----------------------------------------------------------------------------------

    def submit(self, submission_id: str) -> JobStatus:
        """Queue a submission; a submission already queued or verifying is not queued twice.

        Raises ``QueueFull`` when ``max_queue`` submissions are waiting, and
        ``RuntimeError`` after ``close``.
        """
        with self._cond:
            if self._closed:
                raise RuntimeError("the verification worker is closed")
            job = self._jobs.get(submission_id)
            if job is not None and job.state in ("queued", "verifying"):
                return self._snapshot(job)
            if len(self._queue) >= self.max_queue:
                raise QueueFull(
                    f"the verification queue is full ({self.max_queue} submissions waiting): the submission is "
                    "stored and shows as pending; queue its verification again later"
                )
            job = JobStatus(submission_id, "queued", _now())
            self._jobs[submission_id] = job
            self._jobs.move_to_end(submission_id)
            self._queue.append(submission_id)
            self._cond.notify_all()
            return self._snapshot(job)

    def status(self, submission_id: str) -> JobStatus | None:
        """A copy of the job's status, or None if this worker never saw the submission (or forgot it)."""
        with self._cond:
            job = self._jobs.get(submission_id)
            return None if job is None else self._snapshot(job)

    def statuses(self) -> list[JobStatus]:
        """Every remembered job, oldest first."""
        with self._cond:
            return [self._snapshot(j) for j in self._jobs.values()]

    @property
    def queue_length(self) -> int:
        with self._cond:
            return len(self._queue)

    def wait(self, submission_id: str, timeout: float | None = None) -> JobStatus | None:
        """Block until the submission's job is finished (or ``timeout``); return its status."""
        with self._cond:
            self._cond.wait_for(lambda: (j := self._jobs.get(submission_id)) is None or j.state in FINAL_STATES,
                                timeout)
            job = self._jobs.get(submission_id)
            return None if job is None else self._snapshot(job)

    def join(self, timeout: float | None = None) -> bool:
        """Block until nothing is queued or running; True if that happened within ``timeout``."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue and self._current is None, timeout)

    def close(self, wait: bool = True, timeout: float | None = None) -> None:
        """Stop taking jobs; drop the waiting ones (they stay pending in the store); finish the running one."""
        with self._cond:
            self._closed = True
            for sub_id in self._queue:
                job = self._jobs[sub_id]
                job.state, job.finished_at, job.message = "failed", _now(), "the verifier shut down before this ran"
            self._queue.clear()
            self._cond.notify_all()
        if wait:
            self._thread.join(timeout)

    # --- worker thread --------------------------------------------------------------------------

    def _snapshot(self, job: JobStatus) -> JobStatus:
        copy = JobStatus(**asdict(job))
        if job.state == "queued":
            try:
                copy.position = list(self._queue).index(job.submission_id) + 1
            except ValueError:
                copy.position = None
        return copy

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._queue or self._closed)
                if not self._queue:
                    return
                sub_id = self._queue.popleft()
                self._current = sub_id
                job = self._jobs[sub_id]
                job.state, job.started_at = "verifying", _now()
                self._cond.notify_all()
            try:
                verification = self._verify(sub_id)
                state = verification.get("status") if isinstance(verification, Mapping) else None
                state = state if state in FINAL_STATES else "failed"
                message = _summary(verification) if isinstance(verification, Mapping) else "no result"
            except Exception as exc:  # noqa: BLE001 - the worker must survive anything one job does
                state, message = "failed", f"verification could not run: {public_reason(exc)}"
            with self._cond:
                job.state, job.finished_at, job.message = state, _now(), message
                self._current = None
                self._forget_old()
                self._cond.notify_all()
            if self._on_done is not None:
                try:
                    self._on_done(sub_id, self._snapshot(job))
                except Exception:  # noqa: BLE001 - a failing callback (e.g. a board refresh) must not stop the worker
                    pass

    def _forget_old(self) -> None:
        finished = [k for k, j in self._jobs.items() if j.state in FINAL_STATES]
        for key in finished[: max(0, len(finished) - self._history)]:
            del self._jobs[key]


def _summary(verification: Mapping[str, Any]) -> str:
    records = [e for e in verification.get("records") or [] if isinstance(e, Mapping)]
    counts = collections.Counter(str(e.get("status")) for e in records)
    text = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    return f"{len(records)} checkpoint(s): {text}" if records else "no checkpoint to verify"
