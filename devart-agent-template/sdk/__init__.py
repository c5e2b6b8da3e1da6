"""devart agent SDK for Python: ``from sdk.agent_sdk import AgentSDK`` (the template's import) or,
installed with pip as ``devart-agent``, ``from devart_agent import AgentSDK``."""

from .agent_sdk import AgentSDK, Result, Task, TaskCallback
from .contract import parse_task_message
from .errors import (
    ApiError,
    BrokerError,
    ClaimTaskRemovedError,
    InvalidMessageError,
    NonRetryableError,
    SandboxUnavailableError,
)
from .sandbox import ExecResult, Sandbox

__all__ = [
    "AgentSDK",
    "ApiError",
    "BrokerError",
    "ClaimTaskRemovedError",
    "ExecResult",
    "InvalidMessageError",
    "NonRetryableError",
    "Result",
    "Sandbox",
    "SandboxUnavailableError",
    "Task",
    "TaskCallback",
    "parse_task_message",
]
__version__ = "0.1.0"
