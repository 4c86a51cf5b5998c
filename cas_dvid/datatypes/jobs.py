"""Long jobs a server runs on a thread (tile generation, pyramids), with a status to poll.

One ``Jobs`` per service keeps the last job of each ``(version, instance)``: its
``Status`` (``running``, ``done``, ``failed``), ``Done`` of ``Total`` work units, the
counts the job returns, and ``Error`` when it failed.  A second start while one runs
is refused.  Status is in memory on the server that runs the job (as DVID's); the
job's writes are ordinary versioned writes, so a crash loses only progress, and a
rerun picks up from what landed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from cas_dvid.errors import InvalidInputError

Progress = Callable[[int], None]
Key = tuple[str, str]


class Jobs:
    """The last job per key and its status."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._jobs: dict[Key, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def status(self, key: Key, idle: dict[str, Any]) -> dict[str, Any]:
        """Return a copy of the job's status, or ``idle`` (with ``Status: none``) if none ran."""
        with self._lock:
            job = self._jobs.get(key)
            return dict(job) if job else {"Status": "none", "Done": 0, "Total": 0, **idle}

    def start(
        self,
        key: Key,
        fields: dict[str, Any],
        run: Callable[[Progress], dict[str, Any]],
    ) -> dict[str, Any]:
        """Run ``run(progress)`` on a thread; its returned counts join the final status.

        ``fields`` must hold ``Total`` and the counts' starting values.
        """
        with self._lock:
            old = self._jobs.get(key)
            if old and old["Status"] == "running":
                raise InvalidInputError(f"{self.what} of {key[1]!r} is already running")
            job: dict[str, Any] = {"Status": "running", "Done": 0, **fields, "Error": ""}
            self._jobs[key] = job

        def update(done: int) -> None:
            with self._lock:
                job["Done"] = done

        def body() -> None:
            try:
                counts = run(update)
                with self._lock:
                    job.update(counts, Status="done")
            except Exception as exc:  # noqa: BLE001 - the job reports every failure as its status
                with self._lock:
                    job.update(Status="failed", Error=str(exc))

        threading.Thread(target=body, name=f"{self.what}-{key[1]}", daemon=True).start()
        return dict(job)
