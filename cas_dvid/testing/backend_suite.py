"""The backend conformance suite: subclass ``BackendSuite`` and give it a ``backend`` fixture.

Every backend must pass the same tests, S3 included.  ``racy_refs`` says whether
the backend's compare-and-swap is expected to hold under true concurrency (the moto
test server is not atomic under races; see PERF-NOTES.md).
"""

from __future__ import annotations

import threading

import pytest

from cas_dvid.backends.abc import Backend, ByteRange
from cas_dvid.errors import ConflictError, InvalidInputError, NotFoundError

K1 = "aa" + "01" * 31
K2 = "ab" + "02" * 31
K3 = "bb" + "03" * 31


class BackendSuite:
    """Behaviour every backend shares."""

    racy_refs = True

    # -- objects ----------------------------------------------------------------

    def test_put_get_round_trip_joins_parts(self, backend: Backend) -> None:
        assert backend.put_if_absent(K1, [b"head", memoryview(b"-body"), bytearray(b"!")])
        assert backend.get(K1) == b"head-body!"

    def test_put_is_put_if_absent(self, backend: Backend) -> None:
        assert backend.put_if_absent(K1, [b"first"])
        assert not backend.put_if_absent(K1, [b"second"])
        assert backend.get(K1) == b"first"

    def test_empty_object(self, backend: Backend) -> None:
        assert backend.put_if_absent(K1, [b""])
        assert backend.get(K1) == b""
        assert backend.has_many([K1]) == [True]

    def test_get_missing_is_not_found(self, backend: Backend) -> None:
        with pytest.raises(NotFoundError, match=K1):
            backend.get(K1)

    @pytest.mark.parametrize(
        ("rng", "want"),
        [
            pytest.param(ByteRange(0, 3), b"012", id="head"),
            pytest.param(ByteRange(4, 7), b"456", id="middle"),
            pytest.param(ByteRange(7), b"789", id="open-end"),
            pytest.param(ByteRange(5, 5), b"", id="empty"),
        ],
    )
    def test_byte_ranges(self, backend: Backend, rng: ByteRange, want: bytes) -> None:
        backend.put_if_absent(K1, [b"0123456789"])
        assert backend.get(K1, rng) == want

    def test_has_many(self, backend: Backend) -> None:
        backend.put_if_absent(K1, [b"x"])
        backend.put_if_absent(K3, [b"y"])
        assert backend.has_many([K1, K2, K3]) == [True, False, True]
        assert backend.has_many([]) == []

    def test_list_prefix(self, backend: Backend) -> None:
        for k in (K1, K2, K3):
            backend.put_if_absent(k, [k.encode()])
        assert sorted(i.key for i in backend.list_prefix()) == [K1, K2, K3]
        assert sorted(i.key for i in backend.list_prefix("a")) == [K1, K2]
        assert [i.key for i in backend.list_prefix("aa01")] == [K1]
        info = next(iter(backend.list_prefix("bb")))
        assert info.size == len(K3) and info.mtime > 0

    def test_delete(self, backend: Backend) -> None:
        backend.put_if_absent(K1, [b"x"])
        backend.delete(K1)
        backend.delete(K1)
        assert backend.has_many([K1]) == [False]
        assert backend.put_if_absent(K1, [b"again"])

    @pytest.mark.parametrize("key", ["", "../etc/passwd", "ABCDEF", "aa/bb", "zz" * 32])
    def test_bad_keys_rejected(self, backend: Backend, key: str) -> None:
        with pytest.raises(InvalidInputError):
            backend.put_if_absent(key, [b"x"])

    def test_put_batch_members_behave_as_single_puts(self, backend: Backend) -> None:
        keys = [f"{i:02x}" + "c5" * 31 for i in range(40)]
        backend.put_if_absent(keys[3], [b"before"])
        wrote = backend.put_batch([(k, [k[:2].encode(), b"-", b"v"]) for k in keys])
        assert wrote == [k != keys[3] for k in keys]
        assert backend.get(keys[3]) == b"before"
        assert backend.get(keys[7]) == b"07-v"
        assert backend.get(keys[7], ByteRange(1, 3)) == b"7-"
        assert backend.get(keys[7], ByteRange(2)) == b"-v"
        assert backend.has_many([keys[0], K2, keys[39]]) == [True, False, True]
        listed = {i.key: i.size for i in backend.list_prefix()}
        assert listed == {k: 4 if k != keys[3] else 6 for k in keys}
        assert backend.put_batch([(keys[0], [b"again"]), (K2, [b"new"])]) == [False, True]
        backend.delete_many(keys[:20])
        assert backend.has_many(keys[19:21]) == [False, True]
        with pytest.raises(NotFoundError):
            backend.get(keys[0])
        assert sorted(i.key for i in backend.list_prefix()) == sorted([*keys[20:], K2])
        assert backend.put_if_absent(keys[0], [b"back"])
        assert backend.get(keys[0]) == b"back"
        backend.delete_many(keys)
        assert sorted(i.key for i in backend.list_prefix()) == [K2]

    # -- refs -------------------------------------------------------------------

    def test_ref_create_read_swap(self, backend: Backend) -> None:
        with pytest.raises(NotFoundError):
            backend.get_ref("repos/r1")
        t1 = backend.cas_ref("repos/r1", None, b"v1")
        ref = backend.get_ref("repos/r1")
        assert (ref.value, ref.token) == (b"v1", t1)
        t2 = backend.cas_ref("repos/r1", t1, b"v2")
        assert t2 != t1
        assert backend.get_ref("repos/r1").value == b"v2"

    def test_ref_create_twice_conflicts(self, backend: Backend) -> None:
        t1 = backend.cas_ref("heads/x", None, b"one")
        with pytest.raises(ConflictError) as err:
            backend.cas_ref("heads/x", None, b"two")
        assert err.value.current == b"one" and err.value.current_token == t1

    def test_stale_token_conflicts_with_current_value(self, backend: Backend) -> None:
        t1 = backend.cas_ref("heads/y", None, b"one")
        backend.cas_ref("heads/y", t1, b"two")
        with pytest.raises(ConflictError) as err:
            backend.cas_ref("heads/y", t1, b"three")
        assert err.value.current == b"two"
        assert backend.get_ref("heads/y").value == b"two"

    def test_swap_of_missing_ref_conflicts(self, backend: Backend) -> None:
        t = backend.cas_ref("heads/z", None, b"one")
        backend.delete_ref("heads/z", t)
        with pytest.raises(ConflictError) as err:
            backend.cas_ref("heads/z", t, b"two")
        assert err.value.current is None

    def test_delete_ref(self, backend: Backend) -> None:
        t1 = backend.cas_ref("a/b", None, b"one")
        t2 = backend.cas_ref("a/b", t1, b"two")
        with pytest.raises(ConflictError):
            backend.delete_ref("a/b", t1)
        backend.delete_ref("a/b", t2)
        with pytest.raises(NotFoundError):
            backend.get_ref("a/b")

    def test_list_refs(self, backend: Backend) -> None:
        for name in ("repos/b", "repos/a", "heads/a/x", "heads/a/y"):
            backend.cas_ref(name, None, name.encode())
        assert list(backend.list_refs("repos/")) == ["repos/a", "repos/b"]
        assert list(backend.list_refs("heads/")) == ["heads/a/x", "heads/a/y"]
        assert len(list(backend.list_refs())) == 4

    @pytest.mark.parametrize("name", ["", "/abs", "a/../b", "a//b", "sp ace", "x.lock"])
    def test_bad_ref_names_rejected(self, backend: Backend, name: str) -> None:
        with pytest.raises(InvalidInputError):
            backend.cas_ref(name, None, b"x")

    def test_counter_with_retry_loses_no_increment(self, backend: Backend) -> None:
        """Writers that re-read and retry on conflict lose nothing."""
        threads, rounds = (4, 15) if self.racy_refs else (1, 20)
        backend.cas_ref("counter", None, b"0")

        def bump() -> None:
            for _ in range(rounds):
                while True:
                    ref = backend.get_ref("counter")
                    try:
                        backend.cas_ref("counter", ref.token, str(int(ref.value) + 1).encode())
                        break
                    except ConflictError:
                        continue

        workers = [threading.Thread(target=bump) for _ in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        assert int(backend.get_ref("counter").value) == threads * rounds
