"""A Python agent the tests run as a process of its own (so it can be killed). Prints
"STARTED <task id>" when a callback begins and "DONE <task id>" before it returns.

AGENT_BEHAVIOUR=block: the callback waits until the task is cancelled (an agent to kill mid-task);
anything else: it returns {"by": AGENT_NAME} at once. It stops on SIGTERM through AgentSDK.run().
"""

import logging
import os
import sys

from sdk.agent_sdk import AgentSDK

logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
logging.getLogger("pika").setLevel(logging.WARNING)
name = os.environ.get("AGENT_NAME", "python")
block = os.environ.get("AGENT_BEHAVIOUR") == "block"


def process_task(task):
    print(f"STARTED {task['id']}", flush=True)
    if block:
        task.cancelled.wait()
    print(f"DONE {task['id']}", flush=True)
    return {"by": name}


AgentSDK().run(process_task)
print("EXITED", flush=True)
