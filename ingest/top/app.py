"""``top`` in a terminal: curses, one view at a time, keys as ``?`` lists them.

Data keeps arriving whatever is shown: a pause freezes the lines on
screen (and says how many messages came meanwhile), it does not stop the
connection. Drawing happens at most twice a second and after each key.
"""

from __future__ import annotations

import asyncio
import contextlib
import curses
import os
from typing import Any

from ..model.fields import PHASES
from . import views
from .client import Link, Target
from .model import WINDOWS, Model

VIEW_KEYS = {"o": "overview", "1": "overview", "p": "processes", "2": "processes", "w": "workers",
             "3": "workers", "l": "latency", "4": "latency", "s": "slow", "5": "slow", "g": "gc", "6": "gc",
             "e": "events", "7": "events", "f": "fleet", "8": "fleet"}
#: Seconds between draws of arriving data (a key redraws at once).
DRAW_EVERY = 0.5
VIEWS = ("overview", "processes", "workers", "latency", "slow", "gc", "events", "fleet")
HELP = (
    "views:  o/1 overview   p/2 processes   w/3 workers   l/4 latency   s/5 slow   g/6 gc",
    "        e/7 lifecycle events   f/8 fleet (every host you may see)",
    "space   pause / resume the display (data keeps arriving)",
    "< >     change the sort (processes, fleet, slow) or the window (overview, latency)",
    "T C M P S I   sort processes by throughput, cpu, memory, p95, slow, pid;  r  reverse",
    "[ ]     latency: previous / next phase",
    "f       (slow view) state filter: any, active, completed, expired;  / search URL, Esc clears",
    "up down PgUp PgDn Home End   scroll",
    "?       this help          q  quit",
)
STYLES = {"head": curses.A_BOLD, "dim": curses.A_DIM}


