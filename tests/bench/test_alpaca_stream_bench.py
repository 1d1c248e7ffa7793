"""Alpaca market data: msgs/s decoded, normalized and published; memory with a slow consumer.

A loopback websocket server in a child process (so it does not share the
client's core) speaks Alpaca's stream protocol and, once subscribed, sends
batched msgpack frames of 1,000 quotes each, as Alpaca batches a busy second.
The client is the real ``AlpacaMarketData`` in its own event loop, publishing
every ``Quote`` on the bus to one subscriber. Beside it, from the same run: a
decode-only reference (``msgpack.unpackb`` of the same frames with the codec's
options, no sockets, no models). Wall-clock and CPU-time rates are both
reported: on a shared machine the CPU figure is the steadier one. The memory
figure runs a feed into a consumer slower than it, with tracemalloc on, beside
the bytes an unbounded buffer would have to hold.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import random
import time
import tracemalloc
from dataclasses import dataclass

import msgpack

from engine.alpaca.codec import FrameDecoder
from engine.alpaca.stream import AlpacaMarketData
from engine.core.bus import MessageBus, Topic
from engine.core.clock import LiveClock
from tests.bench.results import Figure, record

FRAMES = 300
PER_FRAME = 1_000
SYMBOLS = 100
SEED = 11


def build_frames(frames: int = FRAMES) -> list[bytes]:
    """Quote frames like Alpaca's: 100 symbols walking on the cent grid, ns msgpack timestamps."""
    rng = random.Random(SEED)
    names = [f"S{i:03d}" for i in range(SYMBOLS)]
    mids = {name: rng.randint(1_000, 50_000) for name in names}  # in cents
    ts = 1_763_650_800 * 1_000_000_000
    out = []
    for _ in range(frames):
        batch = []
        for _ in range(PER_FRAME):
            name = names[rng.randrange(SYMBOLS)]
            mids[name] += rng.choice((-1, 0, 0, 1))
            bid = mids[name] / 100
            ts += rng.randint(1_000, 40_000)
            batch.append(
                {
                    "T": "q",
                    "S": name,
                    "bx": "V",
                    "bp": bid,
                    "bs": rng.randint(1, 9),
                    "ax": "V",
                    "ap": round(bid + 0.01 * rng.randint(1, 3), 2),
                    "as": rng.randint(1, 9),
                    "t": msgpack.Timestamp.from_unix_nano(ts),
                    "c": ["R"],
                    "z": "C",
                }
            )
        out.append(msgpack.packb(batch, datetime=False))
    return out


def _serve(ports: multiprocessing.Queue, frames: int) -> None:
    """Child process: one Alpaca-like endpoint that floods each subscriber with the frames."""
    from websockets.asyncio.server import serve

    payload = build_frames(frames)

    async def handler(ws) -> None:
        await ws.send(msgpack.packb([{"T": "success", "msg": "connected"}]))
        async for raw in ws:
            action = msgpack.unpackb(raw).get("action")
            if action == "auth":
                await ws.send(msgpack.packb([{"T": "success", "msg": "authenticated"}]))
            elif action == "subscribe":
                await ws.send(msgpack.packb([{"T": "subscription", "quotes": ["*"]}]))
                for frame in payload:
                    await ws.send(frame)

    async def main() -> None:
        # No permessage-deflate: the figure is about decoding, not zlib.
        async with serve(handler, "127.0.0.1", 0, compression=None, max_size=2**24) as server:
            ports.put(server.sockets[0].getsockname()[1])
            await asyncio.Future()

    asyncio.run(main())


@dataclass
class _Endpoints:
    key_id: str
    secret_key: str
    data_url: str
    data_stream_url: str


async def _no_backfill(symbols, start_ns, end_ns):
    return []


@dataclass
class _Run:
    rate: float
    cpu_rate: float
    received: int
    dropped: int


