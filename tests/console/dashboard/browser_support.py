"""Support for the browser tests: headless Chromium against a real console and real agents.

Everything runs as an operator runs it: ``manage.py migrate`` and a small
``manage.py shell`` for the rows, the console as ``daphne
console.asgi:application`` (DEBUG off, the in-process store), and per host
``python -m ingest serve --console ...`` fed by ``python -m ingest
simulate``. The browser is Debian's chromium (/usr/bin/chromium, installed by
scripts/setup) driven by Playwright; ``playwright install`` is never used.
The processes are started by the stack launcher (stack/), as in the
end-to-end tests, the benchmarks and the demo.

Every test fails on a JavaScript error: an uncaught exception (``pageerror``)
or an error on the browser console. Only the console-restart test tolerates
the network errors an outage causes, and only while the console is down.

``WSGI_FLEET_SCREENSHOTS=1`` also saves docs/screenshots/{fleet,host,host-dark}.png
(the README shows them); without it nothing in the tree is written.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from stack import CHROMIUM as CHROMIUM  # re-exported, as PYTHON and FLAGS: the tests import them here
from stack import (
    CHROMIUM_FLAGS,
    ROOT,
    Agent,
    Simulator,
    Worker,
    console_env,
    free_port,
    spawn,
    stop_process,
    tail,
    wait_until,
)
from stack import PYTHON as PYTHON
from stack import Console as StackConsole

FLAGS = CHROMIUM_FLAGS

SCREENSHOTS = ROOT / "docs" / "screenshots"
PASSWORD = "correct horse battery staple"
XSS = "<img src=x onerror=alert(1)>"

#: team -> (members, {host: (labels, simulate shape or None for no agent)})
FLEET = {
    "payments": (["ann"], {
        "web-1": ({"env": "prod", "role": "web"},
                  ["--groups", "2", "--processes", "2", "--threads", "4", "--seed", "1",
                   "--restart-probability", "0"]),
        "web-2": ({"env": "prod", "role": "api"},
                  ["--groups", "1", "--processes", "3", "--threads", "8", "--seed", "2",
                   "--restart-probability", "0"]),
        # Everything the tabs show: restarts, slow requests, two interpreters' GC.
        "web-3": ({"env": "prod", "role": "worker"},
                  ["--groups", "2", "--processes", "2", "--threads", "4", "--seed", "4",
                   "--restart-probability", "0.03", "--slow-probability", "0.2", "--interpreters", "2"]),
    }),
    "search": (["bob"], {
        "idx-1": ({"env": "staging"}, ["--groups", "1", "--processes", "1", "--threads", "2", "--seed", "3",
                                       "--restart-probability", "0"]),
        XSS: ({"note": "<b>bold</b>"}, None),
        # fed by real Apache + mod_wsgi in test_browser_modwsgi.py and test_browser_exact.py,
        # not by a simulator
        "apache-1": ({"env": "test"}, None),
        "apache-2": ({"env": "test"}, None),
    }),
}
ANN_HOSTS = sorted(FLEET["payments"][1])
OTHER_HOSTS = sorted(FLEET["search"][1])

SETUP = """
import json, os
from django.contrib.auth.models import User
from django.core.management import call_command
from console.fleet.models import AgentToken, Host, Team
call_command("migrate", interactive=False, verbosity=0)
tokens = {}
for team_name, (members, hosts) in json.loads(os.environ["WF_BROWSER_FLEET"]).items():
    team = Team.objects.create(name=team_name)
    for name in members:
        team.members.add(User.objects.create_user(name, password=os.environ["WF_BROWSER_PASSWORD"]))
    for name, (labels, _shape) in hosts.items():
        host = Host.objects.create(name=name, team=team, labels=labels)
        tokens[name] = AgentToken.issue(host=host, note="browser tests")[1]
