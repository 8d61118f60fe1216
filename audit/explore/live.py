"""The live tail (SPEC §8): matching events as they are stored, resumable without gap or repeat.

The database is the source of truth. An organization's events carry `seq`, their
place in its hash chain, assigned under the chain lock in commit order, so the
committed events are always seq 1..head with no hole: "everything after seq N"
read at any moment is exactly what a client that saw up to N has missed. The
resume token is that seq (SSE `id:`, sent back as `Last-Event-ID`).

Being told is for promptness only. The worker calls `events_stored` after each
commit (a LENS_AFTER_STORE listener): it publishes the organization's new head on
Redis (LENS_LIVE_REDIS_URL; the Celery broker's by default) and wakes the streams
of its own process. Each web process keeps ONE Redis subscription (StoredHub) and
wakes the streams of that organization, which then read the database: one read for
all of them that ask the same question from the same place (StoredHub.read). Without
Redis (the embedded default), or a notice lost, a stream reads the database every
LENS_STREAM_POLL_SECONDS anyway.
"""

import asyncio
import logging
import threading
import weakref
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections, connections

from audit.accounts.models import Organization
from audit.explore import selectors
from audit.explore.vocabulary import ParameterError

logger = logging.getLogger(__name__)
CHANNEL_PREFIX = "lens:stored:"
LAST_EVENT_ID = "Last-Event-ID"


# --- reading -------------------------------------------------------------------------


@dataclass(frozen=True)
class StreamRead:
    events: list  # matching AuditEvents after the position, in seq order
    position: int  # the seq read up to: the new resume token


def stream_start(*, org: Organization, last_event_id: str | None) -> int:
    """Where a stream begins: after `last_event_id` when resuming, else at the current head
    (events stored from now on). A token that is not one of ours is a ParameterError."""
    head = Organization.objects.filter(pk=org.pk).values_list("chain_seq", flat=True).get()
    if last_event_id is None or last_event_id == "":
        return head
    text = last_event_id.strip()
    if not text.isdigit() or len(text) > 19 or int(text) > head:
        raise ParameterError.one(LAST_EVENT_ID, "is not a resume token of this stream: reconnect without it")
    return int(text)


def stream_read(*, org: Organization, filters: Mapping | None, after: int, limit: int) -> StreamRead | None:
    """The matching events stored after seq `after` (at most `limit`), and the position they
    reach: past the non-matching events too, up to the head read first, so a resume never
    rescans them. None once the organization is gone: the stream ends."""
    head = Organization.objects.filter(pk=org.pk).values_list("chain_seq", flat=True).first()
    if head is None:
        return None
    if head <= after:
        return StreamRead(events=[], position=after)
    events = list(
        selectors.event_list(org=org, filters=filters).filter(seq__gt=after, seq__lte=head).order_by("seq")[:limit]
    )
    position = events[-1].seq if len(events) == limit else head
    return StreamRead(events=events, position=position)


def stream_read_closing(**kwargs) -> StreamRead | None:
    """`stream_read` from a thread of the async streams' pool: a stream holds no database
    connection while it waits (a thousand streams must not be a thousand connections)."""
    close_old_connections()
    try:
        return stream_read(**kwargs)
    finally:
        connections.close_all()


# --- being told ----------------------------------------------------------------------


def redis_url() -> str:
    url = settings.LENS_LIVE_REDIS_URL
    return url if url.startswith(("redis://", "rediss://", "unix://")) else ""


_publisher = None
_publisher_lock = threading.Lock()


def events_stored(stored) -> None:
    """LENS_AFTER_STORE listener: tell the streams that the organization's head moved."""
    for hub in list(_hubs.values()):  # streams of this process (the embedded default stores in-process)
        hub.wake_threadsafe(stored.org_id)
    url = redis_url()
    if not url:
        return
    global _publisher
    with _publisher_lock:
        if _publisher is None:
            import redis

            _publisher = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    try:
        _publisher.publish(f"{CHANNEL_PREFIX}{stored.org_id}", str(stored.last_seq))
    except Exception:  # promptness only: the streams poll
        logger.warning("could not publish stored events of org %s", stored.org_id, exc_info=True)


def _question(filters) -> tuple:
    """A stream's filters (a QueryDict) as a key."""
    return tuple(sorted((name, tuple(values)) for name, values in filters.lists())) if filters else ()


class StoredHub:
    """The streams of one event loop, by organization, and the one Redis subscription that wakes them."""

    def __init__(self, loop):
        self.loop = loop
        self.waiting: dict[int, set[asyncio.Event]] = defaultdict(set)
        self.notices: dict[int, int] = defaultdict(int)  # wakes per organization so far
        self.reading: dict[tuple, asyncio.Future] = {}
        self.listener = None

    def waiter(self, org_id: int) -> asyncio.Event:
        if self.listener is None and redis_url():
            self.listener = self.loop.create_task(self._listen())
        event = asyncio.Event()
        self.waiting[org_id].add(event)
        return event

    def forget(self, org_id: int, event: asyncio.Event) -> None:
        self.waiting[org_id].discard(event)
        if not self.waiting[org_id]:
            del self.waiting[org_id]

    def notice(self, org_id: int) -> int:
        """How many times the organization's streams were woken: taken by a stream as it
        clears its waiter, it names the reads that already know what the notices told."""
        return self.notices[org_id]

    async def read(self, *, org: Organization, notice: int, filters, after: int, limit: int) -> StreamRead | None:
        """`stream_read` in a pool thread, shared: a notice wakes all of an organization's streams
        at once, and those asking the same question (the same filters from the same position,
        e.g. one page open in many tabs) since the same notice wait on one database read."""
        key = (org.pk, notice, _question(filters), after, limit)
        pending = self.reading.get(key)
        if pending is None:
            read = sync_to_async(stream_read_closing, thread_sensitive=False)
            pending = self.reading[key] = asyncio.ensure_future(
                read(org=org, filters=filters, after=after, limit=limit)
            )
            pending.add_done_callback(lambda _: self.reading.pop(key, None))
        return await asyncio.shield(pending)  # one stream leaving does not cancel the others' read

    def wake(self, org_id: int) -> None:
        self.notices[org_id] += 1
        for event in self.waiting.get(org_id, ()):
            event.set()

    def wake_threadsafe(self, org_id: int) -> None:
        if org_id in self.waiting and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.wake, org_id)

    async def _listen(self):
        import redis.asyncio

        while True:
            try:
                client = redis.asyncio.Redis.from_url(redis_url())
                async with client.pubsub() as pubsub:
                    await pubsub.psubscribe(f"{CHANNEL_PREFIX}*")
                    async for message in pubsub.listen():
                        if message.get("type") == "pmessage":
                            channel = message["channel"].decode()
                            self.wake(int(channel[len(CHANNEL_PREFIX) :]))
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("live tail: Redis subscription lost; streams poll until it is back", exc_info=True)
                await asyncio.sleep(1)


_hubs: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, StoredHub]" = weakref.WeakKeyDictionary()


def stored_hub() -> StoredHub:
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        hub = _hubs[loop] = StoredHub(loop)
    return hub
