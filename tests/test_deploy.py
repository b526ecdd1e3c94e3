"""The deployment recipes in deploy/ (issue 12, point 7), each checked as far as this
machine allows.

- systemd: ``systemd-analyze verify`` and ``security --offline`` on the unit, and the
  unit's own ExecStart line run as a real process, stopped with its KillSignal.
- Dockerfile and compose.yaml: no Docker engine runs here, so they are not built; their
  shape is checked (stages, user, the settings every instance must share), the
  HEALTHCHECK command is run, and the nginx configuration compose mounts passes `nginx -t`.
- nginx auth_request: Debian's nginx, as a foreground process on a free port, in front of
  a real `jwtauth serve` and a small app that echoes what it receives.
- Traefik ForwardAuth: no Traefik binary here; the file's shape is checked.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import PASSWORD, LiveProcess, free_port, unavailable

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
UNIT = DEPLOY / "jwtauth.service"
INSTALLED_JWTAUTH = "/opt/jwtauth/venv/bin/jwtauth"  # where the unit expects the command
VENV_JWTAUTH = Path(sys.executable).with_name("jwtauth")
LIVEZ = "/livez"


def unit_settings(text: str) -> dict[str, list[str]]:
    """``Section.Key`` -> every value given (systemd allows a key several times)."""
    settings: dict[str, list[str]] = {}
    section = ""
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, _, value = line.partition("=")
        settings.setdefault(f"{section}.{key.strip()}", []).append(value.strip())
    return settings


def seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+)\s*(s|sec|min)?", value)
    assert match, f"not a plain systemd duration: {value}"
    return float(match.group(1)) * (60 if match.group(2) == "min" else 1)


def wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    for _ in range(300):
        if process.poll() is not None:
            pytest.fail(f"exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    process.kill()
    pytest.fail(f"no answer at {url} within 30 s:\n{log.read_text()[-3000:]}")


# -- systemd ------------------------------------------------------------------------------


def local_unit(tmp_path: Path) -> Path:
    """The unit with its command pointing at this checkout's virtual environment."""
    text = UNIT.read_text()
    assert f"ExecStart={INSTALLED_JWTAUTH} " in text
    path = tmp_path / "jwtauth.service"
    path.write_text(text.replace(INSTALLED_JWTAUTH, str(VENV_JWTAUTH)))
    return path


def systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        # The only check allowed to skip under CI: systemd is part of the machine image,
        # and installing it would be a change to the machine, not to the project.
        pytest.skip("systemd-analyze is not installed (apt-get install -y systemd)")
    return found


def test_systemd_unit_passes_verify(tmp_path: Path) -> None:
    result = subprocess.run([systemd_analyze(), "verify", str(local_unit(tmp_path))],
                            capture_output=True, text=True, timeout=60)
    # verify exits 0 even for an unknown key or a bad value; it says so on stderr.
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


def test_systemd_unit_is_hardened(tmp_path: Path) -> None:
    settings = unit_settings(UNIT.read_text())
    required = {
        "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
        "PrivateTmp": "yes", "PrivateDevices": "yes", "ProtectKernelTunables": "yes",
        "ProtectKernelModules": "yes", "ProtectKernelLogs": "yes", "DynamicUser": "yes",
        "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX", "CapabilityBoundingSet": "",
        "StateDirectory": "jwtauth", "KillSignal": "SIGTERM",
    }
    for key, value in required.items():
        assert settings.get(f"Service.{key}") == [value], key
    assert "@system-service" in settings["Service.SystemCallFilter"]
    assert settings["Service.EnvironmentFile"] == ["/etc/jwtauth/jwtauth.env"]
    # Longer than the server's own drain (JWTAUTH_SHUTDOWN_TIMEOUT, 30 s by default).
    assert seconds(settings["Service.TimeoutStopSec"][0]) > 30
    result = subprocess.run(
        [systemd_analyze(), "security", "--offline=true", "--no-pager", str(local_unit(tmp_path))],
        capture_output=True, text=True, timeout=60,
    )
    level = re.search(r"Overall exposure level for \S+: ([\d.]+)", result.stdout)
    if level is None:
        pytest.skip(f"this systemd-analyze has no offline security report: {result.stderr}")
    # systemd's scale: 0 is fully locked down, 10 is "UNSAFE"; below 2 it calls "OK".
    assert float(level.group(1)) < 2.0, result.stdout