print("WF_TOKENS " + json.dumps(tokens))
"""

#: What a console outage may print on the browser console: the browser's own
#: network errors, not the page's JavaScript.
OUTAGE_NOISE = re.compile(r"WebSocket connection to .* failed"
                          r"|Failed to load resource: net::ERR_CONNECTION_REFUSED")


def wait_for(predicate, timeout: float, what: str, step: float = 0.05) -> None:
    if not wait_until(predicate, timeout, step):
        raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class Console:
    """The console's daphne plus one agent and one simulator per host that has a shape
    (stack's Console, Worker, Agent and Simulator)."""

    def __init__(self, work: Path):
        self.work = work
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # no REDIS_URL: the in-process store
        self.env = console_env(work, secret="browser-tests-only-" + secrets.token_hex(16),
                               HOME=str(work), PYTHONPATH=str(ROOT), WF_BROWSER_PASSWORD=PASSWORD)
        self.site = StackConsole(work, self.env)
        self.daphne: Worker | None = None
        self.children: list[subprocess.Popen] = []
        self.fed_since = time.monotonic()  # when the simulators started sending

    def spawn(self, command: list[str], log: str) -> subprocess.Popen:
        return spawn(command, self.work / log, env=self.env)

    def prepare(self) -> dict[str, str]:
        """Migrate and create the teams, users, hosts and agent tokens; returns the tokens."""
        self.site.env = dict(self.env)
        teams = {team: {"users": members, "hosts": {name: labels for name, (labels, _) in hosts.items()}}
                 for team, (members, hosts) in FLEET.items()}
        made = self.site.setup(teams, password=PASSWORD, api_tokens=False, note="browser tests")
        return {name: host["token"] for name, host in made["hosts"].items()}

    def start_console(self) -> None:
        self.daphne = Worker(self.env, self.port, self.work / "daphne.log")
        self.daphne.start(timeout=20)

    def stop_console(self) -> None:
        """SIGTERM, as an operator's restart does."""
        if self.daphne is not None:
            self.daphne.stop(15)
        self.daphne = None

    def start_agents(self, tokens: dict[str, str]) -> None:
        self.fed_since = time.monotonic()
        for i, (name, token) in enumerate(sorted(tokens.items())):
            shape = next(hosts[name][1] for _, hosts in FLEET.values() if name in hosts)
            if shape is None:
                continue
            agent = Agent(self.work, f"h{i}", console_url=self.url + "/", hostname=name,
                          token_file=self.site.write_token(token, f"h{i}"), socket_mode="0600",
                          log=self.work / f"h{i}-agent.log", base_env=self.env).start(10)
            self.children.append(agent.proc)
            simulator = Simulator(agent.sock, processes=None, groups=None, seed=None, extra=shape,
                                  log=self.work / f"h{i}-simulate.log", base_env=self.env).start()
            self.children.append(simulator.proc)

    def check_alive(self) -> None:
        for child in [self.daphne.proc if self.daphne else None, *self.children]:
            if child is not None and child.poll() is not None:
                raise AssertionError(f"{' '.join(child.args[:5])} exited with {child.returncode}\n"
                                     + "\n".join(tail(log, 30) for log in sorted(self.work.glob("*.log"))))

    def stop(self) -> None:
        # Simulators first, then agents (they deliver what they hold), then the console.
        for child in reversed(self.children):
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in reversed(self.children):
            stop_process(child, signal.SIGTERM, 15)
        self.stop_console()


class Tab:
    """One browser page and everything it said: errors, dialogs, WebSocket frames."""

    def __init__(self, page, base: str, fed_since: float):
        self.page, self.base, self.fed_since = page, base, fed_since
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.frames: list[str] = []
        self.tolerate: re.Pattern[str] | None = None
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        page.on("console", self._console)
        page.on("dialog", self._dialog)
        page.on("websocket", lambda ws: ws.on("framereceived", self._frame))

    def _console(self, message) -> None:
        if message.type != "error":
            return
        if self.tolerate is not None and self.tolerate.search(message.text):
            return
        self.errors.append(f"console.error: {message.text}")

    def _dialog(self, dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def _frame(self, payload) -> None:
        self.frames.append(payload if isinstance(payload, str) else payload.decode(errors="replace"))

    def goto(self, path: str):
        return self.page.goto(self.base + path)

    def login(self, user: str, path: str = "/") -> None:
        self.goto(path)
        self.page.fill("#id_username", user)
        self.page.fill("#id_password", PASSWORD)
        self.page.click("button[type=submit]")
        self.page.wait_for_url(lambda url: urlsplit(url).path != "/accounts/login/")

    @staticmethod
    def shooting() -> bool:
        """Whether this run saves the README's screenshots (WSGI_FLEET_SCREENSHOTS=1)."""
        return os.environ.get("WSGI_FLEET_SCREENSHOTS") == "1"

    def shot(self, name: str, *, history: float = 0.0, down_to: str | None = None) -> None:
        """Save docs/screenshots/NAME, only with WSGI_FLEET_SCREENSHOTS=1.

        ``history``: first wait until the agents have sent that many seconds
        (only then: CI does not wait for pictures); ``down_to``: crop the page
        just below that element.
        """
        if not self.shooting():
            return
        if history:
            self.page.wait_for_timeout(max(0.0, self.fed_since + history - time.monotonic()) * 1000)
        clip = None
        if down_to:
            box = self.page.locator(down_to).bounding_box()
            clip = {"x": 0, "y": 0, "width": self.page.viewport_size["width"],
                    "height": box["y"] + box["height"] + 24}
        if clip is None:  # a full-page picture: the sticky top bar would sit in the middle of it
            # through the CSSOM: the pages' Content-Security-Policy refuses a <style> element
            self.page.evaluate("() => document.querySelectorAll('.topbar').forEach(e => {"
                               " e.style.setProperty('position', 'static', 'important'); })")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / name), full_page=clip is None, clip=clip)


