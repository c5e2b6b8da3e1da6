"""The SDK's rules without a devart: configuration, what a callback's answer means, and how a held
outcome is reported against a scripted API."""

from __future__ import annotations

import json
import logging
import threading
import time
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from sdk.agent_sdk import AgentSDK, Result, _Running
from sdk.api_client import ApiClient, retry_after_seconds
from sdk.reports import Report, Reporter, classify_report_status

TASK = "0b7c3d7e-1d7a-4c55-9a43-0c1c1d1e1f10"
ENV = {
    "DEVART_AGENT_ID": "7d0a2c1e-0000-4000-8000-000000000001",
    "DEVART_API_KEY": "dva_test",
    "DEVART_API_BASE_URL": "http://127.0.0.1:9",
    "RABBITMQ_URL": "amqp://agent:pw@127.0.0.1:5672/",
}


class ScriptedApi:
    """An HTTP server answering each path with the next of its scripted answers (the last repeats)."""

    def __init__(self, script: dict[str, list[tuple[int, object, dict[str, str]]]]) -> None:
        self.script = script
        self.requests: list[tuple[str, dict]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"null")
                api.requests.append((self.path, body))
                answers = api.script[self.path]
                status, answer, headers = answers.pop(0) if len(answers) > 1 else answers[0]
                raw = json.dumps(answer).encode()
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        self.client = ApiClient(f"http://127.0.0.1:{self.server.server_port}", "dva_test")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def scripted():
    apis: list[ScriptedApi] = []

    def build(script):
        api = ScriptedApi(script)
        apis.append(api)
        return api

    yield build
    for api in apis:
        api.close()


def complete(result: object = None) -> Report:
    return Report("complete", TASK, 1, result=result, has_result=True)


# -- configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "argument"),
    [
        ("DEVART_AGENT_ID", "agent_id"),
        ("DEVART_API_KEY", "api_key"),
        ("DEVART_API_BASE_URL", "api_base_url"),
        ("RABBITMQ_URL", "amqp_url"),
    ],
)
def test_a_missing_setting_is_a_value_error_naming_the_argument_and_the_variable(monkeypatch, variable, argument):
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv(variable)
    with pytest.raises(ValueError, match=rf"{argument} is missing: pass {argument}=… or set {variable}"):
        AgentSDK()


def test_every_setting_comes_from_the_environment_when_not_passed(monkeypatch):
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DEVART_AMQP_PREFIX", "prod.")
    monkeypatch.setenv("DEVART_CAPABILITIES", "echo, shell")
    monkeypatch.setenv("DEVART_CONCURRENCY", "3")
    sdk = AgentSDK(agent_id=None, api_key=None, api_base_url=None)
    assert (sdk.agent_id, sdk.api_base_url, sdk.amqp_url) == (
        ENV["DEVART_AGENT_ID"],
        ENV["DEVART_API_BASE_URL"],
        ENV["RABBITMQ_URL"],
    )
    assert (sdk.prefix, sdk.capabilities, sdk.concurrency) == ("prod.", ["echo", "shell"], 3)
    assert AgentSDK(prefix="", concurrency=1).prefix == ""


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"concurrency": 0}, "concurrency must be an integer"),
        ({"capabilities": ["Shell"]}, "not a lowercase slug"),
        ({"capabilities": "echo"}, "must be a list"),
        ({"prefix": "a*b"}, "not a valid queue name prefix"),
        ({"amqp_url": "http://127.0.0.1:5672"}, "amqp:// or amqps://"),
    ],
)
def test_bad_settings_are_refused_with_a_reason(monkeypatch, options, message):
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=message):
        AgentSDK(**options)


# -- a callback's answer ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "kind", "result", "cost"),
    [
        (True, "complete", None, None),
        (None, "complete", None, None),
        ({"ok": 1}, "complete", {"ok": 1}, None),
        ([1, "two"], "complete", [1, "two"], None),
        (Result("text", cost=0.5), "complete", "text", 0.5),
        (Result({"n": 1}, cost=Decimal("1E-3")), "complete", {"n": 1}, "0.001"),
    ],
)
def test_what_a_callback_returns_becomes_a_completion(monkeypatch, answer, kind, result, cost):
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    run = _Running({"task_id": TASK, "attempt": 2})
    report = AgentSDK()._outcome_report(run, answer)
    assert (report.kind, report.result, report.cost, report.attempt) == (kind, result, cost, 2)
    assert ("result" in report.body()) == (answer is not True and answer is not None)


def test_false_is_a_retryable_failure_and_a_result_that_is_not_json_a_final_one(monkeypatch):
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    sdk, run = AgentSDK(), _Running({"task_id": TASK, "attempt": 1})
    retry = sdk._outcome_report(run, False)
    assert (retry.kind, retry.retryable, retry.error) == ("failure", True, "the task callback returned False")
    final = sdk._outcome_report(run, {"when": object()})
    assert (final.kind, final.retryable) == ("failure", False)
    assert final.error.startswith("the task callback's result is not JSON")
    assert sdk._outcome_report(run, float("nan")).retryable is False


