"""perf.cache.serializers: round trips; signed pickle refuses tampered or foreign bytes."""

from __future__ import annotations

import datetime as dt
import pickle

import pytest

from perf.cache.errors import SerializationError
from perf.cache.serializers import JsonSerializer, OrjsonSerializer, SignedPickleSerializer

SECRET = b"0123456789abcdef-test-secret"
PAYLOAD = {"id": 7, "name": "Widget", "price": 9.5, "tags": ["a", "b"], "stock": None}


@pytest.mark.parametrize("serializer", [OrjsonSerializer(), JsonSerializer(), SignedPickleSerializer(SECRET)],
                         ids=lambda s: s.name)
def test_round_trip(serializer: object) -> None:
    assert serializer.loads(serializer.dumps(PAYLOAD)) == PAYLOAD  # type: ignore[attr-defined]


@pytest.mark.parametrize("serializer", [OrjsonSerializer(), JsonSerializer()], ids=lambda s: s.name)
def test_json_rejects_garbage_with_serialization_error(serializer: object) -> None:
    with pytest.raises(SerializationError, match="not valid JSON"):
        serializer.loads(b"\x80not json")  # type: ignore[attr-defined]


def test_orjson_names_the_fix_for_unserializable_values() -> None:
    with pytest.raises(SerializationError, match="SignedPickleSerializer"):
        OrjsonSerializer().dumps({1, 2})


def test_signed_pickle_handles_arbitrary_objects() -> None:
    s = SignedPickleSerializer(SECRET)
    value = {"when": dt.datetime(2026, 1, 1, tzinfo=dt.UTC), "ids": {1, 2}}
    assert s.loads(s.dumps(value)) == value


def test_signed_pickle_rejects_tampering() -> None:
    s = SignedPickleSerializer(SECRET)
    data = bytearray(s.dumps(PAYLOAD))
    data[-2] ^= 0x01
    with pytest.raises(SerializationError, match="signature does not verify"):
        s.loads(bytes(data))


def test_signed_pickle_rejects_unsigned_pickle_and_other_secrets() -> None:
    class Evil:
        def __reduce__(self) -> tuple[object, ...]:
            return (exec, ("raise SystemExit('pwned')",))

    s = SignedPickleSerializer(SECRET)
    with pytest.raises(SerializationError):
        s.loads(b"\x00" * 32 + pickle.dumps(Evil()))
    with pytest.raises(SerializationError):
        s.loads(SignedPickleSerializer(b"another-secret-of-16+bytes").dumps(PAYLOAD))
    with pytest.raises(SerializationError, match="shorter than its signature"):
        s.loads(b"short")


def test_signed_pickle_requires_a_real_secret() -> None:
    with pytest.raises(ValueError, match="secret has 3 bytes"):
        SignedPickleSerializer("abc")