def number(text: str) -> float | None:
    """The leading number of a formatted value ("12.3/s", "1.2k"), None for the dash."""
    match = re.match(r"\s*(-?[0-9][0-9,]*(?:\.[0-9]+)?)\s*([kM]?)", text)
    if not match:
        return None
    return float(match.group(1).replace(",", "")) * {"": 1, "k": 1e3, "M": 1e6}[match.group(2)]


def row(page, name: str):
    return page.locator(f'#fleet tbody tr[data-name="{name}"]')


def wait_live(page, names: list[str], timeout: float = 20_000) -> None:
    """Every named fleet row online with a non-zero req/s."""
    page.wait_for_function(
        """names => names.every(name => {
             const rows = Array.from(document.querySelectorAll('#fleet tbody tr'));
             const tr = rows.find(r => r.dataset.name === name);
             if (!tr) return false;
             const rate = parseFloat(tr.querySelector('[data-field="throughput"]').textContent);
             return tr.querySelector('.state').textContent === 'online' && rate > 0;
           })""", arg=names, timeout=timeout)


def wait_readout(page, timeout: float = 20_000) -> float:
    """The host page's throughput readout once it shows a non-zero rate; returns it."""
    readout = page.locator('[data-readout="throughput"]')
    page.wait_for_function(
        """() => parseFloat(document.querySelector('[data-readout="throughput"]').textContent) > 0""",
        timeout=timeout)
    return number(readout.text_content())


def charts_drawn(page) -> None:
    for name in ("throughput", "latency", "capacity", "cpu", "rss"):
        canvas = page.locator(f'figure[data-chart="{name}"] canvas')
        canvas.wait_for(state="visible")
        box = canvas.bounding_box()
        assert box and box["width"] > 100 and box["height"] > 50, (name, box)


def messages(tab: Tab, *types: str, since: int = 0) -> list[dict]:
    """The live messages of the given types the page received (after frame number ``since``)."""
    parsed = [json.loads(frame) for frame in tab.frames[since:] if frame.startswith("{")]
    return [message for message in parsed if message.get("type") in types]


def wait_message(tab: Tab, predicate, since: int, timeout: float, what: str) -> dict:
    """The first live message after frame number ``since`` that ``predicate`` accepts."""
    deadline = time.monotonic() + timeout
    while True:
        parsed = [json.loads(frame) for frame in tab.frames[since:] if frame.startswith("{")]
        found = next((message for message in parsed if predicate(message)), None)
        if found is not None:
            return found
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        tab.page.wait_for_timeout(100)  # not time.sleep: Playwright delivers events meanwhile


def query_of(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}


