"""The console in a real browser: headless Chromium against a real console and real agents.

Everything runs as an operator runs it: ``manage.py migrate`` and a small
``manage.py shell`` for the rows, the console as ``daphne
console.asgi:application`` (DEBUG off, the in-process store), and per host
``python -m ingest serve --console ...`` fed by ``python -m ingest
simulate``. The browser is Debian's chromium (/usr/bin/chromium, installed by
scripts/setup) driven by Playwright; ``playwright install`` is never used.

Every test fails on a JavaScript error: an uncaught exception (``pageerror``)
or an error on the browser console. Only the console-restart test tolerates
the network errors an outage causes, and only while the console is down.

``WSGI_FLEET_SCREENSHOTS=1`` also saves docs/screenshots/{fleet,host,host-dark}.png
(the README shows them); without it nothing in the tree is written.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[3]
PYTHON = str(ROOT / ".venv" / "bin" / "python")
DAPHNE = str(ROOT / ".venv" / "bin" / "daphne")
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage"]
SCREENSHOTS = ROOT / "docs" / "screenshots"
PASSWORD = "correct horse battery staple"
XSS = "<img src=x onerror=alert(1)>"

#: team -> (members, {host: (labels, simulate shape or None for no agent)})
FLEET = {
    "payments": (["ann"], {
        "web-1": ({"env": "prod", "role": "web"},
                  ["--groups", "2", "--processes", "2", "--threads", "4", "--seed", "1"]),
        "web-2": ({"env": "prod", "role": "api"},
                  ["--groups", "1", "--processes", "3", "--threads", "8", "--seed", "2"]),
    }),
    "search": (["bob"], {
        "idx-1": ({"env": "staging"}, ["--groups", "1", "--processes", "1", "--threads", "2", "--seed", "3"]),
        XSS: ({"note": "<b>bold</b>"}, None),
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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
        return True
    return False


def wait_for(predicate, timeout: float, what: str, step: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(step)


def tail(path: Path, lines: int = 30) -> str:
    with contextlib.suppress(OSError):
        return f"--- {path.name} ---\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return f"({path} unreadable)"


class Console:
    """The console's daphne plus one agent and one simulator per host that has a shape."""

    def __init__(self, work: Path):
        self.work = work
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8", "HOME": str(work),
            "PYTHONPATH": str(ROOT), "DJANGO_SETTINGS_MODULE": "console.settings",
            "DEBUG": "0", "SECURE_SSL_REDIRECT": "0", "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DJANGO_SECRET_KEY": "browser-tests-only-" + secrets.token_hex(16),
            "SQLITE_PATH": str(work / "console.sqlite3"),  # no REDIS_URL: the in-process store
            "WF_BROWSER_FLEET": json.dumps(FLEET), "WF_BROWSER_PASSWORD": PASSWORD,
        }
        self.daphne: subprocess.Popen | None = None
        self.children: list[subprocess.Popen] = []
        self.fed_since = time.monotonic()  # when the simulators started sending

    def spawn(self, command: list[str], log: str) -> subprocess.Popen:
        with open(self.work / log, "ab") as out:
            return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env=self.env)

    def prepare(self) -> dict[str, str]:
        """Migrate and create the teams, users, hosts and agent tokens; returns the tokens."""
        done = subprocess.run([PYTHON, "manage.py", "shell", "-c", SETUP], cwd=ROOT, env=self.env,
                              capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        line = next(line for line in done.stdout.splitlines() if line.startswith("WF_TOKENS "))
        return json.loads(line.split(" ", 1)[1])

    def start_console(self) -> None:
        self.daphne = self.spawn([DAPHNE, "-b", "127.0.0.1", "-p", str(self.port),
                                  "console.asgi:application"], "daphne.log")
        deadline = time.monotonic() + 20
        while not port_open(self.port):
            if self.daphne.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("the console did not start\n" + tail(self.work / "daphne.log"))
            time.sleep(0.05)

    def stop_console(self) -> None:
        """SIGTERM, as an operator's restart does."""
        if self.daphne is not None and self.daphne.poll() is None:
            self.daphne.send_signal(signal.SIGTERM)
            try:
                self.daphne.wait(15)
            except subprocess.TimeoutExpired:
                self.daphne.kill()
                self.daphne.wait(5)
        self.daphne = None

    def start_agents(self, tokens: dict[str, str]) -> None:
        self.fed_since = time.monotonic()
        for i, (name, token) in enumerate(sorted(tokens.items())):
            shape = next(hosts[name][1] for _, hosts in FLEET.values() if name in hosts)
            if shape is None:
                continue
            token_file = self.work / f"h{i}.token"
            token_file.write_text(token + "\n")
            token_file.chmod(0o600)
            sock = self.work / f"h{i}.sock"
            self.children.append(self.spawn(
                [PYTHON, "-m", "ingest", "serve", "--socket", str(sock), "--socket-mode", "0600",
                 "--console", self.url + "/", "--token-file", str(token_file), "--hostname", name,
                 "--log-interval", "0"], f"h{i}-agent.log"))
            wait_for(sock.exists, 10, f"the agent of {name} to bind its socket")
            self.children.append(self.spawn(
                [PYTHON, "-m", "ingest", "simulate", "--socket", str(sock), "--restart-probability", "0",
                 *shape], f"h{i}-simulate.log"))

    def check_alive(self) -> None:
        for child in [self.daphne, *self.children]:
            if child is not None and child.poll() is not None:
                raise AssertionError(f"{' '.join(child.args[:5])} exited with {child.returncode}\n"
                                     + "\n".join(tail(log) for log in sorted(self.work.glob("*.log"))))

    def stop(self) -> None:
        # Simulators first, then agents (they deliver what they hold), then the console.
        for child in reversed(self.children):
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in reversed(self.children):
            try:
                child.wait(15)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(5)
        self.stop_console()


@pytest.fixture(scope="module")
def console() -> Iterator[Console]:
    work = Path(tempfile.mkdtemp(prefix="wf-br-", dir="/tmp"))  # short: AF_UNIX paths
    site = Console(work)
    try:
        tokens = site.prepare()
        site.start_console()
        site.start_agents(tokens)
        yield site
    finally:
        site.stop()
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
def browser():
    if not os.access(CHROMIUM, os.X_OK):
        message = f"{CHROMIUM} is missing: run scripts/setup, which installs Debian's chromium"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield chromium
        finally:
            chromium.close()


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

    def shot(self, name: str, *, history: float = 0.0, down_to: str | None = None) -> None:
        """Save docs/screenshots/NAME, only with WSGI_FLEET_SCREENSHOTS=1.

        ``history``: first wait until the agents have sent that many seconds
        (only then: CI does not wait for pictures); ``down_to``: crop the page
        just below that element.
        """
        if os.environ.get("WSGI_FLEET_SCREENSHOTS") != "1":
            return
        if history:
            self.page.wait_for_timeout(max(0.0, self.fed_since + history - time.monotonic()) * 1000)
        clip = None
        if down_to:
            box = self.page.locator(down_to).bounding_box()
            clip = {"x": 0, "y": 0, "width": self.page.viewport_size["width"],
                    "height": box["y"] + box["height"] + 24}
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / name), full_page=clip is None, clip=clip)


