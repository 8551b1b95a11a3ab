"""Drives hookd's destinations and polling endpoints with the official Svix Python SDK, unchanged.

Run by the Rust integration test `compat::official_svix_sdk_drives_destinations_and_polling`
with HOOKD_URL and HOOKD_TOKEN set. Every call goes through the SDK's own models, so a response
the SDK cannot parse fails here. Prints one JSON line for the test to check; exits non-zero
(with the traceback) on any incompatibility.
"""

import json
import os
import sys
import time

from datetime import datetime, timedelta, timezone

from svix.api import (
    ApplicationIn,
    DestinationCreateOptions,
    DestinationListOptions,
    EventTypeIn,
    MessageIn,
    MessagePollerConsumerPollOptions,
    MessagePollerConsumerSeekOptions,
    MessagePollerPollOptions,
    Svix,
    SvixOptions,
)
from svix.exceptions import HttpError, HTTPValidationError
from svix.models import (
    DestinationIn,
    DestinationPatch,
    DestinationStatusIn,
    DestinationTransformIn,
    EndpointSecretRotateIn,
    FifoEndpointConfigIn,
    Ordering,
    SinkHttpConfigPatch,
    PollingEndpointConsumerSeekIn,
    PostgresConfigIn,
    PostgresConfigPatch,
    RabbitMqConfigIn,
    RabbitMqConfigPatch,
    SqsConfigIn,
)


def expect_error(kind, status, call):
    try:
        call()
    except kind as e:
        assert e.status_code == status, (e.status_code, status)
        return e
    raise AssertionError(f"expected {kind.__name__} {status}")


