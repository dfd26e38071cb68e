"""Fleet and host pages: who sees what, view state from the URL, escaping."""

from __future__ import annotations

import io
import sys
from urllib.parse import quote

import pytest
from django.contrib.auth.models import User
from django.core.handlers.wsgi import WSGIHandler
from django.urls import reverse, set_script_prefix

from console.dashboard.views import HostView, label_pairs
from console.fleet.models import Host

pytestmark = pytest.mark.django_db
pytest_plugins = ["dashboard_fixtures"]


def host_url(name: str, query: str = "") -> str:
    return reverse("dashboard:host", args=[name]) + query


@pytest.mark.parametrize("url", [
    "/",
    "/hosts/web-03/",
    "/hosts/no-such-host/",
    "/accounts/password_change/",
    "/accounts/password_change/done/",
])
def test_every_page_sends_anonymous_users_to_the_login(client, hosts, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={quote(url)}"


def test_fleet_lists_only_the_hosts_of_the_users_teams(ann_client, hosts):
    response = ann_client.get("/")
    assert response.status_code == 200
    assert [row["host"].name for row in response.context["rows"]] == ["web-03"]
    body = response.content.decode()
    assert 'data-name="web-03"' in body
    assert "idx-01" not in body


def test_staff_see_every_host(client, hosts):
    client.force_login(User.objects.create_user("root", is_staff=True))
    names = [row["host"].name for row in client.get("/").context["rows"]]
    assert names == ["idx-01", "web-03"]


def test_a_user_in_no_team_sees_an_empty_fleet_with_a_hint(client, hosts):
    client.force_login(User.objects.create_user("cat"))
    response = client.get("/")
    assert response.context["rows"] == []
    assert "No hosts to show" in response.content.decode()


def test_fleet_page_carries_the_live_socket_path_and_its_script(ann_client, hosts):
    body = ann_client.get("/").content.decode()
    assert 'data-ws-url="/ws/live/"' in body
    assert "console/fleet.js" in body


def test_live_socket_path_follows_the_script_prefix(settings):
    # Through the real WSGI handler: the test client does not set a script prefix.
    settings.FORCE_SCRIPT_NAME = "/fleet"
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/accounts/login/", "SCRIPT_NAME": "",
               "SERVER_NAME": "testserver", "SERVER_PORT": "80", "wsgi.url_scheme": "http",
               "wsgi.input": io.BytesIO(), "wsgi.errors": sys.stderr}
    try:
        response = WSGIHandler()(environ, lambda status, headers: None)
        body = response.content.decode()
    finally:
        set_script_prefix("/")
    assert 'data-ws-url="/fleet/ws/live/"' in body
    assert 'action="/fleet/accounts/login/"' in body


def test_host_page_for_an_own_host(ann_client, hosts):
    response = ann_client.get(host_url("web-03"))
    assert response.status_code == 200
    body = response.content.decode()
    assert f'data-host-id="{hosts[0].pk}"' in body
    for tab in ("overview", "capacity", "processes", "gc", "slow"):
        assert f'id="panel-{tab}"' in body
    assert "vendor/uplot/uPlot.iife.min.js" in body
    # the host switcher offers exactly ann's hosts
    switch = body[body.index('id="host-switch"'):body.index("</select>", body.index('id="host-switch"'))]
    assert switch.count("<option") == len([h for h in hosts if h.team.name == "payments"])
    assert "idx-01" not in switch


def test_a_host_without_an_agent_says_how_to_connect_one(ann_client, hosts):
    body = ann_client.get(host_url("web-03")).content.decode()
    assert 'data-state="no-agent"' in body
    assert "manage.py rotatetoken web-03 --token-file" in body
    assert "--console http://testserver/" in body
    assert "WSGITelemetryService unix:" in body


def test_a_connected_agent_without_datagrams_points_at_the_directive_and_permissions(ann_client, hosts):
    from django.utils import timezone

    hosts[0].last_seen = timezone.now()
    hosts[0].save()
    body = ann_client.get(host_url("web-03")).content.decode()
    assert 'data-state="no-datagrams"' in body
    assert "WSGITelemetryService unix:" in body and "--socket-group www-data" in body
    assert "rotatetoken" not in body
    hosts[0].datagrams_received = 10
    hosts[0].save()
    assert 'id="host-empty"' not in ann_client.get(host_url("web-03")).content.decode()


@pytest.mark.parametrize("name", ["idx-01", "no-such-host"])
def test_host_page_is_404_for_other_teams_hosts_and_for_missing_hosts(ann_client, hosts, name):
    assert ann_client.get(host_url(name)).status_code == 404


def test_an_inactive_user_is_sent_to_the_login(client, ann, hosts):
    client.force_login(ann)
    ann.is_active = False
    ann.save()
    assert client.get("/").status_code == 302