@pytest.fixture
def tab(console, browser) -> Iterator[Tab]:
    """A fresh context (no cookies, no saved theme) per test; fails the test on any JS error."""
    console.check_alive()
    context = browser.new_context(viewport={"width": 1280, "height": 800}, color_scheme="light")
    context.set_default_timeout(15_000)
    opened = Tab(context.new_page(), console.url, console.fed_since)
    try:
        yield opened
    finally:
        context.close()
    assert opened.errors == [], "JavaScript errors in the browser"
    assert opened.dialogs == [], "the page opened dialogs"


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


# -- the tests -----------------------------------------------------------------------------------


def test_anonymous_visitors_get_the_login_page(tab):
    for path in ("/", "/hosts/web-1/?tab=processes"):
        tab.goto(path)
        assert urlsplit(tab.page.url).path == "/accounts/login/"
        assert query_of(tab.page.url)["next"] == path
        assert tab.page.locator("h1").text_content() == "Log in"
        assert tab.page.locator("#fleet, #main[data-host-id], #conn").count() == 0  # nothing live
    # a wrong password stays on the login page
    tab.page.fill("#id_username", "ann")
    tab.page.fill("#id_password", "wrong")
    tab.page.click("button[type=submit]")
    assert tab.page.locator("p.error").first.is_visible()
    assert urlsplit(tab.page.url).path == "/accounts/login/"