def test_the_units_command_serves_and_stops_on_its_kill_signal(tmp_path: Path) -> None:
    settings = unit_settings(UNIT.read_text())
    argv = shlex.split(settings["Service.ExecStart"][0])
    assert argv[0] == INSTALLED_JWTAUTH
    argv[0] = str(VENV_JWTAUTH)
    assert VENV_JWTAUTH.exists(), "the venv has no jwtauth command: pip install -e ."
    state = tmp_path / "state"  # StateDirectory= and WorkingDirectory=
    state.mkdir(mode=0o700)
    port = free_port()
    env_file = tmp_path / "jwtauth.env"  # what EnvironmentFile= names, in its format
    env_file.write_text("\n".join([
        "# as in /etc/jwtauth/jwtauth.env",
        "JWTAUTH_HOST=127.0.0.1",
        f"JWTAUTH_PORT={port}",
        f"JWTAUTH_DATABASE_URL=sqlite:///{state / 'jwtauth.db'}",
        "JWTAUTH_ARGON2_TIME_COST=1",
        "JWTAUTH_ARGON2_MEMORY_COST=8192",
        "JWTAUTH_LOG_LEVEL=INFO",  # the shutdown's own lines say it was graceful
    ]) + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("JWTAUTH_")}
    for line in env_file.read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key] = value
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(argv, env=env, cwd=state, stdout=out,
                                   stderr=subprocess.STDOUT,
                                   umask=int(settings["Service.UMask"][0], 8))
    try:
        wait_healthy(f"http://127.0.0.1:{port}", process, log)
        assert (state / "jwtauth.db").stat().st_mode & 0o077 == 0  # UMask=0077 held
        kill_signal = signal.Signals[settings["Service.KillSignal"][0]]
        process.send_signal(kill_signal)
        # Within TimeoutStopSec, so systemd never needs its SIGKILL, and cleanly: uvicorn
        # drains, runs the app's shutdown, then exits by re-raising the signal, which
        # systemd counts as a clean exit for SIGTERM (SuccessExitStatus's default).
        status = process.wait(timeout=seconds(settings["Service.TimeoutStopSec"][0]))
        assert status in (0, -kill_signal), log.read_text()[-3000:]
        assert "Application shutdown complete" in log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


# -- Dockerfile ---------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", (DEPLOY / "Dockerfile").read_text())
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            rows.append((word.upper(), rest.strip()))
    return rows


def test_dockerfile_builds_in_one_stage_and_runs_as_no_root() -> None:
    rows = dockerfile_instructions()
    stages = [i for i, (word, _) in enumerate(rows) if word == "FROM"]
    assert len(stages) >= 2, "multi-stage: the build tools stay out of the image"
    final = rows[stages[-1]:]
    users = [rest for word, rest in final if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), users
    assert any(word == "COPY" and rest.startswith("--from=build") for word, rest in final)
    installs = [rest for word, rest in rows if word == "RUN" and "pip install" in rest]
    assert any("-c constraints.txt '.[server]'" in rest for rest in installs), installs
    healthcheck = [rest for word, rest in final if word == "HEALTHCHECK"]
    assert len(healthcheck) == 1 and LIVEZ in healthcheck[0]
    assert ("STOPSIGNAL", "SIGTERM") in final
    assert not [rest for word, rest in rows if word == "ADD"], "COPY only: no remote ADD"


def test_dockerfile_copies_files_the_repository_has() -> None:
    sources = []
    for word, rest in dockerfile_instructions():
        if word == "COPY" and not rest.startswith("--from"):
            sources += rest.split()[:-1]
    assert sources
    missing = [s for s in sources if not (ROOT / s).exists()]
    assert set(missing) <= {"constraints.txt"}, missing
    if missing:
        pytest.skip("constraints.txt comes with the packaging branch (issue 12); "
                    "every other file the Dockerfile copies exists")