def test_view_state_comes_from_the_url(ann_client, hosts):
    response = ann_client.get(host_url("web-03", "?tab=processes&group=app1&window=3600"))
    assert response.context["view"] == HostView(tab="processes", group="app1", window=3600)
    body = response.content.decode()
    assert 'data-tab="processes" data-group="app1" data-window="3600"' in body
    assert '<option value="3600" selected>' in body
    assert '<option value="app1" selected>app1</option>' in body
    # Tab links keep group and window, so a copied link shows the same view.
    assert 'href="?tab=gc&amp;group=app1&amp;window=3600"' in body
    assert 'id="panel-overview" role="tabpanel" aria-labelledby="tab-overview" class="panel" hidden' in body


@pytest.mark.parametrize(("query", "expected", "said"), [
    ("", HostView(), []),
    ("?tab=nope&window=abc", HostView(), ["no tab “nope”: showing Overview", "window “abc” is not a number"]),
    ("?window=59", HostView(), ["window “59” is not a number of seconds from 60 to 1,209,600: "
                                "showing 5 min"]),
    ("?window=1209601", HostView(), ["window “1209601”"]),
    ("?window=1209600&group=", HostView(window=1209600, group=""), []),
    ("?group=" + "x" * 257, HostView(), ["at most 256 characters: showing all groups"]),
    ("?window=7200", HostView(window=7200), []),
])
def test_malformed_view_state_falls_back_to_defaults_and_says_so(ann_client, hosts, query, expected, said):
    response = ann_client.get(host_url("web-03", query))
    assert response.status_code == 200
    view = response.context["view"]
    assert (view.tab, view.group, view.window) == (expected.tab, expected.group, expected.window)
    assert len(view.problems) == len(said)
    body = response.content.decode()
    for words in said:
        assert words in body  # above the tabs, in words
    assert ('id="url-problems"' in body) == bool(said)


def test_a_window_that_is_not_a_preset_is_offered_as_a_custom_choice(ann_client, hosts):
    body = ann_client.get(host_url("web-03", "?window=7200")).content.decode()
    assert '<option value="7200" selected>7200 s</option>' in body


def test_host_names_with_a_slash_still_have_a_page(ann_client, teams):
    Host.objects.create(name="rack1/web", team=teams[0])
    assert ann_client.get(host_url("rack1/web")).status_code == 200


HOSTILE = "<script>alert(1)</script>"


def test_hostile_host_names_labels_and_groups_are_escaped(ann_client, teams):
    Host.objects.create(name=HOSTILE, team=teams[0],
                        labels={"<b>k</b>": '"><img src=x onerror=alert(2)>'})
    for url in ("/", host_url(HOSTILE, "?group=" + quote('"><svg onload=alert(3)>'))):
        response = ann_client.get(url)
        assert response.status_code == 200
        body = response.content.decode()
        assert HOSTILE not in body
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
        assert "<img" not in body and "<b>" not in body and "<svg" not in body
    body = ann_client.get("/").content.decode()
    assert "&lt;b&gt;k&lt;/b&gt;=&quot;&gt;&lt;img src=x onerror=alert(2)&gt;" in body


def test_hostile_team_names_are_escaped(ann_client, teams, hosts):
    teams[0].name = HOSTILE
    teams[0].save()
    body = ann_client.get("/").content.decode()
    assert HOSTILE not in body
    assert "&lt;script&gt;" in body


def test_fleet_filter_from_the_url_is_escaped(ann_client, hosts):
    body = ann_client.get("/?q=" + quote('"><script>x</script>')).content.decode()
    assert "<script>x" not in body
    assert 'value="&quot;&gt;&lt;script&gt;x&lt;/script&gt;"' in body


@pytest.mark.parametrize(("labels", "pairs"), [
    ({"env": "prod", "dc": "fra1"}, ["dc=fra1", "env=prod"]),
    ({}, []),
    (None, []),
    (["a", "b"], ["['a', 'b']"]),
    ("solo", ["solo"]),
])
def test_labels_of_any_json_shape_become_pairs(labels, pairs):
    assert label_pairs(labels) == pairs


def test_live_pages_have_the_top_bar_slots(ann_client, hosts):
    for url in ("/", host_url("web-03")):
        body = ann_client.get(url).content.decode()
        for slot in ('id="fleet-totals"', 'id="conn"', 'id="data-age"', 'id="store-status"', 'id="loss"',
                     'id="theme-toggle"', 'action="/accounts/logout/"', 'href="/accounts/password_change/"'):
            assert slot in body, (url, slot)


def test_pages_load_no_inline_script(ann_client, hosts):
    # Everything runs from static files, so a strict Content-Security-Policy can be added.
    for url in ("/", host_url("web-03"), reverse("login")):
        body = ann_client.get(url).content.decode()
        assert "<script>" not in body
        assert " on" + "click=" not in body


@pytest.mark.parametrize("path", [
    "console/console.css", "console/theme.js", "console/live.js", "console/format.js",
    "console/fleet.js", "console/host.js", "console/charts.js", "console/favicon.svg",
    "vendor/uplot/uPlot.iife.min.js", "vendor/uplot/uPlot.min.css", "vendor/uplot/LICENSE",
])
def test_static_assets_are_found(path):
    from django.contrib.staticfiles import finders

    assert finders.find(path) is not None
