"""One Connection shared by threads, and by a parent and its forked child."""

from __future__ import annotations

import hashlib
import os
import random
import struct
import threading
import time
import uuid

import pytest
import redis

import tickpub
from tests._pubsub import Subscriber
from tests.conftest import ServerFactory

THREADS = 8
PER_THREAD = 2000


def checksummed(thread: int, seq: int, rng: random.Random) -> bytes:
    # Sizes on both sides of the 2 KiB line between copied and borrowed payloads.
    body = rng.randbytes(rng.choice([8, 300, 2047, 2048, 6000]))
    head = struct.pack("<II", thread, seq)
    return head + body + hashlib.sha256(head + body).digest()


def test_threads_sharing_one_connection_never_interleave_frames(
    server_factory: ServerFactory,
) -> None:
    server = server_factory(extra_args=["--client-output-buffer-limit", "pubsub 0 0 0"])
    conn = tickpub.connect(server.url)
    failures: list[BaseException] = []

    def publisher(thread: int) -> None:
        rng = random.Random(thread)
        try:
            for seq in range(PER_THREAD):
                assert conn.publish_bytes("shared", checksummed(thread, seq, rng)) == 1
        except BaseException as err:
            failures.append(err)

    with Subscriber(server.url, "shared") as sub:
        workers = [
            threading.Thread(target=publisher, args=(t,)) for t in range(THREADS)
        ]
        for worker in workers:
            worker.start()
        received = sub.receive(THREADS * PER_THREAD, timeout=120)
        for worker in workers:
            worker.join()

    assert failures == []
    assert len(received) == THREADS * PER_THREAD
    next_seq = [0] * THREADS
    for payload in received:
        body, digest = payload[:-32], payload[-32:]
        assert hashlib.sha256(body).digest() == digest
        thread, seq = struct.unpack("<II", body[:8])
        assert seq == next_seq[thread]
        next_seq[thread] += 1
    assert conn.stats()["messages"] == THREADS * PER_THREAD


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_opens_its_own_connection(redis_url: str) -> None:
    name = f"fork-{uuid.uuid4().hex[:8]}"
    channel = f"fork-{uuid.uuid4().hex}"
    conn = tickpub.connect(redis_url, client_name=name)
    admin = redis.Redis.from_url(redis_url)
    parent_id = next(c["id"] for c in admin.client_list() if c["name"] == name)

    with Subscriber(redis_url, channel) as sub:
        assert conn.publish_bytes(channel, b"parent-1") == 1
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            status = 1
            try:
                os.close(read_end)
                count = conn.publish_bytes(channel, b"child")
                child = redis.Redis.from_url(redis_url)
                ids = sorted(c["id"] for c in child.client_list() if c["name"] == name)
                os.write(write_end, f"{count} {' '.join(ids)}".encode())
                status = 0
            finally:
                os._exit(status)
        os.close(write_end)
        with os.fdopen(read_end) as pipe:
            report = pipe.read().split()
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0

        assert report[0] == "1"
        ids = report[1:]
        assert len(ids) == 2
        assert parent_id in ids
        assert conn.publish_bytes(channel, b"parent-2") == 1
        assert sub.receive(3) == [b"parent-1", b"child", b"parent-2"]
    assert conn.stats()["reconnects"] == 0
    # The child's connection closed when it exited; the parent's is still the same.
    deadline = time.monotonic() + 10
    while len(ids_after := named_ids(admin, name)) > 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ids_after == [parent_id]
    admin.close()


def named_ids(client: redis.Redis, name: str) -> list[str]:
    return [c["id"] for c in client.client_list() if c["name"] == name]
