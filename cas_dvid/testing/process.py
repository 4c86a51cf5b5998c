"""``cas-dvid serve`` in a child process, for tests and tools that kill or restart it."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import TracebackType

from cas_dvid.testing.s3server import free_port


class ServerProcess:
    """A real server process on a store; ``kill`` is SIGKILL (no cleanup runs), ``start`` again.

    The port stays the same across restarts, so clients keep their URLs.  Every
    process started is in ``ServerProcess.started``, so a test suite can check that
    none is left behind.
    """

    started: list[subprocess.Popen[bytes]] = []

    def __init__(self, store: str | Path, port: int | None = None, *args: str) -> None:
        self.store = str(store)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = args
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> ServerProcess:
        """Start the server and wait until it answers its heartbeat."""
        if self.running:
            raise RuntimeError(f"server on port {self.port} is already running")
        cmd = [sys.executable, "-m", "cas_dvid.cli", "serve", self.store]
        self.proc = subprocess.Popen(
            [*cmd, "--port", str(self.port), *self.args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        ServerProcess.started.append(self.proc)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with status {self.proc.returncode}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/heartbeat", timeout=1) as r:
                    r.read()
                return self
            except OSError:
                time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"server on port {self.port} did not start in {timeout:.0f} s")

    @property
    def pid(self) -> int:
        """Return the server's process id."""
        assert self.proc is not None, "not started"
        return self.proc.pid

    def kill(self) -> None:
        """SIGKILL the server (as a crash would) and reap it."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        """Terminate the server politely and reap it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def connection(self, timeout: float = 120.0) -> http.client.HTTPConnection:
        """Return a keep-alive connection to the server."""
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self.proc is not None and self.proc.poll() is None

    def __enter__(self) -> ServerProcess:
        """Start the server unless it runs already (``with srv.start():`` starts it once)."""
        return self if self.running else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
