"""Typed immutable objects addressed by BLAKE3, with codecs, verification and a cache."""

from cas_dvid.objects.cache import LRUCache
from cas_dvid.objects.codec import Codec, parse_codec
from cas_dvid.objects.ids import Kind, ObjectId, content_id, parse_object_id, to_hex
from cas_dvid.objects.store import ObjectStore

__all__ = [
    "Codec",
    "Kind",
    "LRUCache",
    "ObjectId",
    "ObjectStore",
    "content_id",
    "parse_codec",
    "parse_object_id",
    "to_hex",
]
