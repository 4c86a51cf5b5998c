"""Store damage is a 5xx naming the object, and verify --all reports it (issue 12)."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import falcon.testing
import pytest

from cas_dvid.api import ServerConfig, create_app
from cas_dvid.objects.codec import decode
from cas_dvid.testing.live import LiveServer
from cas_dvid.versions.stores import init_store

VALUE = os.urandom(3000) + b"z" * 20_000  # compressible: stored lz4, as a blob of its own


@pytest.fixture(autouse=True)
def _loose(loose_objects: None) -> None:
    """These tests damage and remove the value's object file."""


def _store_with_value(tmp_path: Path) -> tuple[str, str, Path]:
    """Return a store URL, the repo UUID with kv/key/a = VALUE, and the file holding VALUE."""
    root = tmp_path / "store"
    url = f"file://{root}"
    init_store(url)
    c = falcon.testing.TestClient(create_app(ServerConfig(url)))
    uuid = c.simulate_post("/api/repos", body="{}").json["root"]
    body = json.dumps({"typename": "keyvalue", "dataname": "kv"})
    assert c.simulate_post(f"/api/repo/{uuid}/instance", body=body).status_code == 200
    assert c.simulate_post(f"/api/node/{uuid}/kv/key/a", body=VALUE).status_code == 200
    for path in root.rglob("*"):
        if path.is_file() and len(path.name) >= 60:
            try:
                _, raw = decode(path.read_bytes())
            except Exception:  # noqa: BLE001, S112 - refs and other files
                continue
            if bytes(raw) == VALUE:
                return url, uuid, path
    raise AssertionError("value's object not found")


def _hex_of(path: Path) -> str:
    return path.parent.name + path.name


def test_corrupt_length_field_is_500_naming_object(tmp_path: Path) -> None:
    url, uuid, path = _store_with_value(tmp_path)
    data = bytearray(path.read_bytes())
    struct.pack_into("<Q", data, 8, 1 << 63)  # raw length field of the header
    path.write_bytes(bytes(data))
    c = falcon.testing.TestClient(create_app(ServerConfig(url)))
    r = c.simulate_get(f"/api/node/{uuid}/kv/key/a")
    assert r.status_code == 500
    assert r.headers["content-type"].startswith("text/plain")
    assert _hex_of(path) in r.text
    assert "OverflowError" not in r.text
    proc = subprocess.run(
        [sys.executable, "-m", "cas_dvid.cli", "verify", "--all", "--store", url, "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert _hex_of(path) in proc.stdout + proc.stderr


def test_missing_object_is_500_store_damaged(tmp_path: Path) -> None:
    url, uuid, path = _store_with_value(tmp_path)
    path.unlink()
    with LiveServer(create_app(ServerConfig(url))) as srv:
        status, headers, body = srv.request("GET", f"/api/node/{uuid}/kv/key/a")
    assert status == 500, (status, body[:300], path)
    assert headers["content-type"].startswith("text/plain")
    assert b"store damaged" in body
    assert _hex_of(path).encode() in body


def _verify_all(url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cas_dvid.cli", "verify", "--all", "--store", url, "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_verify_names_where_a_missing_or_corrupt_object_is_used(tmp_path: Path) -> None:
    url, uuid, path = _store_with_value(tmp_path)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # payload byte: the hash no longer matches
    path.write_bytes(bytes(data))
    proc = _verify_all(url)
    assert proc.returncode == 1
    line = next(x for x in proc.stdout.splitlines() if x.startswith("corrupt"))
    assert _hex_of(path) in line
    assert f"used by repo {uuid} instance 'kv' version {uuid} key" in line
    assert "'a'" in line  # the key, as people read it
    path.unlink()
    proc = _verify_all(url)
    line = next(x for x in proc.stdout.splitlines() if x.startswith("missing"))
    assert line.startswith(f"missing {_hex_of(path)} (used by repo {uuid} instance 'kv'")


def test_verify_reports_a_damaged_repo_record_and_goes_on(tmp_path: Path) -> None:
    url, uuid, path = _store_with_value(tmp_path)
    record = tmp_path / "store" / "refs" / "repos" / uuid
    record.write_bytes(b"\x00garbage{")
    proc = _verify_all(url)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert f"repo record of {uuid}" in proc.stdout
