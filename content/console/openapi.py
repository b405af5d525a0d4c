"""The OpenAPI 3.1 description of the console's HTTP API, served at ``/api/openapi.json``.

Made from the command table itself (one ``POST /api/v1/<command>`` per command, its body from the
command's parameters), so the description cannot drift from what the server does, with the curator
studio's routes (:mod:`content.console.studio`) beside them. It holds no secrets: anyone may read it
without logging in.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from content.console.context import CSRF_HEADER, HTTP_STATUS, SESSION_COOKIE
from engine.control.commands import COMMANDS, ROLES, Command, Param
from engine.control.protocol import VERSION

JSON = "application/json"
PARAM_SCHEMAS: dict[str, dict[str, Any]] = {
    "str": {"type": "string"},
    "number": {"type": "number"},
    "bool": {"type": "boolean"},
    "value": {"type": ["string", "number", "boolean"]},
}
SIGNED_IN: list[dict[str, list[str]]] = [{"session": []}, {"token": []}]
CHANGES: list[dict[str, list[str]]] = [{"session": [], "csrf": []}, {"token": []}]
"""A change: a session with its CSRF token, or an API token."""
ERRORS = {
    400: "The request is not valid (bad JSON, not an object, a wrong or missing parameter).",
    401: "No session or API token, or a wrong one.",
    403: "Refused: the role does not allow it, the CSRF token is wrong, the request came from another site, "
    "or a simulation control (`sim/...`) was asked of a run that is not simulated.",
    404: "No such command, cue list, cue, state machine, variable, device, signal, pose sensor or simulated visitor.",
    409: "Not now: PANIC, the e-stop, the show lock, or nothing left to GO.",
    429: "Too many failed logins from this address; see Retry-After.",
    503: "The show is not running (starting or stopping).",
}
DESCRIPTION = """\
Operate a running exhibit: GO, BACK, PANIC, the e-stop, state machines and variables, and read its state.
操作运行中的展览：GO、BACK、紧急停止、急停、状态机与变量，并读取其状态。

Authenticate with the session cookie from `POST /api/v1/login` (then send its `csrf` in the
`X-CSRF-Token` header with every POST), or with an API token (`exhibit token add NAME --role operator`)
as `Authorization: Bearer TOKEN`. Every request's `Host` must be the console's own address or an
allowed host, and a request with an `Origin` must come from the console itself.

Live state: the WebSocket `GET /api/v1/ws` sends protocol events `{"v": 1, "topic": ..., "data": ...}`
(`hello`, then every state topic, then changes) and takes `watch`, `unwatch` and `command` messages.

