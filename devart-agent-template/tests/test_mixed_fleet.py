"""Two TypeScript agents (`devart agent`) and two Python agents share one capability."""

from __future__ import annotations

import collections
import re
import urllib.parse

from devart_harness import DEVART, PYTHON, TEMPLATE, Devart, management, wait_for

TASKS = 1000


def test_a_mixed_fleet_completes_1000_tasks_each_done_exactly_once_and_both_kinds_take_work(devart: Devart):
    typescript = [devart.register_agent(f"ts-{i}", ["echo"]) for i in (1, 2)]
    python = [devart.register_agent(f"py-{i}", ["echo"]) for i in (1, 2)]
    for index, agent in enumerate(typescript, 1):
        devart.spawn(
            ["node", str(DEVART), "agent", "--capability", "echo", "--api", devart.url, "--key", agent.api_key,
             "--amqp", agent.amqp_url, "--prefix", agent.prefix, "--concurrency", "4"],
            devart.env,
            f"ts-agent-{index}.log",
        )
    for index, agent in enumerate(python, 1):
        devart.spawn(
            [PYTHON, str(TEMPLATE / "tests/agents/sdk_agent.py")],
            {**devart.python_env(agent), "AGENT_NAME": f"py-{index}", "DEVART_CONCURRENCY": "4"},
            f"py-agent-{index}.log",
        )
    # All four consume before the work arrives, so neither kind can have it all by starting first.
    queue = urllib.parse.quote(f"{devart.prefix}tasks.todo.echo", safe="")
    vhost = urllib.parse.quote(devart.vhost, safe="")
    wait_for(
        lambda: management("GET", f"/queues/{vhost}/{queue}").get("consumers") == 4,
        60,
        lambda: f"4 consumers on the echo queue; agent logs:\n{devart.logs('ts-agent-1.log', 'py-agent-1.log')}",
        interval=0.2,
    )

    ids = devart.create_tasks(TASKS, "echo")
    devart.wait_status(ids, "DONE", 120)

    done = devart.sql(
        "SELECT a.task_id, a.agent_id FROM task_attempts a JOIN tasks t ON t.id = a.task_id "
        "WHERE t.capability = 'echo' AND a.outcome = 'DONE'"
    )
    per_task = collections.Counter(task_id for task_id, _ in done)
    assert len(per_task) == TASKS and set(per_task.values()) == {1}, "a task was DONE more than once"
    by_agent = collections.Counter(agent_id for _, agent_id in done)
    by_typescript = sum(by_agent[a.id] for a in typescript)
    by_python = sum(by_agent[a.id] for a in python)
    assert by_typescript + by_python == TASKS
    assert by_typescript > 0 and by_python > 0, dict(by_agent)
    # Each Python callback ran once for each task it finished.
    runs = collections.Counter()
    for index in (1, 2):
        runs.update(re.findall(r"^DONE (\S+)$", devart.logs(f"py-agent-{index}.log"), re.MULTILINE))
    assert sum(runs.values()) == by_python and set(runs.values()) == {1}