class _Livez(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == LIVEZ else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def run_healthcheck(port: int) -> int:
    healthcheck = next(rest for word, rest in dockerfile_instructions() if word == "HEALTHCHECK")
    command = json.loads(healthcheck[healthcheck.index("CMD") + 3:].strip())
    assert command[0] == "python"
    env = {**os.environ, "JWTAUTH_PORT": str(port)}
    return subprocess.run([sys.executable, *command[1:]], env=env, capture_output=True,
                          timeout=30).returncode


@pytest.mark.parametrize("status", [200, 404, 503])
def test_healthcheck_passes_only_on_a_200_from_livez(status: int) -> None:
    handler = type("Livez", (_Livez,), {"status": status})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert (run_healthcheck(server.server_address[1]) == 0) == (status == 200)
    finally:
        server.shutdown()
        server.server_close()
    assert run_healthcheck(free_port()) != 0  # nothing listening: unhealthy


def test_healthcheck_against_a_real_server(live_server: Any) -> None:
    port = int(live_server.url.rsplit(":", 1)[1])
    # /livez comes with the operations branch (issue 12, point 2); until then the check
    # must fail, and from then on pass.
    has_livez = httpx.get(live_server.url + LIVEZ).status_code == 200
    assert (run_healthcheck(port) == 0) == has_livez


# -- compose.yaml -------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    data = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert isinstance(data, dict)
    return data


def jwtauth_services(services: dict[str, Any]) -> dict[str, Any]:
    return {name: s for name, s in services.items() if isinstance(s.get("build"), dict)
            and s["build"].get("dockerfile") == "deploy/Dockerfile"}


def test_compose_runs_two_instances_that_agree() -> None:
    services = compose()["services"]
    assert {"postgres", "redis", "proxy"} <= set(services)
    instances = jwtauth_services(services)
    assert len(instances) >= 2, instances
    environments = [s["environment"] for s in instances.values()]
    assert all(env == environments[0] for env in environments)  # docs/deployment.md
    env = environments[0]
    for key in ("JWTAUTH_PUBLIC_URL", "JWTAUTH_KEY_ENCRYPTION_KEY", "JWTAUTH_DATABASE_URL",
                "JWTAUTH_REDIS_URL", "JWTAUTH_REDIS_PREFIX", "JWTAUTH_TRUSTED_PROXIES"):
        assert env.get(key), key
    assert env["JWTAUTH_DATABASE_URL"].startswith("postgresql://")
    assert env["JWTAUTH_REDIS_URL"].startswith("redis://")
    # Secrets come from the operator's environment; compose refuses to start without them.
    assert ":?" in env["JWTAUTH_KEY_ENCRYPTION_KEY"]
    for name, service in instances.items():
        assert "ports" not in service, f"{name} must be reached through the proxy only"
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert service["depends_on"]["redis"]["condition"] == "service_healthy"
        assert service.get("cap_drop") == ["ALL"] and service.get("read_only") is True
    for name in ("postgres", "redis"):
        assert services[name]["healthcheck"]["test"], name
        assert "ports" not in services[name], f"{name} is for the instances only"
    proxy = services["proxy"]
    assert proxy["networks"]["backend"]["ipv4_address"] == env["JWTAUTH_TRUSTED_PROXIES"]
    for volume in proxy["volumes"]:
        assert (DEPLOY / volume.split(":")[0]).is_file(), volume


# -- nginx ----------------------------------------------------------------------------------


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists()
                                      else None)
    if found is None:
        unavailable("nginx", "not installed: apt-get install -y nginx")
    assert found is not None
    return found


def nginx_config(prefix: Path, port: int, upstreams: dict[str, int], server: str) -> Path:
    """A whole nginx.conf for a foreground nginx that keeps all its files under ``prefix``."""
    for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (prefix / name).mkdir(parents=True, exist_ok=True)
    blocks = "\n".join(f"upstream {name} {{ server 127.0.0.1:{p}; }}"
                       for name, p in upstreams.items())
    conf = prefix / "nginx.conf"
    conf.write_text(f"""
daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    {blocks}
    server {{
        listen 127.0.0.1:{port};
        {server}
    }}
}}
""")
    return conf


