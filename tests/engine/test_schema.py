"""The JSON Schema that editors use is generated from the models and never stale."""

from __future__ import annotations

import json

import jsonschema

from engine.schema import schema_text
from engine.yamlpos import load_yaml
from launcher import SCHEMA_PATH
from tests.conftest import FLAGSHIP, run_launcher


def test_committed_schema_is_up_to_date(registry):
    assert SCHEMA_PATH.read_text(encoding="utf-8") == schema_text(registry), (
        "exhibits/exhibit.schema.json is stale: run `python launcher.py schema`"
    )


def test_schema_check_command_agrees():
    result = run_launcher("schema", "--check")
    assert result.returncode == 0, result.stderr


def test_schema_describes_drivers_and_forbids_unknown_keys():
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    defs = schema["$defs"]
    assert defs["OscSensorConfig"]["properties"]["kind"]["const"] == "osc"
    assert defs["MqttDeviceConfig"]["properties"]["kind"]["const"] == "mqtt"
    assert all(
        d.get("additionalProperties") is False for d in defs.values() if d.get("type") == "object" and "properties" in d
    )
    assert "from" in defs["Mapping"]["properties"]


def test_flagship_points_editors_at_the_schema():
    first = FLAGSHIP.read_text(encoding="utf-8").splitlines()[0]
    assert first == "# yaml-language-server: $schema=../exhibit.schema.json"
    assert (FLAGSHIP.parent / "../exhibit.schema.json").resolve() == SCHEMA_PATH.resolve()


def test_flagship_validates_against_the_json_schema_too():
    document = load_yaml(FLAGSHIP.read_text(encoding="utf-8"), str(FLAGSHIP)).data
    # Editors' YAML 1.2 reads `2026-10-01` as text; our loader gives a date: compare as editors see it.
    document = json.loads(json.dumps(document, default=str))
    jsonschema.validate(document, json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))
