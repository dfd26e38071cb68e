"""The console behind deploy/'s nginx and Apache configurations, under / and under /fleet/.

What a user of these recipes would notice: plain http sends them to https once
(not round and round, as a console that does not trust the proxy's
X-Forwarded-Proto does), the pages and their static files come over https
with the console's HSTS header, a browser logs in and its fleet page goes live
over wss, an agent streams through the proxy with the site's private CA
(``--ca-file``) and a message near the console's 4 MiB limit passes the proxy,
and an agent without the CA says that ``--ca-file`` is what it lacks.
"""

from __future__ import annotations

import http.client
import re
import signal
import ssl
import time
from urllib.parse import urlsplit

import msgpack
import pytest
from conftest import PASSWORD, SITE_IDS, SITES, Site
from proxies import Tls

from stack import Agent, Simulator, tail, wait_until

pytestmark = pytest.mark.deploy

HSTS = "max-age=31536000; includeSubDomains; preload"  # console/settings.py's defaults


def fetch(url: str, tls: Tls, headers: dict[str, str] | None = None) -> tuple[http.client.HTTPResponse, str]:
    """One GET, redirects not followed; https verified against the test CA."""
    parts = urlsplit(url)
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(parts.hostname or "", parts.port, timeout=20,
                                           context=ssl.create_default_context(cafile=str(tls.ca)))
    else:
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=20)
    conn.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""), headers=headers or {})
    response = conn.getresponse()
    body = response.read().decode(errors="replace")
    conn.close()
    return response, body


@pytest.mark.parametrize("key", SITES, ids=SITE_IDS)
def test_plain_http_is_redirected_to_https_once(sites: dict, tls: Tls, key: tuple[str, str]) -> None:
    site: Site = sites[key]
    start = f"http://127.0.0.1:{site.proxy.http_port}{site.proxy.prefix}accounts/login/?next=x"
    hops, url = [], start
    for _ in range(5):
        response, _ = fetch(url, tls)
        if response.status not in (301, 302, 307, 308):
            break
        hops.append((response.status, response.headers["Location"]))
        url = response.headers["Location"]
    assert hops == [(301, f"{site.url}accounts/login/?next=x")]
    assert response.status == 200
    assert response.headers["Strict-Transport-Security"] == HSTS


@pytest.mark.parametrize("key", SITES, ids=SITE_IDS)
def test_the_proxy_sets_x_forwarded_proto_whatever_the_client_sends(sites: dict, tls: Tls,
                                                                    key: tuple[str, str]) -> None:
    """A client's own X-Forwarded-Proto never reaches the console: the proxy sets it. Passed
    on, ``http`` here would make the console redirect this https request."""
    site: Site = sites[key]
    response, _ = fetch(f"{site.url}accounts/login/", tls, {"X-Forwarded-Proto": "http"})
    assert response.status == 200, response.headers.get("Location")


@pytest.mark.parametrize("key", SITES, ids=SITE_IDS)
def test_the_pages_static_files_come_from_daphne_through_the_proxy(sites: dict, tls: Tls,
                                                                  key: tuple[str, str]) -> None:
    """Every script and stylesheet the login page links, at the address it links (under the
    prefix), is served: WhiteNoise in daphne, no static location in the proxy."""
    site: Site = sites[key]
    response, body = fetch(f"{site.url}accounts/login/", tls)
    assert response.status == 200
    linked = sorted(set(re.findall(r'(?:src|href)="([^"]+\.(?:js|css|svg))"', body)))
    assert linked, "the login page links no static file"
    assert all(url.startswith(f"{site.proxy.prefix}static/") for url in linked), linked
    for url in linked:
        answer, _ = fetch(site.proxy.origin + url, tls)
        assert answer.status == 200, url


def start_agent(site: Site, name: str, hostname: str, *, ca_file: str | None) -> Agent:
    token = site.console.write_token(site.hosts[hostname]["token"], name)
    agent = Agent(site.work, name, console_url=site.url.replace("https://", "wss://"), token_file=token,
                  hostname=hostname, socket_mode="0600", log_level="INFO")
    if ca_file is not None:
        agent.cmd += ["--ca-file", ca_file]
    return agent.start(15)