The curator studio (`/api/v1/studio/...`, admin role; only when the exhibit runs from its file, else absent)
checks, saves and restores the exhibit file with its history, uploads assets beside it, previews the scene,
and shows the inspector and the simulation (steered with the `sim/...` commands); see docs/studio.md.
策展工作室（`/api/v1/studio/...`，需管理员角色；仅当展项从其文件运行时提供）
可检查、保存和恢复展项文件及其历史版本，上传素材，预览场景，并显示检查器与模拟（用 `sim/...` 命令操控）；
详见 docs/studio.md。
"""


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(status): _json(ERRORS[status], _ref("Error")) for status in statuses}


def _schemas() -> dict[str, Any]:
    string, number, boolean = {"type": "string"}, {"type": "number"}, {"type": "boolean"}
    role = {"enum": list(ROLES)}
    return {
        "Error": {
            "type": "object",
            "required": ["status", "error", "code"],
            "properties": {
                "status": {"const": "error"},
                "error": {"type": "string", "description": "One sentence, in English and Chinese."},
                "code": {"enum": [code for code in HTTP_STATUS if code != "internal"]},
            },
        },
        "Ok": {
            "type": "object",
            "required": ["status"],
            "properties": {
                "status": {"const": "ok"},
                "data": {"description": "What the command returns, if anything."},
            },
        },
        "Login": {
            "type": "object",
            "required": ["user", "password"],
            "properties": {"user": {"type": "string", "minLength": 1}, "password": {"type": "string", "minLength": 1}},
        },
        "Session": {
            "type": "object",
            "required": ["user", "role", "csrf"],
            "properties": {
                "user": string,
                "role": role,
                "csrf": {"type": ["string", "null"], "description": "Send it as X-CSRF-Token; null for API tokens."},
            },
        },
        "State": {
            "type": "object",
            "required": ["v", "topics"],
            "properties": {
                "v": {"const": VERSION},
                "topics": {
                    "type": "object",
                    "description": "Every state topic's data, by topic.",
                    "additionalProperties": True,
                },
            },
        },
        "Catalogue": {
            "type": "object",
            "required": ["signals"],
            "properties": {
                "signals": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name", "type", "meaning", "owner", "group"],
                        "properties": {
                            "name": string,
                            "type": string,
                            "meaning": string,
                            "owner": string,
                            "group": {"enum": ["sensor", "device", "service", "show"]},
                        },
                    },
                }
            },
        },
        "Commands": {
            "type": "object",
            "required": ["commands"],
            "properties": {
                "commands": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name", "role", "summary", "params"],
                        "properties": {
                            "name": string,
                            "role": role,
                            "summary": string,
                            "params": {
                                "type": "object",
                                "additionalProperties": {
                                    "type": "object",
                                    "required": ["type", "required", "summary"],
                                    "properties": {
                                        "type": {"enum": list(PARAM_SCHEMAS)},
                                        "required": boolean,
                                        "summary": string,
                                    },
                                },
                            },
                        },
                    },
                }
            },
        },
        "Audit": {
            "type": "object",
            "required": ["entries"],
            "properties": {
                "entries": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["t", "who", "via", "from", "action", "ok"],
                        "properties": {
                            "t": number,
                            "who": string,
                            "role": string,
                            "via": string,
                            "from": string,
                            "action": string,
                            "params": {"type": "object"},
                            "ok": boolean,
                            "error": string,
                            "detail": string,
                        },
                    },
                }
            },
        },
        "Analytics": _analytics_schema(),
        "Log": {
            "type": "object",
            "required": ["lines"],
            "properties": {
                "lines": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["t", "level", "logger", "message"],
                        "properties": {"t": number, "level": string, "logger": string, "message": {}},
                    },
                }
            },
        },
    }


def _body(command: Command) -> dict[str, Any]:
    properties = {name: _param(param) for name, param in command.params.items()}
    required = [name for name, param in command.params.items() if param.required]
    schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = required
    return {"required": bool(required), "content": {JSON: {"schema": schema}}}


def _param(param: Param) -> dict[str, Any]:
    schema = dict(PARAM_SCHEMAS[param.type])
    if param.summary:
        schema["description"] = param.summary
    return schema


def _command(command: Command) -> dict[str, Any]:
    return {
        "post": {
            "operationId": command.name.replace("/", "_"),
            "summary": command.summary,
            "description": f"Needs the {command.role} role.",
            "tags": ["commands"],
            "x-role": command.role,
            "security": CHANGES,
            "requestBody": _body(command),
            "responses": {"200": _json("Done.", _ref("Ok")), **_errors(400, 401, 403, 404, 409, 503)},
        }
    }


def _read(name: str, summary: str, schema: str, limit: bool = False) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": name,
        "summary": summary,
        "tags": ["reading"],
        "security": SIGNED_IN,
        "responses": {"200": _json(summary, _ref(schema)), **_errors(400, 401, 403)},
    }
    if limit:
        operation["parameters"] = [
            {
                "name": "limit",
                "in": "query",
                "required": False,
                "description": "How many of the latest to return.",
                "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 100},
            }
        ]
    return {"get": operation}


def _analytics() -> dict[str, Any]:
    path = _read(
        "analytics",
        "Visitor analytics of the last days (today included, UTC days), after k-anonymity: what an export would "
        "publish.",
        "Analytics",
    )
    operation = path["get"]
    operation["responses"].update(_errors(503))
    operation["parameters"] = [
        {
            "name": "days",
            "in": "query",
            "required": False,
            "description": "How many UTC days, today included.",
            "schema": {"type": "integer", "minimum": 1, "maximum": 400, "default": 7},
        }
    ]
    return path


def _analytics_schema() -> dict[str, Any]:
    number, integer = {"type": "number"}, {"type": "integer"}
    maybe = {"type": ["number", "null"]}
    bucket = {
        "type": ["object", "null"],
        "description": "A holding-time range [low, high) seconds; high null for 'low s and more'.",
        "required": ["low", "high"],
        "properties": {"low": integer, "high": {"type": ["integer", "null"]}},
    }

    def keyed(value: str) -> dict[str, Any]:
        return {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["key", value],
                "properties": {"key": {"type": "string"}, value: number},
            },
        }

    return {
        "type": "object",
        "description": "Without analytics (`enabled` false) only `enabled`, `message`, `days`, `k` and `simulated`.",
        "required": ["enabled", "days", "k", "simulated"],
        "properties": {
            "enabled": {"type": "boolean", "description": "Whether this run keeps visitor analytics."},
            "message": {"type": "string", "description": "Why there are none (when `enabled` is false)."},
            "exhibit": {"type": "string"},
            "days": integer,
            "since": {**integer, "description": "UTC seconds: the first day's start (its midnight in `time_zone`)."},
            "until": {**integer, "description": "UTC seconds: the end of the current hour (exclusive)."},
            "generated": number,
            "time_zone": {"type": "string", "description": "The IANA zone days and hours of the day are told in."},
            "simulated": {"type": "boolean", "description": "A --simulate run's database: not real visitors."},
            "k": {**integer, "description": "Every figure counts at least k visitors."},
            "suppressed": {
                "type": "object",
                "required": ["merged_hours", "suppressed_hours", "suppressed_cells"],
                "properties": {"merged_hours": integer, "suppressed_hours": integer, "suppressed_cells": integer},
            },
            "empty": {"type": "boolean", "description": "No visitor published for the period."},
            "totals": {
                "type": "object",
                "required": [
                    "visitors",
                    "stopped",
                    "attraction",
                    "holding_median",
                    "holding_p90",
                    "occupancy_mean",
                    "occupancy_peak",
                    "interactions",
                ],
                "properties": {
                    "visitors": number,
                    "stopped": number,
                    "attraction": {**maybe, "description": "stopped / visitors; null without visitors."},
                    "holding_median": bucket,
                    "holding_p90": bucket,
                    "occupancy_mean": number,
                    "occupancy_peak": maybe,
                    "interactions": number,
                },
            },
            "per_day": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": [
                        "start",
                        "date",
                        "visitors",
                        "stopped",
                        "attraction",
                        "holding_median",
                        "occupancy_mean",
                        "occupancy_peak",
                    ],
                    "properties": {
                        "start": integer,
                        "date": {"type": "string", "format": "date", "description": "The local date, YYYY-MM-DD."},
                        "visitors": number,
                        "stopped": number,
                        "attraction": maybe,
                        "holding_median": bucket,
                        "occupancy_mean": number,
                        "occupancy_peak": maybe,
                    },
                },
            },
            "hour_of_day": {
                "type": "array",
                "description": "24 entries, hours 0 to 23 of `time_zone`, over every day of the period.",
                "items": {
                    "type": "object",
                    "required": ["hour", "visitors", "occupancy_mean", "occupancy_peak"],
                    "properties": {
                        "hour": integer,
                        "visitors": number,
                        "occupancy_mean": number,
                        "occupancy_peak": maybe,
                    },
                },
            },
            "holding": {
                "type": "array",
                "description": "Visitors who stopped, per group of holding time (labelled by its first second).",
                "items": {
                    "type": "object",
                    "required": ["label", "visitors"],
                    "properties": {"label": {"type": "string"}, "visitors": number},
                },
            },
            "zones": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["zone", "visitors", "dwell_s", "dwell_per_visitor_s"],
                    "properties": {
                        "zone": {"type": "string"},
                        "visitors": number,
                        "dwell_s": number,
                        "dwell_per_visitor_s": maybe,
                    },
                },
            },
            "interactions": keyed("count"),
            "engaged_state": keyed("visitors"),
            "engaged_cue": keyed("visitors"),
            "heatmap": {
                "type": "object",
                "description": "Visitor-seconds per floor cell: cells[row][column], from (column0, row0); `other`: "
                "cells merged by k-anonymity.",
                "required": ["column0", "row0", "cells", "other", "peak"],
                "properties": {
                    "column0": integer,
                    "row0": integer,
                    "cells": {"type": "array", "items": {"type": "array", "items": number}},
                    "other": number,
                    "peak": number,
                },
            },
        },
    }


def _paths() -> dict[str, Any]:
    from content.console.openapi_studio import studio_paths  # it builds on this module's helpers

    paths: dict[str, Any] = {
        "/api/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This description.",
                "security": [],
                "responses": {"200": _json("The OpenAPI description.", {"type": "object"})},
            }
        },
        "/login": {
            "get": {
                "operationId": "login_link",
                "summary": "Redeem a one-time login link (printed by `exhibit run` while no account exists).",
                "tags": ["session"],
                "security": [],
                "parameters": [{"name": "token", "in": "query", "required": True, "schema": {"type": "string"}}],
                "responses": {
                    "302": {"description": "Logged in: a session cookie is set, and the browser goes on to /."},
                    **_errors(400, 401, 403, 429),
                },
            }
        },
        "/api/v1/login": {
            "post": {
                "operationId": "login",
                "summary": "Log in: sets the `exhibit_session` cookie and returns the CSRF token.",
                "tags": ["session"],
                "security": [],
                "requestBody": {"required": True, "content": {JSON: {"schema": _ref("Login")}}},
                "responses": {"200": _json("Logged in.", _ref("Session")), **_errors(400, 401, 403, 429)},
            }
        },
        "/api/v1/logout": {
            "post": {
                "operationId": "logout",
                "summary": "End this session.",
                "tags": ["session"],
                "security": [{"session": [], "csrf": []}],
                "responses": {"200": _json("Logged out.", _ref("Ok")), **_errors(400, 401, 403)},
            }
        },
        "/api/v1/session": _read("session", "Who is logged in, and the CSRF token to send.", "Session"),
        "/api/v1/state": _read("state", "Every state topic, as the WebSocket sends them.", "State"),
        "/api/v1/catalogue": _read("catalogue", "Every signal of the exhibit.", "Catalogue"),
        "/api/v1/commands": _read("commands", "Every command, its role and parameters.", "Commands"),
        "/api/v1/audit": _read("audit", "The latest entries of the audit log.", "Audit", limit=True),
        "/api/v1/log": _read("log", "The latest log lines.", "Log", limit=True),
        "/api/v1/analytics": _analytics(),
        **studio_paths(),
    }
    for command in COMMANDS.values():
        # `state` is both a reading (GET: every state topic) and a command (POST: put a machine in a state).
        path = f"/api/v1/{command.name}"
        paths[path] = {**paths.get(path, {}), **_command(command)}
    return paths


@cache
def openapi() -> dict[str, Any]:
    from content.console.openapi_studio import studio_schemas

    return {
        "openapi": "3.1.0",
        "info": {"title": "Exhibit console API / 展览控制台接口", "version": str(VERSION), "description": DESCRIPTION},
        "tags": [
            {"name": "session", "description": "Logging in and out."},
            {
                "name": "reading",
                "description": "The show's state, signals, audit log, log and visitor analytics (any role).",
            },
            {"name": "commands", "description": "Operating the show (the role each command needs)."},
            {
                "name": "studio",
                "description": "The curator studio: the exhibit file, its history, assets, preview, inspector and "
                "simulation (admin; only when the exhibit runs from its file).",
            },
        ],
        "paths": _paths(),
        "components": {
            "schemas": {**_schemas(), **studio_schemas()},
            "securitySchemes": {
                "session": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": SESSION_COOKIE,
                    "description": "From POST /api/v1/login.",
                },
                "csrf": {"type": "apiKey", "in": "header", "name": CSRF_HEADER, "description": "The session's `csrf`."},
                "token": {"type": "http", "scheme": "bearer", "description": "An API token (`exhibit token add`)."},
            },
        },
    }
