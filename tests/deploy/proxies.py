"""deploy/'s files put to work: a test CA, the proxy templates rendered, real nginx and Apache.

The proxies are Debian's own binaries (``scripts/setup --tests`` installs them),
started as root with a config of their own in the test's work directory: a
small main file (modules, pid file, logs, the worker user www-data) that
includes the site exactly as ``deploy/`` has it, with only its ``${FLEET_...}``
names filled in, as envsubst does for an operator. Each is stopped through its
own pid file, never by name: the machine runs other servers.

The console's workers are started with the daphne options of
``deploy/systemd/wsgi-fleet-console@.service``'s ExecStart, read from the unit,
so that what the tests run is what the unit runs.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
import shlex
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from stack import ROOT, accepts, pick_port, tail, wait_until

DEPLOY = ROOT / "deploy"
NGINX_TEMPLATE = DEPLOY / "nginx" / "wsgi-fleet.conf.template"
APACHE_TEMPLATE = DEPLOY / "apache" / "wsgi-fleet.conf.template"
CONSOLE_UNIT = DEPLOY / "systemd" / "wsgi-fleet-console@.service"
AGENT_UNIT = DEPLOY / "systemd" / "wsgi-fleet-agent.service"
CONSOLE_ENV = DEPLOY / "env" / "console.env"
NGINX = Path("/usr/sbin/nginx")
APACHE = Path("/usr/sbin/apache2")
APACHE_MODULES = Path("/usr/lib/apache2/modules")
RUN_USER = "www-data"
#: Apache and nginx inherit only this: nothing of the test runner's environment.
SERVER_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}


# -- TLS ---------------------------------------------------------------------------------


@dataclass
class Tls:
    ca: Path
    cert: Path
    key: Path


def make_tls(work: Path) -> Tls:
    """A CA of this test session and a certificate it signs for 127.0.0.1 and localhost: the
    private CA a site would run, which no system trust store knows."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "wsgi-fleet deploy tests CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    tls = Tls(ca=work / "ca.pem", cert=work / "server.pem", key=work / "server.key")
    tls.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    tls.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    tls.key.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    os.chmod(tls.key, 0o600)  # read by the proxies' root parent only
    return tls


# -- the templates -------------------------------------------------------------------------


def render(template: Path, values: dict[str, str]) -> str:
    """The template with its ``${FLEET_...}`` names filled in, as the envsubst line its header
    gives does; every name must be given (a name left over would reach the proxy verbatim)."""
    text = template.read_text()
    names = set(re.findall(r"\$\{(FLEET_[A-Z_]+)\}", text))
    assert names <= set(values), f"{template.name} needs {sorted(names - set(values))}"
    return re.sub(r"\$\{(FLEET_[A-Z_]+)\}", lambda m: values[m.group(1)], text)


def unit_exec_start(unit: Path) -> list[str]:
    """The unit's ExecStart as words (continuation lines joined)."""
    text = unit.read_text().replace("\\\n", " ")
    line = next(line for line in text.splitlines() if line.startswith("ExecStart="))
    return shlex.split(line.removeprefix("ExecStart="))


def daphne_options(prefix: str) -> list[str]:
    """The daphne options of the console's unit, for a console under ``prefix`` ("" or
    "/fleet"), without the bind address, port and WebSocket limits stack.Worker sets itself
    (the unit's limits are checked against the console's in test_units.py)."""
    words = unit_exec_start(CONSOLE_UNIT)
    words = words[1:words.index("console.asgi:application")]
    options: list[str] = []
    words_left = iter(words)
    for word in words_left:
        if word in ("-b", "-p", "--websocket-max-message-size", "--websocket-max-frame-size"):
            next(words_left)  # and its value
            continue
        options.append(word.replace("${FORCE_SCRIPT_NAME}", prefix))
    return options