def test_fleet_lists_exactly_the_users_hosts_and_they_go_live(tab):
    tab.login("ann")
    page = tab.page
    assert sorted(page.locator("#fleet tbody tr").evaluate_all("rows => rows.map(r => r.dataset.name)")) \
        == ANN_HOSTS
    began = time.monotonic()
    wait_live(page, ANN_HOSTS)
    live_after = time.monotonic() - began
    assert live_after < 15
    assert page.locator("#fleet tbody tr").count() == 2
    for name in ANN_HOSTS:
        assert row(page, name).locator('[data-field="team"]').text_content() == "payments"
        assert number(row(page, name).locator('[data-field="processes"]').text_content()) > 0
    assert page.locator("#conn").get_attribute("data-state") == "connected"
    assert page.locator("#fleet-totals").text_content().startswith("2 hosts · 2 online")
    page.wait_for_timeout(1200)  # a few fleet.update frames more
    # idx-1 is online and sending, yet never reaches ann's page nor her live connection
    sent = [host for message in messages(tab, "fleet.snapshot", "fleet.update") for host in message["hosts"]]
    assert sent and {host["name"] for host in sent} == set(ANN_HOSTS)
    assert {host["team"] for host in sent} == {"payments"}
    content = page.content()
    assert not [other for other in OTHER_HOSTS if other in content or other.replace("<", "&lt;") in content]
    tab.shot("fleet.png", down_to="#fleet")


def test_host_page_draws_charts_and_live_readouts(tab):
    tab.login("ann")
    page = tab.page
    wait_live(page, ["web-1"])
    row(page, "web-1").locator('[data-field="name"] a').click()
    page.wait_for_url("**/hosts/web-1/")
    assert page.locator("h1").text_content() == "web-1"
    assert page.locator("#tab-overview").get_attribute("aria-selected") == "true"
    rate = wait_readout(page)
    assert rate > 0
    charts_drawn(page)
    for name in ("latency", "capacity", "cpu", "rss"):
        text = page.locator(f'[data-readout="{name}"]').text_content()
        assert text and "—" not in text.split("·")[0], (name, text)
    assert page.locator("#status-totals").text_content().startswith("≈ ")
    # the group menu learns the host's groups from the snapshot
    page.wait_for_function("() => document.querySelectorAll('#group option').length === 3")
    assert page.locator("#group option").evaluate_all("os => os.map(o => o.value)") == ["*", "app0", "app1"]
    # a shorter window: the page subscribes again and keeps drawing
    mark = len(tab.frames)
    page.select_option("#window", "60")
    assert query_of(page.url) == {"tab": "overview", "group": "*", "window": "60"}
    wait_message(tab, lambda m: m.get("type") == "host.snapshot", mark, 10, "the 60 s snapshot")
    assert wait_readout(page) > 0
    charts_drawn(page)
    tab.shot("host.png", history=55)


def test_view_state_lives_in_the_url_and_survives_a_reload(tab):
    tab.login("ann", "/hosts/web-2/")
    page = tab.page
    wait_readout(page)
    page.click("#tab-processes")
    assert query_of(page.url) == {"tab": "processes", "group": "*", "window": "300"}
    page.select_option("#window", "900")
    page.select_option("#group", "app0")
    assert query_of(page.url) == {"tab": "processes", "group": "app0", "window": "900"}
    page.locator("#processes tbody tr").first.wait_for()
    assert page.locator("#processes tbody tr").count() == 3  # web-2: one group of 3 processes
    page.reload()
    assert query_of(page.url) == {"tab": "processes", "group": "app0", "window": "900"}
    assert page.locator("#tab-processes").get_attribute("aria-selected") == "true"
    assert page.locator("#panel-processes").is_visible()
    assert page.locator("#panel-overview").is_hidden()
    assert page.locator("#window").input_value() == "900"
    assert page.locator("#group").input_value() == "app0"
    page.locator("#processes tbody tr").first.wait_for()
    assert page.locator("#processes tbody tr").count() == 3
    # back in history: the previous state, without a reload
    page.go_back()
    assert query_of(page.url) == {"tab": "processes", "group": "*", "window": "900"}
    assert page.locator("#group").input_value() == "*"
    # a link with a view opens that view
    tab.goto("/hosts/web-1/?tab=gc&group=app1&window=3600")
    assert page.locator("#tab-gc").get_attribute("aria-selected") == "true"
    assert page.locator("#panel-gc").is_visible()
    assert page.locator("#window").input_value() == "3600"


