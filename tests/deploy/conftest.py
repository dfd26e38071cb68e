"""Fixtures of the deploy tests: one test CA, two consoles (served at / and at /fleet/), each
behind a real nginx and a real Apache rendered from deploy/'s templates, and one Chromium, all
shared by the module that asks for them (starting them costs more than every test together)."""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from proxies import APACHE, NGINX, Apache, Nginx, Proxy, Tls, daphne_options, make_tls
from support.required import missing

from stack import CHROMIUM, CHROMIUM_FLAGS, Console, Worker, console_env, free_port

PASSWORD = "correct horse battery staple"
#: (proxy, prefix): every way the console is served in these tests.
SITES = [("nginx", "/"), ("nginx", "/fleet/"), ("apache", "/"), ("apache", "/fleet/")]
SITE_IDS = [f"{proxy}{prefix.rstrip('/') or '-root'}" for proxy, prefix in SITES]


@dataclass
class Site:
    """One console (its own database and daphne) behind one proxy."""

    proxy: Proxy
    console: Console
    worker: Worker
    hosts: dict[str, Any]
    work: Path
    started: list[Any] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.proxy.url


def require_servers() -> None:
    if os.geteuid() != 0:
        missing("the deploy tests start nginx and Apache as root (their workers run as www-data)")
    for binary in (NGINX, APACHE):
        if not os.access(binary, os.X_OK):
            missing(f"{binary} is missing: run scripts/setup --tests (Debian's nginx and apache2)")


@pytest.fixture(scope="module")
def work() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="wf-dp-", dir="/tmp"))  # short: AF_UNIX paths
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def tls(work: Path) -> Tls:
    return make_tls(work)


def start_console(work: Path, prefix: str, static_root: Path) -> tuple[Console, Worker, dict[str, Any]]:
    """A console as docs/deploy.md sets one up: DEBUG off, SECURE_SSL_REDIRECT and HSTS at
    their defaults, USE_X_FORWARDED_PROTO=1, FORCE_SCRIPT_NAME under a prefix, the static
    files collected into STATIC_ROOT and served from there, daphne with the unit's options."""
    work.mkdir(exist_ok=True)
    script_name = prefix.rstrip("/")
    env = console_env(work, secret=secrets.token_urlsafe(50), USE_X_FORWARDED_PROTO="1", LOG_LEVEL="INFO",
                      STATIC_ROOT=str(static_root), WHITENOISE_USE_FINDERS="0")
    env.pop("SECURE_SSL_REDIRECT")  # stack's console turns it off; here it is at its default, on
    if script_name:
        env["FORCE_SCRIPT_NAME"] = script_name
    console = Console(work, env)
    if not static_root.exists():  # once for both consoles: the files do not depend on the prefix
        console.manage("collectstatic", "--no-input", "-v", "0")
    made = console.setup({"ops": {"hosts": ["via-nginx", "via-apache"], "users": ["ann"]}},
                         password=PASSWORD, api_tokens=False, note="deploy tests")
    worker = console.worker(free_port(), args=daphne_options(script_name))
    worker.start(30)
    return console, worker, made["hosts"]


@pytest.fixture(scope="module")
def sites(work: Path, tls: Tls) -> Iterator[dict[tuple[str, str], Site]]:
    require_servers()
    made: dict[tuple[str, str], Site] = {}
    consoles: list[Console] = []
    proxies: list[Proxy] = []
    try:
        for prefix in ("/", "/fleet/"):
            console_work = work / ("console" + prefix.rstrip("/").replace("/", "-"))
            console, worker, hosts = start_console(console_work, prefix, work / "static")
            consoles.append(console)
            for kind, cls in (("nginx", Nginx), ("apache", Apache)):
                proxy_work = console_work / kind
                proxy = cls(proxy_work, tls, console_port=worker.port, prefix=prefix).start()
                proxies.append(proxy)
                made[(kind, prefix)] = Site(proxy, console, worker, hosts, console_work)
        yield made
    finally:
        for proxy in proxies:
            proxy.stop()
        for console in consoles:
            console.stop_workers()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's chromium; module scope (Playwright's sync API keeps a loop in this thread)."""
    if not os.access(CHROMIUM, os.X_OK):
        missing(f"{CHROMIUM} is missing: run scripts/setup --tests, which installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield chromium
        finally:
            chromium.close()