# -- servers -------------------------------------------------------------------------------


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class Proxy:
    """One reverse proxy of a console, started from a config in ``work``; ``http_port`` only
    redirects, ``https_port`` serves the console at ``prefix`` ("/" or "/fleet/")."""

    name = "proxy"

    def __init__(self, work: Path, tls: Tls, *, console_port: int, prefix: str) -> None:
        self.work, self.tls, self.prefix = work, tls, prefix
        self.work.mkdir(parents=True, exist_ok=True)
        os.chmod(self.work, 0o755)  # the workers (www-data) write their temp files here
        self.http_port, self.https_port = pick_port(), pick_port()
        self.origin = f"https://127.0.0.1:{self.https_port}"
        self.values = {"FLEET_SERVER_NAME": "127.0.0.1", "FLEET_ORIGIN": self.origin,
                       "FLEET_HTTP_PORT": str(self.http_port), "FLEET_HTTPS_PORT": str(self.https_port),
                       "FLEET_PREFIX": prefix, "FLEET_CONSOLE_PORT": str(console_port),
                       "FLEET_TLS_CERT": str(tls.cert), "FLEET_TLS_KEY": str(tls.key)}
        self.pidfile = work / f"{self.name}.pid"
        self.error_log = work / f"{self.name}-error.log"

    @property
    def url(self) -> str:
        """The console's https address through this proxy, ending in its prefix."""
        return self.origin + self.prefix

    def command(self) -> list[str]:
        raise NotImplementedError

    def check_command(self) -> list[str]:
        raise NotImplementedError

    def write_config(self) -> None:
        raise NotImplementedError

    def start(self, timeout: float = 20.0) -> Proxy:
        self.write_config()
        checked = subprocess.run(self.check_command(), capture_output=True, text=True, env=SERVER_ENV,
                                 timeout=30, check=False)
        if checked.returncode != 0:
            raise RuntimeError(f"{self.name} refuses its config:\n{checked.stdout}\n{checked.stderr}")
        started = subprocess.run(self.command(), capture_output=True, text=True, env=SERVER_ENV,
                                 timeout=30, check=False)
        if started.returncode != 0:
            raise RuntimeError(f"{self.name} did not start:\n{started.stdout}\n{started.stderr}\n"
                               f"{tail(self.error_log)}")
        if not wait_until(lambda: self._pid() is not None and accepts(self.https_port)
                          and accepts(self.http_port), timeout, step=0.05):
            self.stop()
            raise RuntimeError(f"{self.name} does not accept on {self.https_port}\n{tail(self.error_log)}")
        return self

    def _pid(self) -> int | None:
        try:
            return int(self.pidfile.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM to the parent named in the pid file; returns once it has exited."""
        pid = self._pid()
        if pid is None or not pid_alive(pid):
            return
        os.kill(pid, signal.SIGTERM)
        if not wait_until(lambda: not pid_alive(pid), timeout, step=0.05):
            os.kill(pid, signal.SIGKILL)
            wait_until(lambda: not pid_alive(pid), 5, step=0.05)


class Nginx(Proxy):
    name = "nginx"

    def write_config(self) -> None:
        site = self.work / "wsgi-fleet.conf"
        site.write_text(render(NGINX_TEMPLATE, self.values))
        temp = self.work / "nginx-temp"
        temp.mkdir(exist_ok=True)
        os.chmod(temp, 0o777)
        (self.work / "nginx.conf").write_text(f"""
user {RUN_USER};
worker_processes 1;
pid {self.pidfile};
error_log {self.error_log} info;
events {{ worker_connections 512; }}
http {{
    include /etc/nginx/mime.types;
    access_log {self.work / 'nginx-access.log'};
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    include {site};
}}
""")

    def check_command(self) -> list[str]:
        return [str(NGINX), "-t", "-q", "-p", str(self.work), "-e", str(self.error_log),
                "-c", str(self.work / "nginx.conf")]

    def command(self) -> list[str]:
        return [str(NGINX), "-p", str(self.work), "-e", str(self.error_log),
                "-c", str(self.work / "nginx.conf")]


class Apache(Proxy):
    name = "apache"
    MODULES = ("mpm_event", "authz_core", "mime", "alias", "headers", "ssl", "socache_shmcb",
               "proxy", "proxy_http", "proxy_balancer", "slotmem_shm", "lbmethod_byrequests",
               "lbmethod_bybusyness")

    def write_config(self) -> None:
        site = self.work / "wsgi-fleet.conf"
        site.write_text(render(APACHE_TEMPLATE, self.values))
        modules = "\n".join(f"LoadModule {name}_module {APACHE_MODULES}/mod_{name}.so"
                            for name in self.MODULES)
        (self.work / "httpd.conf").write_text(f"""
ServerRoot {self.work}
DefaultRuntimeDir {self.work}
PidFile {self.pidfile}
ErrorLog {self.error_log}
LogLevel warn
{modules}
User {RUN_USER}
Group {RUN_USER}
ServerName 127.0.0.1
Listen 127.0.0.1:{self.http_port}
Listen 127.0.0.1:{self.https_port}
TypesConfig /etc/mime.types
LogFormat "%h %l %u %t \\"%r\\" %>s %b" common
CustomLog {self.work / 'apache-access.log'} common
SSLSessionCache shmcb:{self.work}/ssl_scache(512000)
StartServers 1
ServerLimit 2
ThreadsPerChild 32
MaxRequestWorkers 64
Include {site}
""")

    def _base(self) -> list[str]:
        return [str(APACHE), "-d", str(self.work), "-f", str(self.work / "httpd.conf")]

    def check_command(self) -> list[str]:
        return [*self._base(), "-t"]

    def command(self) -> list[str]:
        return [*self._base(), "-k", "start"]
