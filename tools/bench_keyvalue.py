"""keyvalue over HTTP vs a falcon endpoint keeping values in a dict, same run (issue 4).

Both servers run under waitress with the same settings in their own process; one
client thread with a kept-alive http.client connection POSTs 4 KiB values to
distinct keys, then GETs them back.  Prints requests per second and the ratios.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import falcon

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cas_dvid.testing.s3server import free_port  # noqa: E402


class DictKeys:
    """The baseline: the same URL shape, values in a dict."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}

    def on_get(self, req: falcon.Request, resp: falcon.Response, uuid: str, key: str) -> None:
        resp.content_type = "application/octet-stream"
        resp.data = self.data[key]

    def on_post(self, req: falcon.Request, resp: falcon.Response, uuid: str, key: str) -> None:
        self.data[key] = req.bounded_stream.read()


def serve_baseline(port: int) -> None:
    from cas_dvid.api.serve import serve

    app = falcon.App()
    app.add_route("/api/node/{uuid}/kv/key/{key}", DictKeys())
    serve(app, port=port)


def start(cmd: list[str], port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/node/x/kv/key/ping", timeout=1)
        except urllib.error.HTTPError:
            return proc
        except OSError:
            time.sleep(0.05)
            continue
        return proc
    raise RuntimeError(f"server on {port} did not start")


def _loop(port: int, method: str, paths: list[str], value: bytes) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for path in paths:
        conn.request(method, path, body=value if method == "POST" else None)
        r = conn.getresponse()
        body = r.read()
        assert r.status == 200, (r.status, body[:200])
        assert method == "POST" or len(body) == len(value)


def run_client(port: int, prefix: str, n: int, value: bytes, clients: int) -> tuple[float, float]:
    """POST then GET ``n`` keys from ``clients`` threads; requests per second of each."""
    paths = [f"{prefix}/key/k{i:06d}" for i in range(n)]
    rates = []
    for method in ("POST", "GET"):
        threads = [
            threading.Thread(target=_loop, args=(port, method, paths[c::clients], value))
            for c in range(clients)
        ]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        rates.append(n / (time.perf_counter() - t0))
    return rates[0], rates[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--clients", type=int, default=1, help="concurrent client connections")
    ap.add_argument(
        "--dir",
        default="/dev/shm" if os.path.isdir("/dev/shm") else None,
        help="where the store goes (default /dev/shm: this VM's disk speed drifts 5x "
        "within minutes; pass /tmp to include it)",
    )
    ap.add_argument("--serve-baseline", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_baseline:
        serve_baseline(args.serve_baseline)
        return 0
    value = os.urandom(4096)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        store = str(Path(tmp) / "store")
        subprocess.run(
            [sys.executable, "-m", "cas_dvid.cli", "init", store], check=True, capture_output=True
        )
        ours_port, base_port = free_port(), free_port()
        ours = start(
            [sys.executable, "-m", "cas_dvid.cli", "serve", store, "--port", str(ours_port)],
            ours_port,
        )
        base = start([sys.executable, __file__, "--serve-baseline", str(base_port)], base_port)
        try:
            conn = http.client.HTTPConnection("127.0.0.1", ours_port)
            conn.request("POST", "/api/repos", body=b"{}")
            root = json.loads(conn.getresponse().read())["root"]
            conn.request(
                "POST",
                f"/api/repo/{root}/instance",
                body=b'{"typename":"keyvalue","dataname":"kv"}',
            )
            conn.getresponse().read()
            results: dict[str, list[tuple[float, float]]] = {"ours": [], "dict": []}
            for _ in range(args.rounds):
                for name, port in (("dict", base_port), ("ours", ours_port)):
                    results[name].append(
                        run_client(port, f"/api/node/{root}/kv", args.requests, value, args.clients)
                    )
                    # distinct keys per round so every POST writes something new
                    value = os.urandom(4096)
        finally:
            for p in (ours, base):
                p.terminate()
                p.wait(10)
    ok = True
    for i, (label, target) in enumerate((("POST 4 KiB value", 0.5), ("GET 4 KiB value", 0.7))):
        o = statistics.median(x[i] for x in results["ours"])
        b = statistics.median(x[i] for x in results["dict"])
        met = o / b >= target
        ok &= met
        print(
            f"{label} x{args.clients} client(s)".ljust(34)
            + f" ours {o:8.0f} req/s   dict endpoint {b:8.0f} req/s   ratio {o / b:5.2f}x  "
            f"target >= {target:.1f}x  {'OK' if met else 'MISSED'}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
