"""One strict parser per kind of input, each with its table of bad inputs (issue 12).

Go's strconv, which DVID parses with, refuses spaces and non-ASCII digits and takes a
'+' on signed integers only; so does cas_dvid, everywhere.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import falcon
import falcon.testing
import pytest

from cas_dvid import strconv
from cas_dvid.api import ServerConfig, create_app
from cas_dvid.api._tails import check_tail
from cas_dvid.api.types.keyvalue import _http_range
from cas_dvid.datatypes.base import parse_settings
from cas_dvid.datatypes.geometry import parse_point, parse_size
from cas_dvid.datatypes.keyvalue import MAX_KEY_SIZE, check_key_name
from cas_dvid.errors import InvalidInputError

ARABIC_32 = "\u0663\u0662"  # '٣٢'

BAD: list[Any] = [
    *(
        pytest.param(strconv.parse_int, (t, "n"), id=f"int-{t!r}")
        for t in (" 32", "32 ", ARABIC_32, "3_2", "", "+", "1e3", "0x10", "9" * 20, "\uff13")
    ),
    *(
        pytest.param(strconv.parse_uint, (t, "label"), id=f"uint-{t!r}")
        for t in ("+32", "-1", " 1", "\u0663", str(1 << 64), "", "1.0")
    ),
    *(
        pytest.param(strconv.parse_float, (t,), id=f"float-{t!r}")
        for t in (" 1", "1 ", "\u0661", "1_0", "0x1p3", "", "1e400", "abc", "1..2")
    ),
    *(
        pytest.param(parse_point, (t,), id=f"point-{t!r}")
        for t in ("1_2", "1_2_3_4", " 1_2_3", "1_\u0662_3", "2147483648_0_0", "1__3", "1_2_3 ")
    ),
    *(
        pytest.param(parse_size, (t, 3), id=f"size-{t!r}")
        for t in ("0_1_1", "-1_1_1", "1_1", "2147483648_1_1", "1_1_ 1", "+1_1_\u0661")
    ),
    *(
        pytest.param(parse_settings, (doc,), id=f"settings-{json.dumps(doc)}")
        for doc in ({"BlockSize": 32}, {"x": None}, {"Versioned": True}, {"a": ["b"]})
    ),
    *(
        pytest.param(_http_range, (h, 10), id=f"range-{h!r}")
        for h in ("bytes=\u0660-\u0663", "bytes=1-2,3-4", "items=0-1", "bytes=-", "bytes= 0-1")
    ),
    *(
        pytest.param(check_key_name, (k,), id=f"key-{k[:8]!r}")
        for k in ("a/b", "/", "", "x" * MAX_KEY_SIZE)
    ),
    pytest.param(check_tail, ("raw", ["xy", "1_1", "0_0_0", "png", "junk"]), id="tail-raw"),
    pytest.param(check_tail, ("keys", ["junk"]), id="tail-keys"),
    pytest.param(check_tail, ("info", ["x"]), id="tail-info"),
    pytest.param(check_tail, ("sparsevol", ["1", "x"]), id="tail-sparsevol"),
]


@pytest.mark.parametrize(("parser", "args"), BAD)
def test_bad_input_is_refused(parser: Callable[..., Any], args: tuple[Any, ...]) -> None:
    with pytest.raises((InvalidInputError, falcon.HTTPRangeNotSatisfiable)) as caught:
        parser(*args)
    if isinstance(caught.value, InvalidInputError):
        assert 0 < len(str(caught.value)) < 300


GOOD: list[Any] = [
    pytest.param(strconv.parse_int, ("+32", "n"), 32, id="int-plus"),
    pytest.param(strconv.parse_int, ("-5", "n"), -5, id="int-minus"),
    pytest.param(strconv.parse_int, ("007", "n"), 7, id="int-zeros"),
    pytest.param(strconv.parse_uint, (str((1 << 64) - 1), "n"), (1 << 64) - 1, id="uint-max"),
    pytest.param(strconv.parse_float, ("+1.5",), 1.5, id="float-plus"),
    pytest.param(strconv.parse_float, (".5",), 0.5, id="float-dot"),
    pytest.param(strconv.parse_float, ("1e3",), 1000.0, id="float-exp"),
    pytest.param(parse_point, ("+1_-2_3",), (1, -2, 3), id="point-signs"),
    pytest.param(parse_size, ("64_+64_1", 3), (64, 64, 1), id="size-plus"),
    pytest.param(_http_range, ("bytes=2-", 10), (2, 9), id="range-open"),
    pytest.param(_http_range, ("bytes=-3", 10), (7, 9), id="range-suffix"),
    pytest.param(check_key_name, ("\u00fcn\u00ef k",), b"\x00", id="key-utf8"),
    pytest.param(check_tail, ("raw", ["xy", "1_1", "0_0_0", "png"]), None, id="tail-raw"),
    pytest.param(check_tail, ("key", ["a", "b"]), None, id="tail-key-self-checked"),
]


@pytest.mark.parametrize(("parser", "args", "want"), GOOD)
def test_good_input_is_taken(parser: Callable[..., Any], args: tuple[Any, ...], want: Any) -> None:
    got = parser(*args)
    if isinstance(want, bytes):
        assert got.endswith(args[0].encode())
    else:
        assert got == want or tuple(got) == want


@pytest.fixture(scope="module")
def client() -> tuple[falcon.testing.TestClient, str]:
    c = falcon.testing.TestClient(create_app(ServerConfig("memory://")))
    uuid = c.simulate_post("/api/repos", body="{}").json["root"]
    for typename, name in (
        ("keyvalue", "kv"),
        ("uint8blk", "gr"),
        ("labelmap", "lm"),
        ("imagetile", "it"),
    ):
        body = json.dumps({"typename": typename, "dataname": name})
        assert c.simulate_post(f"/api/repo/{uuid}/instance", body=body).status_code == 200
    assert c.simulate_post(f"/api/node/{uuid}/kv/key/a", body=b"hello").status_code == 200
    return c, uuid


HTTP_BAD = [
    ("GET", "gr/raw/xy/32_32/0_0_0/png/extra/junk", {}, "'extra/junk'"),
    ("GET", "gr/metadata/junk", {}, "'junk'"),
    ("GET", "kv/keys/junk", {}, "'junk'"),
    ("GET", "kv/keyrange/a/b/c", {}, "'c'"),
    ("GET", "lm/sparsevol-coarse/1/junk", {}, "'junk'"),
    ("GET", "gr/info/junk", {}, "'junk'"),
    ("GET", "gr/raw/xy/ 32_32/0_0_0", {}, "size"),
    ("GET", f"gr/raw/xy/{ARABIC_32}_32/0_0_0", {}, "size"),
    ("GET", "gr/raw/xy/32_32/0_0_0/jpg:\u0665\u0660", {}, "quality"),
    ("GET", "gr/arb/0_0_0/\u06610_0_0/0_10_0/1", {}, "ParseFloat"),
    ("GET", "gr/arb/0_0_0/10_0_0/0_10_0/ 1", {}, "ParseFloat"),
    ("GET", "lm/size/+3", {}, "unsigned"),
    ("GET", "lm/size/\u0663", {}, "label"),
    ("POST", "it/generate?scales=\u0663", {}, "scales"),
    ("GET", "kv/key/a", {"Range": "bytes=\u0660-\u0663"}, "Range"),
]


@pytest.mark.parametrize(("method", "path", "headers", "words"), HTTP_BAD)
def test_lenient_input_over_http_is_400(
    client: tuple[falcon.testing.TestClient, str],
    method: str,
    path: str,
    headers: dict[str, str],
    words: str,
) -> None:
    c, uuid = client
    r = c.simulate_request(method, f"/api/node/{uuid}/{path}", headers=headers)
    assert r.status_code == 400, r.content[:200]
    assert r.headers["content-type"].startswith("text/plain")
    assert words in r.text


@pytest.mark.parametrize("path", ["gr/raw/xy/+32_32/0_0_0", "gr/arb/0_0_0/+10_0_0/0_10_0/1"])
def test_plus_sign_is_taken_as_go_does(
    client: tuple[falcon.testing.TestClient, str], path: str
) -> None:
    c, uuid = client
    assert c.simulate_get(f"/api/node/{uuid}/{path}").status_code == 200
