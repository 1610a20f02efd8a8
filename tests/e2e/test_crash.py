"""Crash safety: `kill -9` during a sustained ingest loses nothing acknowledged and stores
nothing twice, three times in a row on the same data directory."""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import urllib3

from e2e_helpers import IMPORTER, by_attr, make_record, utcnow

USERNAME = "crash-user"
THREADS = 4
BATCH = 50
RUN_SECONDS_BEFORE_KILL = 2.0
MAX_BATCHES_PER_THREAD = 2000  # bounds the load even on a very fast machine


@dataclass
class Ledger:
    """What the clients sent and what the server acknowledged."""

    sent: set[str] = field(default_factory=set)
    acked: set[str] = field(default_factory=set)
    throttled: int = 0
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def writer(server, ledger: Ledger, cycle: int, worker: int, stop: threading.Event) -> None:
    http = urllib3.PoolManager(retries=False, maxsize=1)
    base = utcnow() - dt.timedelta(minutes=10)
    for seq in range(MAX_BATCHES_PER_THREAD):
        if stop.is_set():
            return
        records = [
            make_record(
                event_time=base + dt.timedelta(milliseconds=seq * BATCH + i),
                event_name="PutObjectAcl",
                event_source="s3.amazonaws.com",
                username=USERNAME,
                read_only=False,
                event_id=f"crash-{cycle}-{worker}-{seq}-{i}-{uuid.uuid4().hex[:8]}",
                requestParameters={"cycle": cycle, "worker": worker, "seq": seq, "i": i},
            )
            for i in range(BATCH)
        ]
        ids = [r["eventID"] for r in records]
        with ledger.lock:
            ledger.sent.update(ids)
        try:
            result = server.ingest(records, http=http, timeout=30)
        except (urllib3.exceptions.HTTPError, OSError):
            return  # the server is gone: nothing of this batch was acknowledged
        if result.status == 200:
            body = result.json()
            acked = {
                r["eventId"] for r in body["results"] if r["status"] in ("accepted", "duplicate")
            }
            with ledger.lock:
                ledger.acked.update(acked)
                if len(acked) != len(ids):
                    ledger.errors.append(f"batch partly refused: {result.text[:500]}")
        elif result.error_code() == "ThrottlingException":
            with ledger.lock:
                ledger.throttled += 1
            time.sleep(0.05)
        else:
            with ledger.lock:
                ledger.errors.append(result.describe())
            return


def stored_crash_events(server) -> Counter:
    client = server.client("us-east-1")
    counts: Counter = Counter()
    for page in client.get_paginator("lookup_events").paginate(
        LookupAttributes=by_attr("Username", USERNAME)
    ):
        counts.update(e["EventId"] for e in page["Events"])
    return counts


def test_kill_9_during_sustained_ingest_loses_no_acknowledged_event(server):
    ledger = Ledger()
    for cycle in range(3):
        stop = threading.Event()
        threads = [
            threading.Thread(target=writer, args=(server, ledger, cycle, w, stop), daemon=True)
            for w in range(THREADS)
        ]
        acked_before = len(ledger.acked)
        for thread in threads:
            thread.start()
        time.sleep(RUN_SECONDS_BEFORE_KILL)
        server.kill()
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
            assert not thread.is_alive(), "a writer did not notice the server was gone"
        assert not ledger.errors, ledger.errors[:5]
        assert len(ledger.acked) > acked_before, (
            f"cycle {cycle}: nothing was acknowledged in {RUN_SECONDS_BEFORE_KILL} s "
            f"({ledger.throttled} throttled)"
        )

        server.start()  # same data dir, same port

        # Recovery may replay the journal into the index; give it a bounded moment.
        deadline = time.monotonic() + 30
        while True:
            counts = stored_crash_events(server)
            missing = ledger.acked - counts.keys()
            if not missing or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        twice = {event_id: n for event_id, n in counts.items() if n > 1}
        unknown = counts.keys() - ledger.sent
        assert not missing, (
            f"cycle {cycle}: {len(missing)} of {len(ledger.acked)} acknowledged events lost after kill -9, "
            f"e.g. {sorted(missing)[:5]}"
        )
        assert not twice, f"cycle {cycle}: stored more than once: {dict(list(twice.items())[:5])}"
        assert not unknown, f"cycle {cycle}: events nobody sent: {sorted(unknown)[:5]}"
        print(
            f"cycle {cycle}: sent {len(ledger.sent)}, acknowledged {len(ledger.acked)}, "
            f"stored {len(counts)}, throttled batches {ledger.throttled}"
        )

        # A client that never saw its acknowledgement retries: the retry is a duplicate.
        retry = [
            make_record(event_time=utcnow(), username=USERNAME, event_id=event_id)
            for event_id in sorted(ledger.acked)[:BATCH]
        ]
        summary = server.ingest_ok(retry, creds=IMPORTER)
        assert [r["status"] for r in summary["results"]] == ["duplicate"] * len(retry), summary
        assert stored_crash_events(server) == counts
