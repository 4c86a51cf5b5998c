"""Publish a locked version to S3, serve it read-only, verify it from the commit id alone."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import boto3
import numpy as np

from cas_dvid.api import ServerConfig, create_app
from cas_dvid.versions.stores import init_store
from cas_dvid.testing.live import LiveServer
from cas_dvid.testing.s3server import S3TestServer, free_port


def cli(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(
        [sys.executable, "-m", "cas_dvid.cli", *args], capture_output=True, text=True, timeout=120
    )
    if ok:
        assert r.returncode == 0, r.stderr + r.stdout
    return r


def post(srv: LiveServer, path: str, body: bytes | dict) -> bytes:  # type: ignore[type-arg]
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    status, _, out = srv.request("POST", path, data)
    assert status == 200, out
    return out


def build(srv: LiveServer) -> tuple[str, str]:
    root = json.loads(post(srv, "/api/repos", {"alias": "pub"}))["root"]
    post(
        srv,
        f"/api/repo/{root}/instance",
        {"typename": "uint8blk", "dataname": "grey", "BlockSize": "32,32,32"},
    )
    post(srv, f"/api/repo/{root}/instance", {"typename": "keyvalue", "dataname": "kv"})
    vol = np.random.default_rng(3).integers(0, 255, (64, 64, 96), dtype=np.uint8)
    post(srv, f"/api/node/{root}/grey/raw/0_1_2/96_64_64/0_0_0", vol.tobytes())
    for i in range(5):
        post(srv, f"/api/node/{root}/kv/key/k{i}", f"value {i}".encode() * (i * 100 + 1))
    commit = json.loads(post(srv, f"/api/node/{root}/commit", {"note": "to publish"}))
    return root, commit.get("commit_id", "")


def serve_read_only(url: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cas_dvid.cli", "serve", url, "--read-only", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(proc.stderr.read().decode() if proc.stderr else "server died")
        try:
            with urllib.request.urlopen(f"{base}/api/heartbeat", timeout=1):
                return proc, base
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("read-only server did not start")


def fetch(
    base: str, path: str, method: str = "GET", body: bytes | None = None
) -> tuple[int, bytes]:
    req = urllib.request.Request(base + path, data=body, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_publish_to_s3_serve_read_only_and_verify(
    tmp_path: Path, s3_server: S3TestServer, s3_bucket: str
) -> None:
    local = tmp_path / "store"
    init_store(f"file://{local}")[0].close()
    dest = f"s3://{s3_bucket}/pub?endpoint_url={s3_server.endpoint}"
    with LiveServer(create_app(ServerConfig(f"file://{local}"))) as srv:
        root, commit = build(srv)
        out = cli("publish", root, dest, "--store", str(local), "--quiet").stdout
        assert f"published commit {commit}" in out
        proc, ro = serve_read_only(dest)
        try:
            for path in (
                f"/api/node/{root}/grey/raw/0_1_2/96_64_64/0_0_0",
                f"/api/node/{root}/grey/raw/0_1_2/40_30_20/7_11_13",
                f"/api/node/{root}/grey/raw/0_1/96_64/0_0_5/png",
                f"/api/node/{root}/grey/info",
                f"/api/node/{root}/kv/key/k3",
                f"/api/node/{root}/kv/keys",
                f"/api/node/{root}/kv/keyrange/k1/k3",
            ):
                status, _, want = srv.request("GET", path)
                got_status, got = fetch(ro, path)
                assert (got_status, got) == (status, want), path
            assert fetch(ro, f"/api/node/{root}/kv/key/k9", "POST", b"x")[0] == 405
            assert (
                fetch(ro, f"/api/node/{root}/grey/raw/0_1_2/32_32_32/0_0_0", "POST", bytes(32**3))[
                    0
                ]
                == 405
            )
            assert fetch(ro, f"/api/node/{root}/commit", "POST", b"{}")[0] == 405
        finally:
            proc.terminate()
            proc.wait(10)
            if proc.stderr:
                proc.stderr.close()

    ok = cli("verify", commit, "--store", dest, "--quiet")
    assert "OK" in ok.stdout
    assert "would remove 0" in cli("gc", "--store", dest, "--grace", "0", "--dry-run").stdout
    # a flipped byte in the bucket is found from the commit id alone
    s3 = boto3.client("s3", endpoint_url=s3_server.endpoint, region_name="us-east-1")
    keys = [
        o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket, Prefix="pub/objects/")["Contents"]
    ]
    sizes = {k: s3.head_object(Bucket=s3_bucket, Key=k)["ContentLength"] for k in keys}
    victim = max(sizes, key=sizes.__getitem__)
    body = bytearray(s3.get_object(Bucket=s3_bucket, Key=victim)["Body"].read())
    body[-10] ^= 0x40
    s3.put_object(Bucket=s3_bucket, Key=victim, Body=bytes(body))
    bad = cli("verify", commit, "--store", dest, "--quiet", ok=False)
    assert bad.returncode == 1 and f"corrupt {victim.rsplit('/', 1)[-1]}" in bad.stdout
    s3.delete_object(Bucket=s3_bucket, Key=victim)
    gone = cli("verify", commit, "--store", dest, "--quiet", ok=False)
    assert gone.returncode == 1 and f"missing {victim.rsplit('/', 1)[-1]}" in gone.stdout