def test_compose_nginx_configuration_is_valid(tmp_path: Path) -> None:
    # Compose's names resolve only inside compose: point them at loopback for `nginx -t`.
    text = (DEPLOY / "nginx" / "compose.conf").read_text()
    text = re.sub(r"server (jwtauth-a|jwtauth-b|app):", "server 127.0.0.1:", text)
    text = text.replace("/etc/nginx/snippets/jwtauth_auth_request.conf",
                        str(DEPLOY / "nginx" / "auth_request.conf"))
    text = text.replace("listen 80;", f"listen 127.0.0.1:{free_port()};")
    included = tmp_path / "compose.conf"
    included.write_text(text)
    conf = tmp_path / "nginx.conf"
    conf.write_text(f"pid {tmp_path}/nginx.pid; error_log stderr; events {{}} "
                    f"http {{ access_log off; include {included}; }}")
    result = subprocess.run(
        [nginx_binary(), "-t", "-p", str(tmp_path), "-e", "stderr", "-c", str(conf)],
        capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 0, result.stderr


class EchoApp:
    """The protected app: answers every request with the method and headers it got."""

    def __init__(self) -> None:
        self.seen: list[dict[str, str]] = []
        app = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                seen = {"method": self.command, **{k.lower(): v for k, v in self.headers.items()}}
                app.seen.append(seen)
                body = json.dumps(seen).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def nginx_in_front(live_server: Any, tmp_path: Path) -> Iterator[tuple[str, EchoApp]]:
    binary = nginx_binary()
    app = EchoApp()
    port = free_port()
    jwtauth_port = int(live_server.url.rsplit(":", 1)[1])
    conf = nginx_config(tmp_path, port, {"jwtauth": jwtauth_port, "app": app.port},
                        f"include {DEPLOY / 'nginx' / 'auth_request.conf'};")
    log = tmp_path / "nginx.out"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [binary, "-p", str(tmp_path), "-e", str(tmp_path / "error.log"), "-c", str(conf)],
            stdout=out, stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            if process.poll() is not None:
                errors = (tmp_path / "error.log").read_text()
                pytest.fail(f"nginx exited: {log.read_text()}{errors}")
            try:
                httpx.get(base + "/", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        yield base, app
    finally:
        LiveProcess(base, process, log).stop()
        app.close()


def sign_in(url: str, username: str) -> tuple[str, dict[str, Any]]:
    user = httpx.post(url + "/auth/register", json={"username": username, "password": PASSWORD})
    assert user.status_code == 201, user.text
    login = httpx.post(url + "/auth/login", json={"username": username, "password": PASSWORD})
    assert login.status_code == 200, login.text
    return login.json()["access_token"], user.json()


def test_nginx_auth_request_lets_good_tokens_through(live_server: Any,
                                                     nginx_in_front: tuple[str, EchoApp]) -> None:
    base, app = nginx_in_front
    token, user = sign_in(live_server.url, "nginx-alice")
    bearer = {"Authorization": f"Bearer {token}"}
    # A client's own X-Auth-* headers never reach the app: nginx sets them from jwtauth.
    forged = {**bearer, "X-Auth-User-Id": "someone-else", "X-Auth-Roles": "admin"}

    def through(method: str) -> httpx.Response:
        return httpx.request(method, base + "/app/notes", headers=forged, content=b"{}")

    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(through, ["GET", "POST"] * 10))
    assert [a.status_code for a in answers] == [200] * 20
    for answer in answers:
        seen = answer.json()
        assert seen["x-auth-user-id"] == user["id"]
        assert seen["x-auth-roles"] == "user"
        assert seen["x-auth-username"] == "nginx-alice"
    assert sorted(a.json()["method"] for a in answers) == ["GET"] * 10 + ["POST"] * 10
    assert len(app.seen) == 20


def test_nginx_auth_request_refuses_missing_bad_and_logged_out_tokens(
    live_server: Any, nginx_in_front: tuple[str, EchoApp]
) -> None:
    base, app = nginx_in_front
    token, _ = sign_in(live_server.url, "nginx-bob")
    bearer = {"Authorization": f"Bearer {token}"}
    assert httpx.get(base + "/app/x", headers=bearer).status_code == 200
    reached = len(app.seen)

    missing = httpx.get(base + "/app/x", headers={"X-Auth-User-Id": "1"})
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    bad = httpx.get(base + "/app/x", headers={"Authorization": f"Bearer {token[:-4]}AAAA"})
    assert bad.status_code == 401
    assert 'error="invalid_token"' in bad.headers["www-authenticate"]

    logout = httpx.post(live_server.url + "/auth/logout", headers=bearer)
    assert logout.status_code == 204
    after = [httpx.get(base + "/app/x", headers=bearer) for _ in range(3)]
    assert [a.status_code for a in after] == [401] * 3
    assert len(app.seen) == reached, "a refused request reached the app"


# -- Traefik --------------------------------------------------------------------------------


def test_traefik_forwardauth_asks_auth_check_and_copies_its_headers() -> None:
    data = yaml.safe_load((DEPLOY / "traefik" / "forwardauth.yaml").read_text())
    middlewares = data["http"]["middlewares"]
    ((middleware_name, middleware),) = middlewares.items()
    forward = middleware["forwardAuth"]
    assert forward["address"].endswith("/auth/check")
    assert forward["trustForwardHeader"] is False
    assert forward["authRequestHeaders"] == ["Authorization"]
    # Listed headers replace what the client sent under the same names.
    assert forward["authResponseHeaders"] == ["X-Auth-User-Id", "X-Auth-Roles",
                                              "X-Auth-Username"]
    routers = data["http"]["routers"]
    assert routers and all(middleware_name in router["middlewares"] for router in routers.values())
    assert all(router["service"] in data["http"]["services"] for router in routers.values())