def _stream_once(port: int, total: int, *, slow_us: float = 0.0, queue_frames: int = 256) -> _Run:
    async def main() -> _Run:
        bus = MessageBus()
        endpoints = _Endpoints("PKBENCH", "SECRET", "", f"ws://127.0.0.1:{port}/v2/iex")
        stream = AlpacaMarketData(
            bus,
            LiveClock(),
            endpoints,
            backfill=_no_backfill,
            silence_timeout_s=None,
            queue_frames=queue_frames,
        )
        done = asyncio.Event()
        marks: dict[str, float] = {}
        count = 0

        def consumer(_quote) -> None:
            nonlocal count
            count += 1
            if count == 1:
                marks["wall"], marks["cpu"] = time.perf_counter(), time.thread_time()
            if slow_us:
                spin_until = time.perf_counter() + slow_us / 1e6
                while time.perf_counter() < spin_until:
                    pass

        def check_done() -> None:
            if count + stream.stats.dropped >= total:
                marks["wall_end"], marks["cpu_end"] = time.perf_counter(), time.thread_time()
                done.set()

        bus.subscribe(Topic.QUOTE, consumer)
        task = asyncio.create_task(stream.run())
        stream.subscribe(["*"], ["quotes"])
        while not done.is_set():
            check_done()
            await asyncio.sleep(0.001)
        stream.stop()
        await task
        wall = marks["wall_end"] - marks["wall"]
        cpu = marks["cpu_end"] - marks["cpu"]
        return _Run((count - 1) / wall, (count - 1) / cpu, count, stream.stats.dropped)

    return asyncio.run(main())


def _decode_only(frames: list[bytes]) -> float:
    start = time.perf_counter()
    n = 0
    for frame in frames:
        n += len(msgpack.unpackb(frame, timestamp=2, use_list=False))
    return n / (time.perf_counter() - start)


def _normalize_only(frames: list[bytes]) -> float:
    decoder = FrameDecoder()

    def sink(topic: str, record: object) -> None:
        return None

    start = time.perf_counter()
    n = 0
    for frame in frames:
        n += decoder.decode(frame, sink).published
    return n / (time.perf_counter() - start)


def test_alpaca_stream_messages_per_second_and_memory_with_a_slow_consumer():
    ctx = multiprocessing.get_context("spawn")
    ports = ctx.Queue()
    frames = build_frames()
    total = len(frames) * PER_FRAME
    runs = []
    for _ in range(2):  # a fresh server per run: each floods once
        server = ctx.Process(target=_serve, args=(ports, FRAMES), daemon=True)
        server.start()
        try:
            runs.append(_stream_once(ports.get(timeout=30), total))
        finally:
            server.terminate()
            server.join()
    best = max(runs, key=lambda r: r.rate)
    assert best.received + best.dropped == total
    decode_rate = max(_decode_only(frames) for _ in range(3))
    normalize_rate = max(_normalize_only(frames) for _ in range(3))

    # Slow consumer: ~25 us per quote (40k/s) against a feed sending as fast as it can.
    slow_frames = 100
    server = ctx.Process(target=_serve, args=(ports, slow_frames), daemon=True)
    server.start()
    try:
        port = ports.get(timeout=30)
        tracemalloc.start()
        slow = _stream_once(port, slow_frames * PER_FRAME, slow_us=25.0, queue_frames=8)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    finally:
        server.terminate()
        server.join()
    assert slow.received + slow.dropped == slow_frames * PER_FRAME
    unbounded = sum(len(f) for f in frames[:slow_frames])

    record(
        Figure(
            "alpaca_stream.msgs_per_s",
            best.rate,
            "msgs/s",
            "msgpack.unpackb only (same options)",
            decode_rate,
            best.rate / decode_rate,
            ">= 150,000 msgs/s (stretch 400,000)",
        )
    )
    record(
        Figure(
            "alpaca_stream.msgs_per_cpu_s",
            best.cpu_rate,
            "msgs/s",
            "msgpack.unpackb only (same options)",
            decode_rate,
            best.cpu_rate / decode_rate,
        )
    )
    record(
        Figure(
            "alpaca_stream.decode_normalize_msgs_per_s",
            normalize_rate,
            "msgs/s",
            "msgpack.unpackb only (same options)",
            decode_rate,
            normalize_rate / decode_rate,
        )
    )
    record(
        Figure(
            "alpaca_stream.slow_consumer_peak_mib",
            peak / 2**20,
            "MiB",
            "the frames an unbounded buffer would hold",
            unbounded / 2**20,
            peak / unbounded,
            f"bounded (dropped {slow.dropped:,} of {slow_frames * PER_FRAME:,} msgs)",
        )
    )
