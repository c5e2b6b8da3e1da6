"""A devart agent: replace process_task with your work, then run `python main.py`.

Configuration comes from the environment (see README.md): DEVART_AGENT_ID, DEVART_API_KEY,
DEVART_API_BASE_URL and RABBITMQ_URL from the agent's registration, DEVART_AMQP_PREFIX if the
devart API runs with AMQP_PREFIX.
"""

import logging
import os
import signal
import time

from sdk.agent_sdk import AgentSDK, NonRetryableError

logging.basicConfig(level=os.getenv("LOG_LEVEL", "INFO"), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
logging.getLogger("pika").setLevel(logging.WARNING)  # its connection chatter
log = logging.getLogger("agent")

shutdown_requested = False


def on_signal(signum, _frame):
    global shutdown_requested
    log.info("%s received: finishing the tasks in hand, then exiting", signal.Signals(signum).name)
    shutdown_requested = True


def process_task(task):
    """Runs on a worker thread for each task. Return a dict (the result) to complete it, False to
    have it retried, or raise: NonRetryableError quarantines it, any other exception retries it."""
    log.info("processing task %s (attempt %s): %s", task["id"], task["attempt"], task["title"])
    payload = task["payload"]
    if payload.get("fail") == "permanent":
        raise NonRetryableError("the payload asked for a permanent failure")
    if payload.get("fail"):
        raise RuntimeError(f"the payload asked to fail: {payload['fail']}")
    return {"echo": payload, "handled_by": "python"}


def main():
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    sdk = AgentSDK(
        agent_id=os.getenv("DEVART_AGENT_ID"),
        api_key=os.getenv("DEVART_API_KEY"),
        api_base_url=os.getenv("DEVART_API_BASE_URL"),
    )
    sdk.start_consuming(process_task)
    while not shutdown_requested and not sdk.refused.is_set():
        time.sleep(1)
    sdk.stop_consuming()
    log.info("stopped")


if __name__ == "__main__":
    main()
