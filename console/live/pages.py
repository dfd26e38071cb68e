"""``/ws/live/``: browsers and token clients (scripts), only for hosts of the user's teams.

Every text to a page goes through ``jsontext.dumps``; faults are counted
and logged by ``health``; subscribes have a rate limit (``limits``).

A page must never freeze with a status that says OK. Its channel-layer
groups live in Redis, and a Redis restart takes them away without telling
anybody: the receive loop then waits for ever on a channel nothing sends
to. So each connection joins its groups again every ``STORE_CHECK_INTERVAL``
seconds (``group_add`` is idempotent), and its status messages say what the
store's Redis is worth (``console.windows.durability``): whether it would
lose acknowledged data, and from when it has data after losing it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import get_channel_layer
from channels.utils import await_many_dispatch
from redis.exceptions import RedisError

from console.windows import durability

from . import auth, groups, publish, queries, tabs
from .health import error_message, faults
from .jsontext import dumps
from .limits import SLOW_DOWN, SubscribeLimit
from .messages import FleetSnapshot, PageHello, Status
from .store import StoreUnavailable, store_kind, window_store

log = logging.getLogger("console.live")

try:  # daphne's WebSocket layer raises this when a send meets a closed connection
    from autobahn.exception import Disconnected as _Disconnected
except ImportError:  # pragma: no cover - another ASGI server
    _Disconnected = OSError  # type: ignore[assignment,misc]
_GONE = (_Disconnected, ConnectionError)

#: Seconds between a live consumer's checks of the window store (and re-joins of its groups).
STORE_CHECK_INTERVAL = 3.0
#: Seconds between attempts to receive from a channel layer that failed.
LAYER_RETRY = 1.0
#: Seconds a re-join may take: the layer waits without a socket timeout (settings), and a
#: Redis that hangs must not hold a page's subscribes behind the lock for ever.
REJOIN_TIMEOUT = 5.0
#: Seconds a store check may take before the page is told the store does not answer: a
#: healthy check takes milliseconds, a Redis that is down fails its ping at once.
CHECK_TIMEOUT = 6.0


class LiveConsumer(AsyncJsonWebsocketConsumer):
    """``/ws/live/``: pages and token clients; only hosts of the user's teams."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Channels' consumer loop, with a channel-layer receive that survives a Redis outage.

        The stock loop lets the layer's connection error end the consumer
        (the page sees a bare 1011). Here the page is told, the connection
        stays up, and the groups are joined again when Redis is back.
        """
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        self.channel_name = await self.channel_layer.new_channel()
        self.base_send = self.dropping_when_gone(send)
        self.layer_ok = True
        #: what the page was last told: store up (and layer) and what the store's Redis keeps
        self.told: tuple[bool, durability.StoreStateMessage | None] = (True, None)
        with contextlib.suppress(StopConsumer):
            await await_many_dispatch([receive, self.layer_receive], self.dispatch)

    @staticmethod
    def dropping_when_gone(send: Any) -> Any:
        """The server's send, but a message for a connection that has closed meanwhile (the page
        went away while its answer was being built) is dropped, not raised: that page needs
        nothing more, and its disconnect is on its way to ``websocket_disconnect``."""
        async def send_or_drop(message: dict[str, Any]) -> None:
            try:
                await send(message)
            except _GONE:
                log.debug("a %s for a connection that has gone away was not sent", message.get("type"))
        return send_or_drop

    async def layer_receive(self) -> dict[str, Any]:
        while True:
            try:
                message = await self.channel_layer.receive(self.channel_name)
            except (OSError, RedisError) as exc:
                if self.layer_ok:
                    self.layer_ok = False
                    log.warning("channel layer unavailable: %s", exc)
                    await self.report_store(False)
                await asyncio.sleep(LAYER_RETRY)
                continue
            if not self.layer_ok:
                self.layer_ok = True
                await self.rejoin()
                await self.report_store(await self.store.aping())
            return message

    async def report_store(self, ok: bool, state: durability.StoreState | None = None,
                           reason: str | None = None) -> None:
        """A ``status``: the store up or down and, when it could be read, what its Redis keeps."""
        if not ok and reason is None:
            reason = "window store unavailable; agents are spooling"
        message: Status = {"type": "status", "store_ok": ok, "now": time.time(), "reason": reason}
        if state is not None:
            message.update(state.message())
        try:
            await self.send_json(message)
        except Exception as exc:  # not sent: the next check tells it again (told is unchanged)
            faults.caught("store status", None, exc)
            return
        self.told = (ok, self.told[1] if state is None else state.message())

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or not user.is_active:
            await self.close()
            return
        self.user = user
        self.store = window_store()
        self.joined: list[str] = []
        #: join, leave and the periodic re-join take turns: a re-join must not bring back
        #: a group a new subscribe has just left
        self.groups_lock = asyncio.Lock()
        self.limit = SubscribeLimit()
        #: set once the connection is closed for flooding: what was queued behind is ignored
        self.closing = False
        await self.accept()
        known = durability.known_state(self.store)
        self.told = (True, known.message() if known is not None else None)
        hello: PageHello = {"type": "hello", "user": user.get_username(), "store": store_kind(),
                            "single_process": store_kind() == "memory", "now": time.time(),
                            "online_within": publish.ONLINE_WITHIN}
        if self.told[1] is not None:
            hello.update(self.told[1])
        await self.send_json(hello)
        self.watcher = asyncio.create_task(self.watch_store())
        # a revoked token, a closed session, a user who lost a team: closed within seconds (auth.py)
        self.guard = auth.watch(lambda: auth.page_verdict(self.scope, list(self.joined)), self.revoked)

    async def revoked(self, code: int) -> None:
        self.closing = True
        await self.leave()  # nothing more of what it may no longer see, even before the close lands
        await self.close(code, "signed out, or the token was revoked" if code == auth.REVOKED
                         else "no longer allowed to see this; reload the page")

    async def disconnect(self, code: int) -> None:
        for task in (getattr(self, "watcher", None), getattr(self, "guard", None)):
            if task is not None and task is not asyncio.current_task():
                task.cancel()
        await self.leave()

    async def watch_store(self) -> None:
        """Tell the page when the window store goes away and comes back, and what its Redis
        keeps; join the page's groups again, so a Redis restart costs it a few seconds.

        Checked by each consumer itself: when Redis is down the channel
        layer (also Redis) cannot carry the news either. The first check is
        at once: the page's ``hello`` had only what this process knew before.
        A check runs as a task of its own and is waited for at most
        CHECK_TIMEOUT: whatever a client library does with a dead Redis (a
        retry that outlives its timeout, a swallowed cancellation), the page
        is told the store does not answer, and no second check piles up
        behind a stuck one.
        """
        check: asyncio.Task[tuple[bool, durability.StoreState | None, str | None]] | None = None
        started = 0.0
        try:
            while True:
                stuck = check is not None and time.monotonic() - started > 2 * CHECK_TIMEOUT
                if check is None or check.done() or stuck:
                    if check is not None:
                        check.cancel()  # stuck: a new check, or the page stays "down" for ever
                    check, started = asyncio.create_task(self.check_store()), time.monotonic()
                try:
                    done, _ = await asyncio.wait({check}, timeout=CHECK_TIMEOUT)
                    if check in done:
                        ok, state, reason = check.result()
                    else:
                        ok, state, reason = False, None, "window store does not answer; agents are spooling"
                    if ok != self.told[0] or (state is not None and state.message() != self.told[1]):
                        await self.report_store(ok, state, reason)
                except Exception as exc:  # the console's bug: the next check comes as usual
                    faults.caught("store check", None, exc)
                await asyncio.sleep(STORE_CHECK_INTERVAL)
        finally:  # the page left: a check still running is of no use to anyone
            if check is not None:
                check.cancel()

    async def check_store(self) -> tuple[bool, durability.StoreState | None, str | None]:
        """(store up, what its Redis keeps, why not up); the page's groups joined again."""
        ok = await self.store.aping()
        state = await durability.store_state(self.store) if ok else None
        # with the store down, say so now: a re-join would only wait for its timeout
        if ok and not await self.rejoin():
            return False, state, "live updates unavailable: the channel layer does not answer"
        return ok, state, None

    async def _add(self, group: str) -> None:
        try:
            await self.channel_layer.group_add(group, self.channel_name)
        except (OSError, RedisError):
            # A pooled connection that died with Redis fails once; the retry gets a new one.
            await self.channel_layer.group_add(group, self.channel_name)

    async def rejoin(self) -> bool:
        """Join the page's groups again; False while the channel layer cannot be reached."""
        try:  # the lock too: a join stuck on a dead layer must not hold the check for ever
            async with asyncio.timeout(REJOIN_TIMEOUT), self.groups_lock:
                for group in self.joined:
                    await self._add(group)
        except (OSError, RedisError, TimeoutError):
            return False
        return True

    async def _leave(self) -> None:
        for group in getattr(self, "joined", []):
            with contextlib.suppress(OSError, RedisError):  # gone with Redis anyway
                await self.channel_layer.group_discard(group, self.channel_name)
        self.joined = []

    async def leave(self) -> None:
        if not hasattr(self, "groups_lock"):  # closed before connect finished
            return
        async with self.groups_lock:
            await self._leave()

    async def join(self, groups: list[str]) -> None:
        """Leave the previous groups and join ``groups``; kept as the page's groups even when
        the layer fails now, so the periodic re-join brings them once Redis is back."""
        async with self.groups_lock:
            await self._leave()
            self.joined = groups
            for group in groups:
                await self._add(group)

    @classmethod
    async def encode_json(cls, content: Any) -> str:
        """Every message of this consumer as strict, bounded JSON (``jsontext``)."""
        return dumps(content)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None,
                      **kwargs: Any) -> None:
        """Rate-limited before anything is decoded: a flood costs a token check a message."""
        if self.closing:
            return
        verdict = self.limit.check()
        if verdict == SubscribeLimit.CLOSE:
            faults.refuse("page over its subscribe limit", "closed")
            self.closing = True
            await self.close(SLOW_DOWN, "too many subscribes; slow down")
            return
        if verdict == SubscribeLimit.REFUSE:
            faults.refuse("page over its subscribe limit", "a message was answered with an error")
            await self.send_json(error_message(
                f"too many messages: at most {self.limit.rate:g} a second; this one was not acted on"))
            return
        try:
            content = json.loads(text_data) if text_data else None
        except (ValueError, RecursionError):
            content = None
        await self.receive_json(content)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if not isinstance(content, dict) or content.get("type") not in ("subscribe", "unsubscribe"):
            await self.send_json({"type": "error", "reason": "expected subscribe or unsubscribe"})
            return
        try:
            if content["type"] == "unsubscribe":
                await self.leave()
            elif content.get("scope") == "fleet":
                await self.subscribe_fleet()
            elif content.get("scope") == "host":
                await self.subscribe_host(content)
            else:
                await self.send_json({"type": "error", "reason": "scope must be fleet or host"})
        except (StoreUnavailable, OSError, RedisError):  # the store's or the channel layer's Redis
            await self.report_store(False)
        except Exception as exc:  # the console's bug: this answer is lost, the connection is not
            faults.caught("subscribe", None, exc)
            await self.send_json(error_message("the console could not answer this subscribe "
                                               "(internal error, logged)"))

    async def subscribe_fleet(self) -> None:
        hosts = await queries.visible_hosts(self.user)
        await self.join(groups.fleet_groups(self.user, hosts))
        entries = await publish.fleet_entries(self.store, hosts, time.time())
        snapshot: FleetSnapshot = {"type": "fleet.snapshot", "now": time.time(), "hosts": entries}
        await self.send_json(snapshot)

    async def subscribe_host(self, content: dict[str, Any]) -> None:
        host = await queries.visible_host(self.user, content.get("host"))
        if host is None:
            await self.send_json({"type": "error", "reason": "no such host"})
            return
        request = tabs.TabRequest.from_message(content, tabs.TABS)
        await self.join([groups.host_group(host["id"]), groups.tab_group(host["id"], request.tab)])
        now = time.time()
        await self.send_json(await publish.host_snapshot(self.store, host, request, now))
        await self.send_json(await tabs.tab_snapshot(self.store, host, request, now))

    async def live_text(self, event: dict[str, Any]) -> None:
        """Frames built once by the publisher, sent as they are to every subscriber."""
        await self.send(text_data=event["text"])