def main():
    svix = Svix(os.environ["HOOKD_TOKEN"], SvixOptions(server_url=os.environ["HOOKD_URL"]))
    svix.event_type.create(EventTypeIn(name="invoice.paid", description="An invoice was paid"))
    svix.event_type.create(EventTypeIn(name="invoice.voided", description="An invoice was voided"))
    svix.application.create(ApplicationIn(name="Ledger", uid="ledger"))

    # Create (with an idempotency key the SDK sends), get, list.
    created = svix.destination.create(
        "ledger",
        DestinationIn(
            type="pollingEndpoint",
            uid="ledger-feed",
            batch_size=50,
            event_types=["invoice.paid"],
            metadata={"team": "finance"},
        ),
        DestinationCreateOptions(idempotency_key="create-feed-1"),
    )
    assert created.type == "pollingEndpoint" and created.uid == "ledger-feed", created
    assert created.batch_size == 50 and created.metadata == {"team": "finance"}, created
    again = svix.destination.create(
        "ledger",
        DestinationIn(type="pollingEndpoint", uid="ledger-feed", batch_size=50,
                      event_types=["invoice.paid"], metadata={"team": "finance"}),
        DestinationCreateOptions(idempotency_key="create-feed-1"),
    )
    assert again.id == created.id, "the idempotency key replays the first answer"
    fetched = svix.destination.get("ledger", "ledger-feed")
    assert fetched.id == created.id
    listed = svix.destination.list("ledger", DestinationListOptions(limit=10, order=Ordering.ASCENDING))
    assert [d.id for d in listed.data] == [created.id], listed

    # Upsert (create and replace), patch (as the SDK always sends type + config), delete.
    spare = svix.destination.upsert("ledger", "spare", DestinationIn(type="pollingEndpoint"))
    assert spare.uid == "spare", spare
    replaced = svix.destination.upsert("ledger", "spare", DestinationIn(type="pollingEndpoint", batch_size=5))
    assert replaced.id == spare.id and replaced.batch_size == 5, replaced
    disabled = svix.destination.patch(
        "ledger", "spare", DestinationPatch(type="pollingEndpoint", status=DestinationStatusIn.DISABLED)
    )
    assert disabled.status == "disabled", disabled
    svix.destination.delete("ledger", "spare")
    expect_error(HttpError, 404, lambda: svix.destination.get("ledger", "spare"))

    # Unsupported types and operations are refused in shapes the SDK reads.
    refused = expect_error(
        HTTPValidationError,
        422,
        lambda: svix.destination.create(
            "ledger", DestinationIn(type="sqs", config=SqsConfigIn(queue_url="q", region="eu-west-1"))
        ),
    )
    assert "not supported" in refused.detail[0].msg, refused.detail
    no_key = expect_error(
        HttpError, 400, lambda: svix.destination.rotate_secret("ledger", "ledger-feed", EndpointSecretRotateIn())
    )
    assert no_key.code == "not_supported", no_key.code
    transformation = svix.destination.transformation.get("ledger", "ledger-feed")
    assert transformation.enabled is False and transformation.code is None
    svix.destination.transformation.patch("ledger", "ledger-feed", DestinationTransformIn(code=None))

    # Publish, then poll: the stateless poller with its iterator and filters.
    published = []
    for n in range(6):
        kind = "invoice.paid" if n % 2 == 0 else "invoice.voided"
        m = svix.message.create("ledger", MessageIn(event_type=kind, payload={"n": n}, channels=["eu"]))
        published.append((m.id, kind))
    paid = [mid for mid, kind in published if kind == "invoice.paid"]

    # On PostgreSQL the stream ends, for the moment, before the oldest transaction still running
    # anywhere in the cluster (a neighbouring test's): wait (bounded) until it shows them all.
    deadline = time.monotonic() + 20
    while True:
        seen = svix.message.poller.poll(
            "ledger", "ledger-feed", MessagePollerPollOptions(after=datetime.now(timezone.utc) - timedelta(hours=1))
        )
        if [m.id for m in seen.data] == paid or time.monotonic() > deadline:
            break
        time.sleep(0.05)

    first = svix.message.poller.poll("ledger", "ledger-feed", MessagePollerPollOptions(limit=2))
    assert [m.id for m in first.data] == paid[:2], first
    assert first.data[0].payload == {"n": 0} and first.data[0].event_type == "invoice.paid"
    rest = svix.message.poller.poll("ledger", "ledger-feed", MessagePollerPollOptions(iterator=first.iterator))
    assert [m.id for m in rest.data] == paid[2:] and rest.done, rest
    since = svix.message.poller.poll(
        "ledger",
        "ledger-feed",
        MessagePollerPollOptions(after=datetime.now(timezone.utc) - timedelta(hours=1), channel="eu",
                                 event_type="invoice.paid"),
    )
    assert [m.id for m in since.data] == paid, since

    # Consumers: hookd keeps the position; seek moves it back.
    c1 = svix.message.poller.consumer_poll(
        "ledger", "ledger-feed", "books", MessagePollerConsumerPollOptions(limit=1)
    )
    c2 = svix.message.poller.consumer_poll("ledger", "ledger-feed", "books")
    assert [m.id for m in c1.data] == paid[:1] and [m.id for m in c2.data] == paid[1:], (c1, c2)
    seek = svix.message.poller.consumer_seek(
        "ledger",
        "ledger-feed",
        "books",
        PollingEndpointConsumerSeekIn(after=datetime.now(timezone.utc) - timedelta(hours=1)),
        MessagePollerConsumerSeekOptions(idempotency_key="seek-books-1"),
    )
    assert seek.iterator, seek
    c3 = svix.message.poller.consumer_poll("ledger", "ledger-feed", "books")
    assert [m.id for m in c3.data] == paid, c3

    # A FIFO destination: created with the SDK's config model, read back as `SinkHttpConfigOut`,
    # its URL patched, its key rotated.
    fifo = svix.destination.create(
        "ledger",
        DestinationIn(
            type="fifoEndpoint",
            uid="ledger-fifo",
            event_types=["invoice.paid"],
            batch_size=5,
            max_wait_secs=0,
            config=FifoEndpointConfigIn(
                url=os.environ["RECEIVER_URL"],
                headers={"X-Ledger": "1"},
                key="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            ),
        ),
    )
    assert fifo.type == "fifoEndpoint" and fifo.config.url == os.environ["RECEIVER_URL"], fifo
    assert fifo.config.headers.headers == {"X-Ledger": "1"}, fifo.config
    moved = svix.destination.patch(
        "ledger", "ledger-fifo", DestinationPatch(type="fifoEndpoint", config=SinkHttpConfigPatch(url=os.environ["RECEIVER_URL"] + "?v=2"))
    )
    assert moved.config.url.endswith("?v=2"), moved.config
    rotated = svix.destination.rotate_secret("ledger", "ledger-fifo", EndpointSecretRotateIn(grace_period_seconds=0))
    assert rotated.key.startswith("whsec_") and rotated.key != "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", rotated
    fifo_ids = [
        svix.message.create("ledger", MessageIn(event_type="invoice.paid", payload={"fifo": n})).id for n in range(3)
    ]
    listed = svix.destination.list("ledger")
    assert {d.type for d in listed.data} == {"pollingEndpoint", "fifoEndpoint"}, listed

    # A RabbitMQ exchange and a PostgreSQL table, for voided invoices only.
    bus = svix.destination.create(
        "ledger",
        DestinationIn(
            type="rabbitMq",
            uid="ledger-bus",
            event_types=["invoice.voided"],
            config=RabbitMqConfigIn(uri=os.environ["RABBIT_URI"], routing_key=os.environ["RABBIT_QUEUE"], mandatory=True),
        ),
    )
    assert bus.type == "rabbitMq" and bus.config.routing_key == os.environ["RABBIT_QUEUE"], bus
    assert bus.config.mandatory is True and "********" in bus.config.uri, bus.config
    bus = svix.destination.patch("ledger", "ledger-bus", DestinationPatch(type="rabbitMq", config=RabbitMqConfigPatch(mandatory=False)))
    assert bus.config.mandatory is False and "********" in bus.config.uri, bus.config
    assert svix.destination.get("ledger", "ledger-bus").config.mandatory is False
    spare = svix.destination.create(
        "ledger",
        DestinationIn(type="rabbitMq", config=RabbitMqConfigIn(uri=os.environ["RABBIT_URI"], routing_key="spare")),
    )
    assert spare.config.mandatory is False, spare.config
    svix.destination.delete("ledger", spare.id)
    expect_error(HttpError, 404, lambda: svix.destination.get("ledger", spare.id))
    bus_key = svix.destination.rotate_secret("ledger", "ledger-bus", EndpointSecretRotateIn(grace_period_seconds=0)).key
    # The PostgreSQL table, when the test names a server.
    table_key = None
    if "PG_URL" in os.environ:
        table = svix.destination.create(
            "ledger",
            DestinationIn(
                type="postgres",
                uid="ledger-table",
                event_types=["invoice.voided"],
                batch_size=10,
                config=PostgresConfigIn(url=os.environ["PG_URL"], password="pw-from-the-sdk", table_name="wrong.place"),
            ),
        )
        assert table.type == "postgres" and table.config.table_name == "wrong.place", table
        assert "pw-from-the-sdk" not in table.model_dump_json(), table
        table = svix.destination.patch(
            "ledger", "ledger-table", DestinationPatch(type="postgres", config=PostgresConfigPatch(table_name=os.environ["PG_TABLE"]))
        )
        assert table.config.table_name == os.environ["PG_TABLE"] and table.config.url == os.environ["PG_URL"], table.config
        assert svix.destination.get("ledger", "ledger-table").config.table_name == os.environ["PG_TABLE"]
        table_key = svix.destination.rotate_secret("ledger", "ledger-table", EndpointSecretRotateIn(grace_period_seconds=0)).key
        scratch = svix.destination.create(
            "ledger",
            DestinationIn(type="postgres", config=PostgresConfigIn(url=os.environ["PG_URL"], table_name="scratch")),
        )
        svix.destination.delete("ledger", scratch.id)
        expect_error(HttpError, 404, lambda: svix.destination.get("ledger", scratch.id))
    voided = [
        svix.message.create("ledger", MessageIn(event_type="invoice.voided", payload={"voided": n})).id for n in range(2)
    ]
    listed = svix.destination.list("ledger", DestinationListOptions(limit=50))
    want = {"pollingEndpoint", "fifoEndpoint", "rabbitMq"} | ({"postgres"} if "PG_URL" in os.environ else set())
    assert {d.type for d in listed.data} == want, listed

    print(
        json.dumps(
            {
                "destination_id": created.id,
                "paid": paid,
                "fifo_key": rotated.key,
                "fifo_ids": fifo_ids,
                "bus_key": bus_key,
                "table_key": table_key,
                "voided": voided,
            }
        )
    )


if __name__ == "__main__":
    try:
        main()
    except Exception:
        import traceback

        traceback.print_exc()
        sys.exit(1)
