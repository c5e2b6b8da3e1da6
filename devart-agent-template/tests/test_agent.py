"""The Python SDK against a real devart on PostgreSQL and RabbitMQ."""

from __future__ import annotations

import collections
import json
import logging
import re
import signal
import shutil
import threading
import urllib.parse
import time

import pika
import pytest
from devart_harness import LEASE_SECONDS, PYTHON, TEMPLATE, Devart, management, wait_for

from sdk.agent_sdk import AgentSDK, Result
from sdk.errors import BrokerError, ClaimTaskRemovedError, NonRetryableError


def test_the_template_agent_completes_tasks_running_each_callback_once(devart: Devart):
    agent = devart.register_agent("py-template", ["py-template"])
    proc = devart.spawn([PYTHON, "main.py"], devart.python_env(agent), "template.log", cwd=TEMPLATE)
    ids = devart.create_tasks(20, "py-template")
    devart.wait_status(ids, "DONE", 60)

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0
    log = (devart.workdir / "template.log").read_text()
    runs = collections.Counter(re.findall(r"processing task ([0-9a-f-]{36})", log))
    assert runs == {task_id: 1 for task_id in ids}
    done = devart.task(ids[3])
    assert done["result"] == {"echo": {"n": 3}, "handled_by": "python"}
    assert done["agent_id"] in (None, agent.id)
    rows = devart.sql(
        "SELECT count(*), count(DISTINCT task_id), min(agent_id::text), max(agent_id::text) FROM task_attempts "
        f"WHERE task_id IN ({','.join(repr(i) for i in ids)}) AND outcome = 'DONE'"
    )
    assert rows == [["20", "20", agent.id, agent.id]]
    assert "stopped" in log


def test_a_raising_callback_is_retried_then_quarantined_with_the_python_exception(devart: Devart, start_agent):
    agent = devart.register_agent("py-raise", ["py-raise"])
    calls = collections.Counter()

    def explode(task):
        calls[task["id"]] += 1
        raise RuntimeError(f"boom on attempt {task['attempt']}")

    start_agent(agent, explode)
    [task_id] = devart.create_tasks(1, "py-raise", max_retries=2)
    devart.wait_status([task_id], "QUARANTINED", 60)

    task = devart.task(task_id)
    assert task["last_error"] == "RuntimeError: boom on attempt 3"
    assert task["retry_count"] == 3
    assert calls[task_id] == 3
    attempts = devart.attempts(task_id)
    assert [a["outcome"] for a in attempts] == ["FAILED"] * 3
    details = attempts[0]["details"]
    assert details["name"] == "RuntimeError"
    assert "Traceback (most recent call last)" in details["stack"]
    assert "in explode" in details["stack"]


def test_a_non_retryable_error_quarantines_at_once_and_false_is_a_retryable_failure(devart: Devart, start_agent):
    agent = devart.register_agent("py-verdicts", ["py-verdicts"])

    def decide(task):
        if task["payload"]["n"] == 0:
            raise NonRetryableError("payload.repo is missing")
        if task["attempt"] == 1:
            return False
        return Result({"second": True}, cost="0.0125")

    start_agent(agent, decide, concurrency=2)
    final, retried = devart.create_tasks(2, "py-verdicts", max_retries=3)
    devart.wait_status([final], "QUARANTINED", 30)
    devart.wait_status([retried], "DONE", 30)
    assert devart.task(final)["last_error"] == "NonRetryableError: payload.repo is missing"
    assert devart.task(final)["retry_count"] == 1
    done = devart.task(retried)
    assert (done["result"], done["cost"], done["attempt"]) == ({"second": True}, "0.0125", 2)
    assert devart.attempts(retried)[0]["error"] == "the task callback returned False"


def test_claim_task_raises_an_error_that_explains_the_queue_model():
    sdk = AgentSDK(
        agent_id="0b7c3d7e-1d7a-4c55-9a43-0c1c1d1e1f10",
        api_key="dva_x",
        api_base_url="http://127.0.0.1:9",
        amqp_url="amqp://127.0.0.1:9/",
    )
    with pytest.raises(ClaimTaskRemovedError, match=r"start_consuming\(process_task\)") as raised:
        sdk.claim_task()
    assert "RabbitMQ" in str(raised.value)
    assert isinstance(raised.value, RuntimeError)


