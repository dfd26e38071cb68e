"""deploy/'s systemd units, sysusers and env files, checked without a running systemd.

systemd's own tools read the files offline: ``systemd-analyze verify`` (a key
systemd does not know, a bad value, a missing binary are what an operator
would meet at ``systemctl start``), ``systemd-analyze security --offline``
(the hardening is there) and ``systemd-sysusers --dry-run``. The env file is
held to console/settings.py: every setting it reads is documented with its
default, and nothing else is (the file documents settings, it invents none).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from proxies import AGENT_UNIT, CONSOLE_ENV, CONSOLE_UNIT, DEPLOY, unit_exec_start
from support.redis_server import OwnRedis
from support.required import missing

from stack import AGENT_MAX_MESSAGE, PYTHON, ROOT

pytestmark = pytest.mark.deploy

SYSTEMD = DEPLOY / "systemd"
INSTALL_DIR = "/opt/wsgi-fleet"


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        missing(f"{name} is missing: install Debian's systemd package (its tools work without systemd)")
    return found


@pytest.fixture
def units(tmp_path: Path) -> Path:
    """The units with the checkout standing in for /opt/wsgi-fleet, so that their binaries exist."""
    for unit in SYSTEMD.glob("wsgi-fleet*.*"):
        if unit.suffix in (".service", ".target"):
            (tmp_path / unit.name).write_text(unit.read_text().replace(INSTALL_DIR, str(ROOT)))
    return tmp_path


def test_systemd_accepts_every_unit(units: Path) -> None:
    analyze = tool("systemd-analyze")
    names = ["wsgi-fleet-agent.service", "wsgi-fleet-console@8001.service", "wsgi-fleet-console.target"]
    result = subprocess.run([analyze, "verify", *names], cwd=units, capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr


@pytest.mark.parametrize("name", ["wsgi-fleet-agent.service", "wsgi-fleet-console@8001.service"])
def test_the_services_are_hardened(units: Path, name: str) -> None:
    """systemd's own score, 0 (locked down) to 10 (exposed): 'OK' is at most 2 here, where a
    unit without any hardening scores 9.6."""
    analyze = tool("systemd-analyze")
    result = subprocess.run([analyze, "security", "--offline=true", name], cwd=units, capture_output=True,
                            text=True, timeout=60, check=False)
    level = re.search(r"Overall exposure level for \S+: ([0-9.]+)", result.stdout)
    assert level, result.stdout[-2000:] + result.stderr
    assert float(level.group(1)) <= 2.0, result.stdout


def test_sysusers_makes_the_users_and_puts_apache_in_the_socket_group() -> None:
    sysusers = tool("systemd-sysusers")
    conf = SYSTEMD / "wsgi-fleet.sysusers.conf"
    result = subprocess.run([sysusers, "--dry-run", str(conf)], capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 0, result.stderr
    unit = AGENT_UNIT.read_text()
    user, group = re.search(r"^User=(\S+)", unit, re.M), re.search(r"^Group=(\S+)", unit, re.M)
    assert user and group
    entries = [line.split() for line in conf.read_text().splitlines() if line and not line.startswith("#")]
    assert ["u", user.group(1), f"-:{group.group(1)}"] == entries[1][:3]
    assert ["m", "www-data", group.group(1)] in [entry[:3] for entry in entries]
    words = unit_exec_start(AGENT_UNIT)
    assert words[words.index("--socket-group") + 1] == group.group(1)
    assert words[words.index("--socket") + 1].startswith("/run/wsgi-fleet/")  # its RuntimeDirectory
    assert re.search(r"^RuntimeDirectory=wsgi-fleet$", unit, re.M)


def test_the_console_unit_gives_daphne_the_agent_message_limit() -> None:
    """daphne's message and frame limits are the console's (both 1 MiB by default, below it)."""
    words = unit_exec_start(CONSOLE_UNIT)
    for option in ("--websocket-max-message-size", "--websocket-max-frame-size"):
        assert words[words.index(option) + 1] == "${WSGI_FLEET_AGENT_MAX_MESSAGE}"
    assert f"WSGI_FLEET_AGENT_MAX_MESSAGE={AGENT_MAX_MESSAGE}" in CONSOLE_UNIT.read_text()
    assert "-b" in words and words[words.index("-b") + 1] == "127.0.0.1"


def settings_defaults() -> dict[str, str]:
    """Every variable console/settings.py reads, with its default as the settings source has it."""
    source = (ROOT / "console" / "settings.py").read_text()
    found: dict[str, str] = {}
    for _call, name, default in re.findall(r'\b(env|env_bool|env_int|env_list|env_peppers)\("([A-Z0-9_]+)"'
                                          r'(?:,\s*([^)\n]*))?\)', source):
        found[name] = default.strip()
    return found


def documented() -> dict[str, str]:
    """NAME -> value of the env file's lines, set or commented out (``#NAME=value``)."""
    pairs = re.findall(r"^#?([A-Z][A-Z0-9_]+)=(.*)$", CONSOLE_ENV.read_text(), re.M)
    return dict(pairs)


def test_the_env_file_documents_every_setting_and_no_other() -> None:
    read, listed = settings_defaults(), documented()
    assert sorted(set(read) - set(listed)) == [], "settings.py reads these, deploy/env/console.env omits them"
    assert sorted(set(listed) - set(read)) == [], "deploy/env/console.env lists these, settings.py reads none"


def test_the_env_file_gives_the_defaults_settings_py_has() -> None:
    """Each commented-out line shows the default: what the console does with the line left as is."""
    text = CONSOLE_ENV.read_text()
    read = settings_defaults()
    for name, value in re.findall(r"^#([A-Z][A-Z0-9_]+)=(.*)$", text, re.M):
        default = read[name]
        if default in ("", '""'):
            assert value == "", name
            continue
        evaluated = eval(default.replace("_", ""), {})
        if isinstance(evaluated, bool):
            assert value == str(int(evaluated)), name
        else:
            assert value == str(evaluated), name


def test_check_deploy_passes_with_the_env_file_and_a_key_made_as_it_says(tmp_path: Path) -> None:
    """``manage.py check --deploy`` finds nothing to warn about with the documented values and a
    DJANGO_SECRET_KEY made by the command the file gives."""
    text = CONSOLE_ENV.read_text()
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "DJANGO_SETTINGS_MODULE": "console.settings"}
    env.update({name: value for name, value in re.findall(r"^([A-Z][A-Z0-9_]+)=(.*)$", text, re.M)})
    # The values left for the operator to make, each by the command written above it.
    for name in ("DJANGO_SECRET_KEY", "WSGI_FLEET_TOKEN_PEPPERS"):
        command = re.search(rf"^#\s+(python3 -c .*)\n{name}=$", text, re.M)
        assert command, f"the env file says how to make {name}"
        env[name] = subprocess.run(command.group(1), shell=True, capture_output=True, text=True,
                                   check=True).stdout.strip()
    env.update(SQLITE_PATH=str(tmp_path / "db.sqlite3"), STATIC_ROOT=str(tmp_path / "static"))
    # The check asks Redis whether it keeps what it acknowledged: one configured as the README
    # says, in place of the env file's address.
    try:
        redis = OwnRedis(tmp_path, appendonly="yes", appendfsync="everysec").start()
    except FileNotFoundError:
        missing("redis-server is missing: run scripts/setup --tests")
    env["REDIS_URL"] = redis.url
    try:
        result = subprocess.run([PYTHON, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                                cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    finally:
        redis.stop()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