# -- holding an outcome until the platform answers --------------------------------------------


def test_report_statuses_are_read_as_the_typescript_sdk_reads_them():
    verdicts = {s: classify_report_status(s) for s in (200, 400, 401, 403, 404, 408, 409, 410, 422, 429, 500, 503)}
    assert verdicts == {
        200: "confirmed",
        400: "refused",
        401: "revoked",
        403: "lost",
        404: "lost",
        408: "retry",
        409: "lost",
        410: "lost",
        422: "refused",
        429: "retry",
        500: "retry",
        503: "retry",
    }
    assert retry_after_seconds("3", 60, 0) == 3.0
    assert retry_after_seconds("Thu, 01 Jan 1970 00:01:00 GMT", 30, 0) == 30.0
    assert retry_after_seconds("soon", 60, 0) is None


def test_an_outcome_is_held_through_503s_and_honours_retry_after(scripted, caplog):
    path = f"/api/tasks/{TASK}/complete"
    api = scripted({path: [(503, {"detail": "db down"}, {"Retry-After": "1"}), (503, {}, {}), (200, {"id": TASK}, {})]})
    reporter = Reporter(api.client, logging.getLogger("test.reporter"), max_backoff=0.05)
    began = time.monotonic()
    with caplog.at_level(logging.INFO, logger="test.reporter"):
        end = reporter.report(complete({"n": 1}))
    assert (end.outcome, end.kind) == ("confirmed", "complete")
    assert time.monotonic() - began >= 1.0
    assert [body for _, body in api.requests] == [{"attempt": 1, "result": {"n": 1}}] * 3
    assert "API unreachable (answered 503); holding 1 outcome(s)" in caplog.text
    assert "API reachable again" in caplog.text
    assert reporter.pending == 0


def test_a_409_drops_the_outcome_with_a_warning(scripted, caplog):
    api = scripted({f"/api/tasks/{TASK}/complete": [(409, {"detail": "Task is DONE, not IN_PROGRESS"}, {})]})
    reporter = Reporter(api.client, logging.getLogger("test.reporter"))
    with caplog.at_level(logging.WARNING, logger="test.reporter"):
        assert reporter.report(complete()).outcome == "lost"
    assert "no longer this agent's" in caplog.text


def test_a_refused_result_is_reported_as_a_final_failure_with_the_servers_reason(scripted):
    api = scripted(
        {
            f"/api/tasks/{TASK}/complete": [(400, {"detail": "result: nested deeper than 64"}, {})],
            f"/api/tasks/{TASK}/report-failure": [(200, {"status": "QUARANTINED"}, {})],
        }
    )
    end = Reporter(api.client, logging.getLogger("test.reporter")).report(complete({"deep": []}))
    assert (end.outcome, end.kind) == ("confirmed", "failure")
    assert api.requests[-1][1] == {
        "error": "the platform refused the result: result: nested deeper than 64",
        "retryable": False,
        "attempt": 1,
    }


def test_a_refused_failure_report_is_sent_once_more_bare_then_given_up(scripted):
    api = scripted({f"/api/tasks/{TASK}/report-failure": [(400, {"detail": "details: bad"}, {})]})
    report = Report("failure", TASK, 1, error="boom\x00", retryable=True, details={"stack": "…"})
    end = Reporter(api.client, logging.getLogger("test.reporter")).report(report)
    assert end.outcome == "refused"
    assert [body for _, body in api.requests] == [
        {"error": "boom\x00", "retryable": True, "attempt": 1, "details": {"stack": "…"}},
        {"error": "boom\ufffd", "retryable": True, "attempt": 1},
    ]


def test_a_401_revokes_the_agent_and_drops_every_held_outcome(scripted):
    other = "1b7c3d7e-1d7a-4c55-9a43-0c1c1d1e1f10"
    api = scripted(
        {
            f"/api/tasks/{other}/complete": [(503, {}, {})],
            f"/api/tasks/{TASK}/complete": [(401, {"detail": "unknown key"}, {})],
        }
    )
    revoked = threading.Event()
    reporter = Reporter(api.client, logging.getLogger("test.reporter"), max_backoff=0.05, on_revoked=revoked.set)
    held: list = []
    holder = threading.Thread(target=lambda: held.append(reporter.report(Report("complete", other, 1))))
    holder.start()
    while not api.requests:
        time.sleep(0.01)
    assert reporter.report(complete()).outcome == "revoked"
    holder.join(5)
    assert revoked.is_set() and held[0].outcome in ("revoked", "abandoned")
    assert reporter.pending == 0