def test_an_agent_killed_mid_task_has_its_task_redelivered_and_finished_by_another(devart: Devart):
    agent = devart.register_agent("py-kill", ["py-kill"])
    doomed = devart.spawn(
        [PYTHON, str(TEMPLATE / "tests/agents/sdk_agent.py")],
        {**devart.python_env(agent), "AGENT_BEHAVIOUR": "block", "AGENT_NAME": "doomed"},
        "doomed.log",
    )
    [task_id] = devart.create_tasks(1, "py-kill")
    wait_for(lambda: f"STARTED {task_id}" in (devart.workdir / "doomed.log").read_text(), 30, "the doomed agent to start it")
    doomed.kill()  # SIGKILL: no report, no goodbye
    doomed.wait(5)

    survivor = devart.spawn(
        [PYTHON, str(TEMPLATE / "tests/agents/sdk_agent.py")],
        {**devart.python_env(agent), "AGENT_NAME": "survivor"},
        "survivor.log",
    )
    devart.wait_status([task_id], "DONE", LEASE_SECONDS + 30)
    assert devart.task(task_id)["result"] == {"by": "survivor"}
    assert [a["outcome"] for a in devart.attempts(task_id)] == ["LEASE_EXPIRED", "DONE"]
    # run() stops on SIGTERM and returns.
    survivor.send_signal(signal.SIGTERM)
    assert survivor.wait(20) == 0
    assert "EXITED" in (devart.workdir / "survivor.log").read_text()


def test_stop_consuming_returns_while_a_callback_runs_and_its_outcome_still_reaches_the_platform(
    devart: Devart, start_agent
):
    agent = devart.register_agent("py-stop", ["py-stop"])
    running = threading.Event()
    release = threading.Event()

    def slow(task):
        running.set()
        release.wait(30)
        return {"finished": task["id"]}

    sdk = start_agent(agent, slow)
    first, second = devart.create_tasks(2, "py-stop")
    assert running.wait(30)
    stopper = threading.Thread(target=sdk.stop_consuming)
    stopper.start()
    stopper.join(0.3)
    assert stopper.is_alive(), "stop_consuming() returned before the running callback ended"
    release.set()
    stopper.join(20)
    assert not stopper.is_alive()
    # Its outcome was confirmed before stop_consuming returned; the other task was not taken.
    statuses = {t: devart.task(t)["status"] for t in (first, second)}
    assert sorted(statuses.values()) == ["DONE", "TODO"]
    done = next(t for t, s in statuses.items() if s == "DONE")
    assert devart.task(done)["result"] == {"finished": done}
    assert sdk.in_flight == 0 and sdk.pending_reports == 0


def test_stop_consuming_is_bounded_when_a_callback_outlives_its_grace(devart: Devart, start_agent):
    agent = devart.register_agent("py-grace", ["py-grace"])
    started = threading.Event()

    def stuck(task):
        started.set()
        task.cancelled.wait(60)
        return True

    sdk = start_agent(agent, stuck, shutdown_grace=0.5)
    [task_id] = devart.create_tasks(1, "py-grace", max_retries=0)
    assert started.wait(30)
    began = time.monotonic()
    sdk.stop_consuming()
    assert time.monotonic() - began < 10
    task = devart.task(task_id)
    assert (task["status"], task["last_error"]) == ("QUARANTINED", "agent shut down before the task finished")


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed (apt-get install bubblewrap)")
def test_a_callback_runs_a_command_in_a_sandbox(devart: Devart, start_agent):
    agent = devart.register_agent("py-sandbox", ["py-sandbox"])

    def in_sandbox(task):
        box = task.sandbox(memory=128, ttl_seconds=60)
        run = box.exec(["sh", "-c", "cat; echo from-the-sandbox"], stdin="hello ")
        task.report_progress("ran it", percent=100)
        return {"exit_code": run.exit_code, "stdout": run.stdout}

    start_agent(agent, in_sandbox)
    [task_id] = devart.create_tasks(1, "py-sandbox")
    devart.wait_status([task_id], "DONE", 60)
    assert devart.task(task_id)["result"] == {"exit_code": 0, "stdout": "hello from-the-sandbox\n"}