@pytest.mark.browser
@pytest.mark.parametrize("key", SITES, ids=SITE_IDS)
def test_a_page_over_https_goes_live_with_an_agent_streaming_through_the_proxy(
        sites: dict, tls: Tls, browser, key: tuple[str, str]) -> None:
    site: Site = sites[key]
    hostname = f"via-{key[0]}"
    agent = start_agent(site, f"{key[0]}-agent", hostname, ca_file=str(tls.ca))
    simulator = Simulator(agent.sock, processes=2, groups=1, seed=1, log=site.work / f"{key[0]}-simulate.log",
                          extra=["--restart-probability", "0"]).start()
    context = browser.new_context(ignore_https_errors=True)  # the test CA is not Chromium's
    context.set_default_timeout(20_000)
    page = context.new_page()
    errors: list[str] = []
    sockets: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("websocket", lambda ws: sockets.append(ws.url))
    try:
        page.goto(site.url)
        assert urlsplit(page.url).path == f"{site.proxy.prefix}accounts/login/"
        page.fill("#id_username", "ann")
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(lambda url: urlsplit(url).path == site.proxy.prefix)
        page.wait_for_function(
            """name => {
                 const tr = Array.from(document.querySelectorAll('#fleet tbody tr'))
                   .find(r => r.dataset.name === name);
                 return tr && tr.querySelector('.state').textContent === 'online'
                   && parseFloat(tr.querySelector('[data-field="throughput"]').textContent) > 0;
               }""", arg=hostname, timeout=30_000)
        assert f"wss://127.0.0.1:{site.proxy.https_port}{site.proxy.prefix}ws/live/" in sockets
        assert errors == []
    except Exception:
        print(tail(agent.log), tail(site.worker.log), tail(site.proxy.error_log))
        raise
    finally:
        context.close()
        simulator.stop()
        agent.stop(sig=signal.SIGTERM)
    assert agent.returncode == 0, tail(agent.log)
    assert agent.connections() >= 1


def test_an_agent_without_the_ca_file_says_to_give_it(sites: dict) -> None:
    site: Site = sites[("nginx", "/")]
    agent = start_agent(site, "no-ca-agent", "via-nginx", ca_file=None)
    try:
        assert wait_until(lambda: "CERTIFICATE_VERIFY_FAILED" in agent.log_text(), 20), tail(agent.log)
        # Said where the failure is, in the same few lines: the option that fixes it.
        time.sleep(0.5)
        assert "--ca-file" in agent.log_text(), tail(agent.log)
        assert agent.connections() == 0
    finally:
        agent.stop()


@pytest.mark.parametrize("key", [("nginx", "/fleet/"), ("apache", "/fleet/")], ids=["nginx", "apache"])
def test_an_agent_message_near_the_limit_passes_the_proxy(sites: dict, tls: Tls,
                                                          key: tuple[str, str]) -> None:
    """3 MiB in one message (the console's limit is 4 MiB; daphne's default, 1 MiB, is what
    a proxy in the way could also impose): the console answers it, so it got through whole."""
    from websockets.sync.client import connect

    site: Site = sites[key]
    url = site.url.replace("https://", "wss://") + "ws/agent/"
    token = site.hosts[f"via-{key[0]}"]["token"]
    with connect(url, additional_headers={"Authorization": f"Bearer {token}"}, compression=None,
                 ssl=ssl.create_default_context(cafile=str(tls.ca)), max_size=1 << 20, open_timeout=10) as ws:
        instance = "deploy" + str(time.time_ns())
        ws.send(msgpack.packb({"t": "hello", "protocol": 1, "agent": "deploy-test", "instance": instance,
                               "hostname": "big", "started": time.time()}))
        welcome = msgpack.unpackb(ws.recv(10))
        assert welcome["t"] == "welcome" and welcome["max_message"] == 4 << 20
        # Many samples of many fields (the console caps a single string or blob far lower):
        # fields it does not know, so that it drops them as bad samples and acks the batch.
        fields = {f"id{300 + n}": 123456 for n in range(400)}
        samples = [{"k": 2, "p": 4242, "i": 1, "s": seq, "t": time.time(), "g": "big", "n": "", "f": fields}
                   for seq in range(760)]
        message = msgpack.packb({"t": "batch", "instance": instance, "id": 1, "samples": samples})
        assert len(message) > 3 << 20
        ws.send(message)
        answer = msgpack.unpackb(ws.recv(20))
        while answer.get("t") != "ack":
            answer = msgpack.unpackb(ws.recv(20))
        assert answer["id"] == 1 and answer["dropped"] == len(samples)  # every sample arrived
