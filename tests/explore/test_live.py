"""StoredHub.read (audit/explore/live.py): the streams of one process that ask the same
question since the same notice share one database read; a notice, other filters or
another position make a read of their own. The reads themselves are tested through
the stream (tests/api/test_stream_api.py, tests/integration/test_live_tail.py)."""

import asyncio
import threading
import time

from django.http import QueryDict

from audit.explore import live


class Org:
    pk = 7


def test_streams_asking_the_same_question_share_one_read(monkeypatch):
    calls, lock = [], threading.Lock()

    def read(**question):  # stands in for the database: slow enough for the streams to meet
        with lock:
            calls.append(question)
        time.sleep(0.2)
        return live.StreamRead(events=[], position=question["after"] + 1)

    monkeypatch.setattr(live, "stream_read_closing", read)

    async def scene():
        hub = live.StoredHub(asyncio.get_running_loop())
        deny, alert = QueryDict("decision=deny"), QueryDict("decision=alert")

        def ask(filters, after=10):
            return hub.read(org=Org, notice=hub.notice(Org.pk), filters=filters, after=after, limit=100)

        same = await asyncio.gather(*[ask(deny.copy()) for _ in range(50)])
        assert len(calls) == 1 and {got.position for got in same} == {11}

        await asyncio.gather(ask(deny), ask(alert), ask(deny, after=11))
        assert len(calls) == 4  # other filters, another position: reads of their own

        first = asyncio.ensure_future(ask(deny))
        await asyncio.sleep(0.05)  # that read is under way when a notice comes
        hub.wake(Org.pk)
        await asyncio.gather(first, ask(deny))
        assert len(calls) == 6  # the stream woken by the notice does not take the older read's answer

        leaving = asyncio.ensure_future(ask(deny))
        staying = asyncio.ensure_future(ask(deny))
        await asyncio.sleep(0.05)
        leaving.cancel()  # a client that goes away does not cancel the read the others wait on
        assert (await staying).position == 11
        assert len(calls) == 7 and not hub.reading

    asyncio.run(scene())
