"""Session fixtures: one real devart (PostgreSQL + RabbitMQ) for every test that asks for it."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

try:
    import pika  # noqa: F401
except ImportError:  # pragma: no cover - a set-up problem, said once and clearly
    pytest.exit(
        "pika is missing: apt-get install -y python3-pika python3-pytest, and run the tests with "
        "that Python (/usr/bin/python3 -m pytest devart-agent-template/tests)",
        returncode=4,
    )

from devart_harness import Devart  # noqa: E402

from sdk.agent_sdk import AgentSDK  # noqa: E402


@pytest.fixture(scope="session")
def devart(tmp_path_factory: pytest.TempPathFactory):
    """`devart start` on a fresh database and vhost; all of it removed at the end of the session."""
    platform = Devart(workdir=tmp_path_factory.mktemp("devart"))
    try:
        platform.start()
        yield platform
    finally:
        platform.stop()


@pytest.fixture
def start_agent(devart: Devart):
    """Builds in-process Python agents for a test; each is stopped at the end of the test."""
    started: list[AgentSDK] = []

    def build(agent, callback, **options) -> AgentSDK:
        sdk = AgentSDK(
            agent_id=agent.id,
            api_key=agent.api_key,
            api_base_url=devart.url,
            amqp_url=agent.amqp_url,
            prefix=agent.prefix,
            logger=logging.getLogger(f"devart.agent.{agent.id[:8]}"),
            **options,
        )
        sdk.start_consuming(callback)
        started.append(sdk)
        return sdk

    yield build
    for sdk in started:
        sdk.stop_consuming()