class App:
    def __init__(self, target: Target, host: str | None, group: str, color: bool) -> None:
        self.target, self.wanted_host, self.group = target, host, group
        self.model = Model()
        self.state = views.ViewState(view="overview" if host or target.local else "fleet")
        self.link = Link(target, self.received, self.connection_state)
        self.status = "connecting"
        self.color = color
        self.paused: list[views.Line] | None = None
        self.paused_at = 0
        self.help = False
        self.typing: str | None = None  # the slow view's URL search being typed
        self.host_id: Any = None
        self.quit = asyncio.Event()
        self.dirty = asyncio.Event()
        self.link.wanted = self.subscription()

    # -- data ----------------------------------------------------------------------------------------

    def connection_state(self, state: str) -> None:
        self.status = state
        self.dirty.set()

    def subscription(self) -> dict[str, Any]:
        if self.state.view == "fleet" or (self.host_id is None and not self.target.local):
            return {"type": "subscribe", "scope": "fleet"}
        return {"type": "subscribe", "scope": "host", "host": self.host_id, "tab": "top", "group": self.group,
                "window": 600, "points": max(60, getattr(curses, "COLS", 80) - 30)}

    def received(self, message: dict[str, Any]) -> None:
        self.model.apply(message)
        kind = message.get("type")
        if kind == "fleet.snapshot" and self.wanted_host and self.host_id is None:
            found = self.model.find_host(self.wanted_host)
            if found is not None:
                self.host_id = found["id"]
                if self.state.view != "fleet":
                    self.link.ask(self.subscription())
            else:
                self.status = f"no host {self.wanted_host!r} among the hosts you may see"

    # -- keys ----------------------------------------------------------------------------------------

    def key(self, ch: int) -> None:
        s = self.state
        if self.typing is not None:
            self.type_key(ch)
            return
        c = chr(ch) if 0 <= ch < 256 else "\0"  # never "" (which is "in" every string)
        if c == "q":
            self.quit.set()
        elif c == "?" or c == "h":
            self.help = not self.help
        elif c == " ":
            self.paused = None if self.paused is not None else self.lines()
            self.paused_at = self.model.received
        elif c == "f" and s.view == "slow":
            s.slow_state = _next(views.SLOW_STATES, s.slow_state, 1)
        elif c == "/" and s.view == "slow":
            self.typing = ""
        elif c in VIEW_KEYS:
            self.switch(VIEW_KEYS[c])
        elif c in "<>,.":
            self.step(1 if c in ">." else -1)
        elif c in views.SORT_KEYS:
            s.sort = views.SORT_KEYS[c]
        elif c == "r":
            s.reverse = not s.reverse
        elif c in "[]":
            s.phase = _next(PHASES, s.phase, 1 if c == "]" else -1)
        elif ch in (curses.KEY_DOWN, ord("j")):
            s.scroll += 1
        elif ch in (curses.KEY_UP, ord("k")):
            s.scroll = max(0, s.scroll - 1)
        elif ch == curses.KEY_NPAGE:
            s.scroll += curses.LINES - 8
        elif ch == curses.KEY_PPAGE:
            s.scroll = max(0, s.scroll - (curses.LINES - 8))
        elif ch == curses.KEY_HOME:
            s.scroll = 0
        elif ch == curses.KEY_END:
            s.scroll = 1 << 30
        elif ch == curses.KEY_RESIZE:
            curses.update_lines_cols()
        self.dirty.set()

    def type_key(self, ch: int) -> None:
        if ch == 27:  # Esc: the search is cleared
            self.typing, self.state.search = None, ""
        elif ch in (10, 13, curses.KEY_ENTER):
            self.typing, self.state.search = None, self.typing or ""
        elif ch in (curses.KEY_BACKSPACE, 127, 8):
            self.typing = (self.typing or "")[:-1]
        elif 32 <= ch < 0x110000:
            self.typing = (self.typing or "") + chr(ch)

    def switch(self, view: str) -> None:
        was_fleet = self.state.view == "fleet"
        self.state.view, self.state.scroll = view, 0
        if view == "fleet" or was_fleet:
            self.model.host = None if view == "fleet" else self.model.host
            self.link.ask(self.subscription())

    def step(self, by: int) -> None:
        s = self.state
        if s.view in ("overview", "latency"):
            s.window = _next(WINDOWS, s.window, by)
        elif s.view == "fleet":
            s.fleet_sort = _next(views.FLEET_SORTS, s.fleet_sort, by)
        elif s.view == "slow":
            s.slow_sort = _next(views.SLOW_SORTS, s.slow_sort, by)
        else:
            s.sort = _next(views.PROCESS_SORTS, s.sort, by)

    # -- drawing -------------------------------------------------------------------------------------

    def lines(self) -> list[views.Line]:
        """The view's lines; a view that fails says so in its place (the monitor goes on)."""
        try:
            return self.view_lines()
        except Exception as exc:  # a bug of this view: the others, and the connection, go on
            return [(f"  this view failed: {type(exc).__name__}: {exc}"[:300], "bad")]

    def view_lines(self) -> list[views.Line]:
        s, m, width = self.state, self.model, curses.COLS
        body = {"overview": lambda: views.overview(m, s, width), "processes": lambda: views.processes(m, s),
                "workers": lambda: views.workers(m, s), "latency": lambda: views.latency(m, s, width),
                "slow": lambda: views.slow(m, s), "gc": lambda: views.gc(m, s),
                "events": lambda: views.events(m, s),
                "fleet": lambda: views.fleet(m, s)}[s.view]()
        return body

    def draw(self, screen: Any) -> None:
        screen.erase()
        height, width = screen.getmaxyx()
        status = self.status
        if self.paused is not None:
            status = f"paused: {self.model.received - self.paused_at} messages arrived meanwhile"
        top = views.header(self.model if self.state.view != "fleet" else _fleet_only(self.model),
                           self.target.describe(), status)
        tabs = "  ".join(f"{i}:{name}" for i, name in enumerate(VIEWS, 1))
        top.append((f" {tabs}   ?=help q=quit   view: {self.state.view}", "dim"))
        body = HELP_LINES if self.help else (self.paused if self.paused is not None else self.lines())
        room = max(1, height - len(top) - 1)
        self.state.scroll = max(0, min(self.state.scroll, max(0, len(body) - room)))
        shown = body[self.state.scroll:self.state.scroll + room]
        for y, (text, style) in enumerate([*top, *shown][: height - 1]):
            self.put(screen, y, text, style, width)
        foot = f" {len(body)} lines, {self.state.scroll + 1}-{self.state.scroll + len(shown)}" if body else ""
        if self.typing is not None:
            foot = f" search URL: {self.typing}_"
        self.put(screen, height - 1, foot + f"   received {self.model.received}", "dim", width)
        screen.noutrefresh()
        curses.doupdate()

    def put(self, screen: Any, y: int, text: str, style: str, width: int) -> None:
        attr = STYLES.get(style, 0)
        if self.color and style in ("warn", "bad"):
            attr |= curses.color_pair(1 if style == "warn" else 2)
        with contextlib.suppress(curses.error):  # the last cell of a tiny terminal
            screen.addnstr(y, 0, text, width - 1, attr)

    async def run(self, screen: Any) -> None:
        loop = asyncio.get_running_loop()
        screen.nodelay(True)
        screen.keypad(True)

        def read_keys() -> None:
            while (ch := screen.getch()) != -1:
                if ch == 27:  # a lone Esc, or a sequence the terminal's terminfo does not name
                    rest = []
                    while (more := screen.getch()) != -1:
                        rest.append(more)
                    if rest:
                        continue  # unknown keys do nothing, rather than act as "[", "4" and "~"
                self.key(ch)

        loop.add_reader(0, read_keys)
        task = asyncio.ensure_future(self.link.run())
        try:
            while not self.quit.is_set():  # data is drawn twice a second, a key at once
                self.draw(screen)
                self.dirty.clear()
                waiter = asyncio.ensure_future(self.dirty.wait())
                await asyncio.wait([waiter], timeout=DRAW_EVERY)
                waiter.cancel()
        finally:
            loop.remove_reader(0)
            task.cancel()


HELP_LINES: list[views.Line] = [("  keys", "head"), *((f"  {line}", "") for line in HELP)]


def _next(choices: tuple[Any, ...], current: Any, by: int) -> Any:
    """The choice ``by`` steps from ``current``, round the end."""
    return choices[(choices.index(current) + by) % len(choices)] if current in choices else choices[0]


def _fleet_only(model: Model) -> Model:
    view = Model()
    view.hello, view.fleet, view.offset = model.hello, model.fleet, model.offset
    view.received = model.received
    return view


def main(target: Target, host: str | None, group: str, color: bool) -> int:
    color = color and "NO_COLOR" not in os.environ

    def run(screen: Any) -> None:
        curses.curs_set(0)
        if color and curses.has_colors():
            curses.start_color()
            curses.use_default_colors()
            curses.init_pair(1, curses.COLOR_YELLOW, -1)
            curses.init_pair(2, curses.COLOR_RED, -1)
        asyncio.run(App(target, host, group, color).run(screen))

    os.environ.setdefault("ESCDELAY", "25")
    curses.wrapper(run)
    return 0