def test_a_delivery_that_breaks_the_contract_is_rejected_not_requeued(devart: Devart, start_agent, caplog):
    agent = devart.register_agent("py-contract", ["py-contract"])
    seen: list[str] = []
    with caplog.at_level(logging.ERROR):
        start_agent(agent, lambda task: seen.append(task["id"]) or True)
        connection = pika.BlockingConnection(pika.URLParameters(devart.env["AMQP_URL"]))
        try:
            bad = {"type": "devart.task.v1", "task_id": "not-a-uuid", "attempt": 1}
            connection.channel().basic_publish(
                "", f"{devart.prefix}tasks.todo.py-contract", json.dumps(bad).encode(),
                pika.BasicProperties(message_id="bad:1", delivery_mode=2),
            )
        finally:
            connection.close()
        wait_for(lambda: "not a devart.task.v1 message" in caplog.text, 30, "the agent to refuse the bad message")
        # A good task behind it is done; had the bad one been requeued it would have come back by now.
        [task_id] = devart.create_tasks(1, "py-contract")
        devart.wait_status([task_id], "DONE", 30)
    refusals = [r for r in caplog.records if "not a devart.task.v1 message" in r.getMessage()]
    assert len(refusals) == 1
    assert "capability: is required" in refusals[0].getMessage() and "bad:1" in refusals[0].getMessage()
    assert seen == [task_id]


def test_a_wrong_prefix_fails_at_start_naming_the_prefix_and_the_queues(devart: Devart):
    agent = devart.register_agent("py-prefix", ["py-prefix"])
    sdk = AgentSDK(
        agent_id=agent.id, api_key=agent.api_key, api_base_url=devart.url, amqp_url=agent.amqp_url, prefix=""
    )
    with pytest.raises(BrokerError) as refused:
        sdk.start_consuming(lambda task: True)
    message = str(refused.value)
    assert "ACCESS_REFUSED" in message and "(no prefix)" in message
    assert "tasks.todo, tasks.todo.py-prefix" in message and "DEVART_AMQP_PREFIX" in message


def test_the_agent_reconnects_when_the_broker_closes_its_connection(devart: Devart, start_agent, caplog):
    agent = devart.register_agent("py-reconnect", ["py-reconnect"])
    user = f"agent-{agent.id}"
    with caplog.at_level(logging.INFO):
        start_agent(agent, lambda task: {"ok": True})
        wait_for(lambda: management("GET", f"/connections/username/{user}"), 30, "its connection to be listed")
        management("DELETE", f"/connections/username/{user}")
        wait_for(lambda: "RabbitMQ connection re-established" in caplog.text, 30, "the agent to reconnect")
    [task_id] = devart.create_tasks(1, "py-reconnect")
    devart.wait_status([task_id], "DONE", 30)
    assert caplog.text.count("RabbitMQ connection lost or refused") == 1


def test_a_deleted_task_queue_is_waited_for_and_consumed_again(devart: Devart, start_agent, caplog):
    agent = devart.register_agent("py-requeue", ["py-requeue"])
    queue = f"{devart.prefix}tasks.todo.py-requeue"
    with caplog.at_level(logging.INFO):
        start_agent(agent, lambda task: True)
        vhost = urllib.parse.quote(devart.vhost, safe="")
        management("DELETE", f"/queues/{vhost}/{urllib.parse.quote(queue, safe='')}")
        # The API's reconciler declares it again; the agent consumes it once it is back.
        wait_for(lambda: f"queue {queue} exists now; consuming it" in caplog.text, 30, "the agent to consume it again")
    assert f"RabbitMQ cancelled the consumer of {queue}" in caplog.text
    [task_id] = devart.create_tasks(1, "py-requeue")
    devart.wait_status([task_id], "DONE", 30)


def test_the_readme_agent_in_20_lines_runs_as_written(devart: Devart, tmp_path):
    readme = (TEMPLATE / "README.md").read_text()
    code = re.search(r"## A Python agent in 20 lines\n\n```python\n(.*?)```", readme, re.DOTALL).group(1)
    assert len(code.strip().splitlines()) <= 20
    (tmp_path / "agent.py").write_text(code)
    agent = devart.register_agent("py-readme", ["review"])
    proc = devart.spawn([PYTHON, str(tmp_path / "agent.py")], devart.python_env(agent), "readme.log")
    [without_repo] = devart.create_tasks(1, "review")  # payload {"n": 0}: refused for good
    status, created = devart.api(
        "POST", "/api/tasks", {"title": "Review #42", "capability": "review", "payload": {"repo": "acme/api"}}
    )
    assert status == 201, created
    with_repo = created["id"]
    devart.wait_status([with_repo], "DONE", 30)
    devart.wait_status([without_repo], "QUARANTINED", 30)
    assert devart.task(without_repo)["last_error"] == "NonRetryableError: payload.repo is missing"
    done = devart.task(with_repo)
    assert (done["result"], done["cost"]) == ({"reviewed": "acme/api"}, "0.0042")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0, devart.logs("readme.log")