def test_theme_switch_persists_across_a_reload(tab):
    tab.login("ann", "/hosts/web-1/")
    page = tab.page
    html = page.locator("html")
    background = "() => getComputedStyle(document.body).backgroundColor"
    light = page.evaluate(background)
    assert html.get_attribute("data-theme") in (None, "light")
    assert page.locator("#theme-toggle").text_content() == "Dark theme"
    page.click("#theme-toggle")
    assert html.get_attribute("data-theme") == "dark"
    dark = page.evaluate(background)
    assert dark != light
    page.reload()
    assert html.get_attribute("data-theme") == "dark"
    assert page.evaluate(background) == dark
    assert page.locator("#theme-toggle").text_content() == "Light theme"
    wait_readout(page)
    charts_drawn(page)
    tab.goto("/")  # the choice holds on every page
    assert html.get_attribute("data-theme") == "dark"
    tab.goto("/hosts/web-1/?window=60")
    wait_readout(page)
    charts_drawn(page)
    tab.shot("host-dark.png", history=60)
    page.click("#theme-toggle")
    page.reload()
    assert html.get_attribute("data-theme") == "light"


def test_a_host_named_with_html_renders_as_text(tab):
    tab.login("bob")
    page = tab.page
    wait_live(page, ["idx-1"])
    link = page.locator("#fleet tbody tr a", has_text="onerror")
    assert link.text_content() == XSS
    assert page.locator("#fleet img").count() == 0
    chip = page.get_by_text("note=<b>bold</b>")
    assert chip.count() == 1 and page.locator("#fleet b").count() == 0
    link.click()
    page.wait_for_url(lambda url: unquote(urlsplit(url).path) == f"/hosts/{XSS}/")
    assert page.locator("h1").text_content() == XSS
    assert page.title() == XSS + " · wsgi-fleet"
    page.wait_for_function("() => document.getElementById('status-totals').textContent.startsWith('No data')")
    assert page.locator("main img").count() == 0
    page.wait_for_timeout(500)  # an onerror handler would have run by now
    assert tab.dialogs == []


def test_console_restart_shows_reconnecting_then_live_data_again(tab, console):
    tab.login("ann", "/hosts/web-1/")
    page = tab.page
    pill = page.locator("#conn")
    wait_readout(page)
    assert pill.get_attribute("data-state") == "connected"
    tab.tolerate = OUTAGE_NOISE
    began = time.monotonic()
    console.stop_console()
    page.wait_for_function("() => document.getElementById('conn').dataset.state === 'reconnecting'",
                           timeout=10_000)
    assert pill.text_content().startswith("reconnecting in ")
    down_seen = time.monotonic() - began
    page.wait_for_timeout(1000)
    assert pill.get_attribute("data-state") in ("reconnecting", "connecting")
    console.start_console()
    restarted, mark = time.monotonic(), len(tab.frames)
    page.wait_for_function("() => document.getElementById('conn').dataset.state === 'connected'",
                           timeout=20_000)
    connected_after = time.monotonic() - restarted

    # A frame from the new console process with traffic in it: the agents are back.
    def traffic(message: dict) -> bool:
        if message.get("type") != "host.frame":
            return False
        return bool((message["groups"].get("*") or {}).get("throughput"))

    wait_message(tab, traffic, mark, 30, "a host.frame with traffic from the restarted console")
    live_after = time.monotonic() - restarted
    assert messages(tab, "hello", since=mark) and messages(tab, "host.snapshot", since=mark)
    assert wait_readout(page) > 0
    tab.tolerate = None
    assert pill.get_attribute("data-state") == "connected"
    # the age readout is redrawn once a second: "stale" from the outage until then
    page.wait_for_function("() => document.getElementById('data-age').dataset.kind === 'fresh'", timeout=5000)
    assert page.locator("#notice").is_hidden()
    print(f"reconnecting shown {down_seen:.1f} s after SIGTERM; connected {connected_after:.1f} s and "
          f"live data {live_after:.1f} s after the restart")
    console.check_alive()
