"""The local read-through cache: size cap, least-recently-used eviction, entries by ETag."""

from __future__ import annotations

import os

from engine.core.clock import NS_PER_SECOND
from engine.data.store import LocalCache


def test_the_least_recently_used_entry_is_evicted_first(tmp_path):
    cache = LocalCache(tmp_path, max_bytes=300)
    for name in ("a", "b", "c"):
        cache.put(name, "e1", bytes(100))
    cache.get("a", "e1")  # a is now the most recently used
    cache.put("d", "e1", bytes(100))
    assert [("a", "e1") in cache, ("b", "e1") in cache, ("c", "e1") in cache] == [
        True,
        False,
        True,
    ]


def test_the_cache_never_holds_more_than_its_cap(tmp_path):
    cache = LocalCache(tmp_path, max_bytes=250)
    for index in range(10):
        cache.put(f"k{index}", "e", bytes(100))
    on_disk = sum(path.stat().st_size for path in tmp_path.glob("*.arrow"))
    assert (cache.size_bytes, on_disk, len(cache), cache.evictions) == (200, 200, 2, 8)


def test_an_object_larger_than_the_cap_is_not_kept(tmp_path):
    cache = LocalCache(tmp_path, max_bytes=50)
    cache.put("big", "e", bytes(100))
    assert (len(cache), cache.get("big", "e")) == (0, None)


def test_a_rewritten_object_is_a_miss_not_stale_data(tmp_path):
    cache = LocalCache(tmp_path, max_bytes=1000)
    cache.put("k", "etag-1", b"old")
    assert (cache.get("k", "etag-2"), cache.get("k", "etag-1")) == (None, b"old")


def test_entries_and_their_order_survive_a_restart(tmp_path):
    first = LocalCache(tmp_path, max_bytes=200)
    first.put("a", "e", bytes(100))
    for path in tmp_path.glob("*.arrow"):  # a was used long before b
        os.utime(path, ns=(NS_PER_SECOND, NS_PER_SECOND))
    first.put("b", "e", bytes(100))
    second = LocalCache(tmp_path, max_bytes=200)
    second.put("c", "e", bytes(100))
    assert [("a", "e") in second, ("b", "e") in second, ("c", "e") in second] == [
        False,
        True,
        True,
    ]
