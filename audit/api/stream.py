"""GET /api/v1/audit-events/stream (SPEC §8): Server-Sent Events of matching events as they are stored.

The request is an ordinary read (key or session, `read` scope, rate limit, the
filters checked before anything is sent, the access log). Its body is a generator:
under ASGI an async one, which waits on the event loop between reads and holds
neither a thread nor a database connection, so one process holds many streams;
under WSGI (the development server, tests) a plain one that polls, holding its
thread. Reading and resuming are audit/explore/live.py.
"""

import asyncio
import time

from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.db import connections
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema

from audit.accounts.caller import request_caller
from audit.api import serializers as s
from audit.api.base import READ_ERRORS, ReadView
from audit.events.wire import event_wire, wire_json
from audit.explore import live, selectors

RETRY_MS = 2000  # how soon a disconnected EventSource comes back


def _frames(read: live.StreamRead, position: int) -> bytes:
    """The events of a read as SSE frames; then, if the read went past the last match, a bare
    `id:` (no event is dispatched, but the client's Last-Event-ID moves on)."""
    chunks = [
        f"event: audit-event\nid: {event.seq}\ndata: {wire_json(event_wire(event))}\n\n" for event in read.events
    ]
    last = read.events[-1].seq if read.events else position
    if read.position != last:
        chunks.append(f"id: {read.position}\n\n")
    return "".join(chunks).encode()


def _opening(position: int) -> bytes:
    return f"retry: {RETRY_MS}\nid: {position}\n\n".encode()


async def _async_frames(org, filters, position):
    loop = asyncio.get_running_loop()
    hub = live.stored_hub()
    waiter = hub.waiter(org.pk)
    ends = loop.time() + settings.LENS_STREAM_MAX_SECONDS
    told = bool(live.redis_url())
    try:
        yield _opening(position)
        quiet_since = loop.time()
        while True:
            waiter.clear()  # before reading: a notice that arrives during the read is kept
            got = await hub.read(org=org, notice=hub.notice(org.pk), filters=filters, after=position,
                                 limit=settings.LENS_STREAM_READ_EVENTS)
            if got is None:
                return
            if got.position != position:
                yield _frames(got, position)
                position, quiet_since = got.position, loop.time()
                if len(got.events) == settings.LENS_STREAM_READ_EVENTS:
                    continue  # more are waiting
            remaining = ends - loop.time()
            if remaining <= 0:
                return
            # Told by Redis: read when woken, or at the keep-alive; untold: poll.
            wait = settings.LENS_STREAM_KEEPALIVE_SECONDS if told else settings.LENS_STREAM_POLL_SECONDS
            try:
                await asyncio.wait_for(waiter.wait(), timeout=min(wait, remaining))
            except TimeoutError:
                if loop.time() - quiet_since >= settings.LENS_STREAM_KEEPALIVE_SECONDS:
                    yield b": keep-alive\n\n"
                    quiet_since = loop.time()
    finally:
        hub.forget(org.pk, waiter)


def _sync_frames(org, filters, position):
    ends = time.monotonic() + settings.LENS_STREAM_MAX_SECONDS
    yield _opening(position)
    while True:
        got = live.stream_read(org=org, filters=filters, after=position, limit=settings.LENS_STREAM_READ_EVENTS)
        if got is None:
            return
        if got.position != position:
            yield _frames(got, position)
            position = got.position
            if len(got.events) == settings.LENS_STREAM_READ_EVENTS:
                continue
        remaining = ends - time.monotonic()
        if remaining <= 0:
            return
        time.sleep(min(settings.LENS_STREAM_POLL_SECONDS, remaining))
        yield b": keep-alive\n\n"


class AuditEventStreamView(ReadView):
    takes_filters = True

    @extend_schema(
        operation_id="audit_events_stream",
        summary="Live tail: matching events as they are stored",
        description=(
            "A `text/event-stream` (Server-Sent Events) of every event stored from now on that matches the filters "
            "(all of §3, `q` included), in the order they were stored: `event: audit-event`, `id: <resume token>`, "
            "`data: <the event, wire format>`. A bare `id:` line moves the token past events that did not match; "
            "`: keep-alive` comments keep proxies from closing a quiet stream. Reconnect with the last token in "
            "`Last-Event-ID` (an EventSource does it by itself) to get exactly what was stored meanwhile: no gap, no "
            "repeat. The server ends a stream after `LENS_STREAM_MAX_SECONDS` (an hour by default); reconnect. A "
            "token that is not one of this stream's is a 400. Relative `since` moves with time."
        ),
        parameters=[
            *s.FILTER_PARAMETERS,
            OpenApiParameter(
                live.LAST_EVENT_ID, OpenApiTypes.STR, location=OpenApiParameter.HEADER,
                description="The last `id:` received: resume after it.",
            ),
        ],
        responses={(200, "text/event-stream"): OpenApiResponse(OpenApiTypes.STR, description="The event stream."),
                   **READ_ERRORS},
    )
    def get(self, request, *args, **kwargs):
        org = request_caller(request).org
        filters = request.query_params.copy()
        selectors.event_list(org=org, filters=filters)  # a bad filter is a 400 now, not a broken stream later
        position = live.stream_start(org=org, last_event_id=request.headers.get(live.LAST_EVENT_ID))
        self.record(request, "event-stream")
        if isinstance(request._request, ASGIRequest):
            # Django closes a request's connection when its response ends: for a stream, hours
            # away. Close it now; the stream's reads open and close their own.
            connections.close_all()
            body = _async_frames(org, filters, position)
        else:
            body = _sync_frames(org, filters, position)
        response = StreamingHttpResponse(body, content_type="text/event-stream; charset=utf-8")
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"  # nginx: pass each frame on at once
        return response
