"""A real devart for the Python SDK's tests: `devart start` on a PostgreSQL database and a RabbitMQ
vhost of its own, created here and dropped at the end, and the processes it started, each ended
by its pid."""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "devart-agent-template"
DEVART = REPO / "bin" / "devart.mjs"

PG = {"host": "127.0.0.1", "port": "5432", "user": "postgres"}
AMQP_HOSTPORT = "127.0.0.1:5672"
MANAGEMENT = "http://127.0.0.1:15672"
MANAGEMENT_AUTH = ("guest", "guest")
#: The lease the test platform grants: short, so lost tasks come back within seconds.
LEASE_SECONDS = 6


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(
    check: Callable[[], Any], timeout: float, what: str | Callable[[], str], interval: float = 0.1
) -> Any:
    """Polls ``check`` until it returns something truthy; fails naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            described = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout:g} s waiting for {described}")
        time.sleep(interval)


def _http(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None, timeout: float = 30):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        with error:
            raw, status = error.read(), error.code
    return status, (json.loads(raw) if raw else None)


def management(method: str, path: str, body: Any = None, allow_404: bool = False) -> Any:
    """Calls the RabbitMQ management API as its administrator."""
    token = base64.b64encode(":".join(MANAGEMENT_AUTH).encode()).decode()
    status, answer = _http(method, f"{MANAGEMENT}/api{path}", body, {"Authorization": f"Basic {token}"})
    if status == 404 and allow_404:
        return None
    if status >= 300:
        raise RuntimeError(f"RabbitMQ management {method} {path}: {status} {answer}")
    return answer


def psql(sql: str, database: str = "postgres") -> list[list[str]]:
    """Runs one statement with psql; rows as lists of text (unaligned, tab-separated)."""
    out = subprocess.run(
        ["psql", "-h", PG["host"], "-p", PG["port"], "-U", PG["user"], "-d", database, "-XAtq", "-F", "\t", "-c", sql],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    return [line.split("\t") for line in out.splitlines() if line]


@dataclass
class RegisteredAgent:
    id: str
    api_key: str
    amqp_url: str
    prefix: str
    capabilities: list[str]

    def env(self, api_url: str) -> dict[str, str]:
        """The environment the template reads."""
        return {
            "DEVART_AGENT_ID": self.id,
            "DEVART_API_KEY": self.api_key,
            "DEVART_API_BASE_URL": api_url,
            "RABBITMQ_URL": self.amqp_url,
            "DEVART_AMQP_PREFIX": self.prefix,
        }


@dataclass
class Devart:
    """One devart API process and what it needs; ``stop()`` removes all of it."""

    workdir: Path
    run_id: str = field(default_factory=lambda: f"{os.getpid()}_{secrets.token_hex(3)}")
    prefix: str = "py."
    url: str = ""
    process: subprocess.Popen | None = None
    children: list[subprocess.Popen] = field(default_factory=list)
    agents: list[str] = field(default_factory=list)
    tokens: dict[str, str] = field(default_factory=dict)
    #: The environment of `devart start` (and of `devart agent`, which reads none of it).
    env: dict[str, str] = field(default_factory=dict)

    @property
    def database(self) -> str:
        return f"devart_py_{self.run_id}"

    @property
    def vhost(self) -> str:
        return f"devart-py-{self.run_id}"

    @property
    def database_url(self) -> str:
        return f"postgres://{PG['user']}@{PG['host']}:{PG['port']}/{self.database}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "devart.log"

    def start(self) -> None:
        psql(f'CREATE DATABASE "{self.database}"')
        vhost = urllib.parse.quote(self.vhost, safe="")
        management("PUT", f"/vhosts/{vhost}", {})
        management("PUT", f"/permissions/{vhost}/guest", {"configure": ".*", "write": ".*", "read": ".*"})
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("DEVART_", "AMQP_", "DATABASE_"))},
            "DATABASE_URL": self.database_url,
            "AMQP_URL": f"amqp://guest:guest@{AMQP_HOSTPORT}/{vhost}",
            "RABBITMQ_MANAGEMENT_URL": f"http://guest:guest@{MANAGEMENT.split('://')[1]}",
            "AMQP_PREFIX": self.prefix,
            "JWT_SECRET": secrets.token_urlsafe(48),
            "DEVART_DATA_DIR": str(self.workdir / "data"),
            "TASK_LEASE_SECONDS": str(LEASE_SECONDS),
            "REAPER_INTERVAL_SECONDS": "1",
            # A deleted queue is declared again within 2 s instead of 10.
            "RECONCILE_INTERVAL_SECONDS": "2",
            "RETRY_BASE_MS": "50",
            "RETRY_CAP_MS": "200",
            "SANDBOX_PROVIDER": "local" if shutil.which("bwrap") else "none",
            "LOG_LEVEL": "warn",
        }
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            ["node", str(DEVART), "start", "--port", str(port), "--agents", "0"],
            cwd=REPO,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        # Tokens while the server starts: `devart token` needs only the secret.
        minting = {
            role: subprocess.Popen(
                ["node", str(DEVART), "token", "--role", role], cwd=REPO, env=self.env, stdout=subprocess.PIPE, text=True
            )
            for role in ("admin", "supervisor")
        }
        for role, proc in minting.items():
            out, _ = proc.communicate(timeout=60)
            if proc.returncode != 0:
                raise RuntimeError(f"devart token --role {role} exited with {proc.returncode}")
            self.tokens[role] = out.strip()

        def healthy() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"devart start exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                return _http("GET", f"{self.url}/ready", timeout=2)[0] == 200
            except OSError:
                return False

        wait_for(healthy, 120, "devart start to answer /ready", interval=0.2)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def logs(self, *names: str) -> str:
        """What the test's processes wrote, by log file name."""
        return "\n".join((self.workdir / name).read_text(errors="replace") for name in names if (self.workdir / name).exists())

    def stop(self) -> None:
        errors: list[str] = []
        for child in [*self.children, *([self.process] if self.process else [])]:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
                try:
                    child.wait(15)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait(5)
        for agent_id in self.agents:
            try:
                management("DELETE", f"/users/agent-{agent_id}", allow_404=True)
            except Exception as error:  # keep removing the rest
                errors.append(str(error))
        for step in (
            lambda: management("DELETE", f"/vhosts/{urllib.parse.quote(self.vhost, safe='')}", allow_404=True),
            lambda: psql(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)'),
        ):
            try:
                step()
            except Exception as error:
                errors.append(str(error))
        if errors:
            raise RuntimeError("could not remove everything the test devart created: " + "; ".join(errors))

    # -- the API as people and systems use it --------------------------------------------------

    def api(self, method: str, path: str, body: Any = None, role: str = "supervisor") -> tuple[int, Any]:
        return _http(method, f"{self.url}{path}", body, {"Authorization": f"Bearer {self.tokens[role]}"})

    def register_agent(self, name: str, capabilities: list[str]) -> RegisteredAgent:
        status, body = self.api("POST", "/api/agents", {"name": name, "capabilities": capabilities}, role="admin")
        assert status == 201, (status, body)
        self.agents.append(body["id"])
        broker = body["broker"]
        # The registration answer names the prefix on devarts that say it; older ones do not.
        prefix = broker.get("amqp_prefix", self.prefix)
        return RegisteredAgent(body["id"], body["api_key"], broker["url"], prefix, capabilities)

    def create_tasks(self, count: int, capability: str, **fields: Any) -> list[str]:
        ids: list[str] = []
        for start in range(0, count, 1000):
            batch = [
                {"title": f"{capability} #{i}", "capability": capability, "payload": {"n": i}, **fields}
                for i in range(start, min(count, start + 1000))
            ]
            status, body = self.api("POST", "/api/tasks/batch", {"tasks": batch})
            assert status == 201, (status, body)
            ids.extend(t["id"] for t in body["items"])
        return ids

    def task(self, task_id: str) -> dict[str, Any]:
        status, body = self.api("GET", f"/api/tasks/{task_id}", role="supervisor")
        assert status == 200, (status, body)
        return body

    def attempts(self, task_id: str) -> list[dict[str, Any]]:
        status, body = self.api("GET", f"/api/tasks/{task_id}/attempts")
        assert status == 200, (status, body)
        return body["items"]

    def sql(self, statement: str) -> list[list[str]]:
        return psql(statement, self.database)

    def count_status(self, ids: list[str], status: str) -> int:
        listed = ",".join(f"'{i}'" for i in ids)
        return int(self.sql(f"SELECT count(*) FROM tasks WHERE id IN ({listed}) AND status = '{status}'")[0][0])

    def wait_status(self, ids: list[str], status: str, timeout: float) -> None:
        wait_for(
            lambda: self.count_status(ids, status) == len(ids),
            timeout,
            lambda: f"{len(ids)} task(s) {status} (have {self.count_status(ids, status)}); devart log:\n{self.log_tail()}",
            interval=0.25,
        )

    def spawn(self, argv: list[str], env: dict[str, str], log_name: str, cwd: Path = REPO) -> subprocess.Popen:
        """Starts a process of the test (an agent); ended by ``stop()`` unless the test does it."""
        log = open(self.workdir / log_name, "w")
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.children.append(proc)
        return proc

    def python_env(self, agent: RegisteredAgent) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("DEVART_", "RABBITMQ_"))}
        return {**base, **agent.env(self.url), "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(TEMPLATE)}


PYTHON = sys.executable
