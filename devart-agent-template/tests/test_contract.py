"""The message contract the Python SDK checks deliveries against is the one packages/contracts
publishes, and it reaches the verdicts the shared samples expect (the TypeScript SDK's test reads
the same samples)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from devart_harness import REPO

from sdk.contract import SCHEMA_PATH, SchemaError, Validator, parse_task_message, task_message_schema
from sdk.errors import InvalidMessageError

SAMPLES = json.loads((Path(__file__).with_name("contract-samples.json")).read_text(encoding="utf-8"))
PUBLISHED = REPO / "packages/contracts/schemas/devart.task.v1.json"


def _body(sample: dict) -> bytes:
    text = sample["body"] if "body" in sample else json.dumps(sample["message"])
    return text.encode("utf-8")


def test_the_sdk_ships_the_schema_packages_contracts_publishes():
    assert SAMPLES["schema"] == str(PUBLISHED.relative_to(REPO))
    shipped = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    published = json.loads(PUBLISHED.read_text(encoding="utf-8"))
    assert shipped == published, (
        "devart-agent-template/sdk/schemas/devart.task.v1.json differs from the published schema: "
        "run `npm run contracts:schemas`, then "
        "`cp packages/contracts/schemas/devart.task.v1.json devart-agent-template/sdk/schemas/`"
    )


@pytest.mark.parametrize("sample", SAMPLES["samples"], ids=[s["name"] for s in SAMPLES["samples"]])
def test_each_sample_gets_its_expected_verdict(sample: dict):
    assert ("message" in sample) != ("body" in sample), "a sample has a message or a body, not both"
    if sample["valid"]:
        message = parse_task_message(_body(sample))
        assert message["task_id"] == message["task_id"].lower()
        assert isinstance(message["attempt"], int) and not isinstance(message["attempt"], bool)
    else:
        with pytest.raises(InvalidMessageError):
            parse_task_message(_body(sample))


def test_the_samples_cover_both_verdicts_and_every_required_field():
    assert {s["valid"] for s in SAMPLES["samples"]} == {True, False}
    names = {s["name"] for s in SAMPLES["samples"]}
    for field in task_message_schema()["$defs"]["TaskMessage"]["required"]:
        assert f"no {field}" in names or f"no {field} field" in names, f"no sample leaves out {field}"


def test_an_invalid_message_says_which_rule_it_broke():
    good = next(s["message"] for s in SAMPLES["samples"] if s["name"] == "a complete message")
    with pytest.raises(InvalidMessageError, match=r"attempt: must be at least 1"):
        parse_task_message(json.dumps({**good, "attempt": 0}))
    with pytest.raises(InvalidMessageError, match=r"title: is required"):
        parse_task_message(json.dumps({k: v for k, v in good.items() if k != "title"}))


def test_a_schema_keyword_the_validator_does_not_implement_is_refused_not_ignored():
    with pytest.raises(SchemaError, match="uniqueItems"):
        Validator({"type": "array", "uniqueItems": True})
