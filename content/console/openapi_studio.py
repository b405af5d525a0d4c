"""The curator studio's routes (:mod:`content.console.studio`) in the console's OpenAPI description
(:mod:`content.console.openapi`): their bodies, answers and the refusals each route really gives."""

from __future__ import annotations

from typing import Any

from content.console.openapi import CHANGES, ERRORS, JSON, SIGNED_IN, _json, _ref
from engine.studio.assets import ALLOWED, MAX_DEPTH, MAX_PATH
from engine.studio.drafts import MAX_DRAFT

STUDIO = "/api/v1/studio"
NO_STUDIO = "No studio: the console does not run from an exhibit file (a POST there is an unknown command)."
NO_STUDIO_405 = "No studio: the console does not run from an exhibit file (only POST is answered there)."
STUDIO_401 = ERRORS[401]
STUDIO_403 = "Refused: not the admin role, or a request from another site."
STUDIO_403_CHANGE = "Refused: not the admin role, the CSRF token is wrong, or the request came from another site."


def _refusals(reasons: dict[int, str], schemas: dict[int, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Error responses with a studio route's own reasons (``schemas``: a body other than the plain error)."""
    return {str(status): _json(why, (schemas or {}).get(status, _ref("Error"))) for status, why in reasons.items()}


def studio_schemas() -> dict[str, Any]:
    string, integer, boolean = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}
    sha256 = {"type": "string", "description": "SHA-256 of the text (UTF-8), in hexadecimal."}
    problem = {
        "type": "object",
        "required": ["line", "column", "message", "hint", "text"],
        "properties": {
            "line": integer,
            "column": integer,
            "message": string,
            "hint": {"type": ["string", "null"]},
            "text": {"type": "string", "description": "The problem as `exhibit check` prints it."},
        },
    }
    return {
        "StudioFile": {
            "type": "object",
            "required": ["path", "text", "sha256", "locked", "simulate", "exhibit", "reload"],
            "properties": {
                "path": string,
                "text": string,
                "sha256": sha256,
                "locked": {"type": "boolean", "description": "The show lock is on: saving is refused."},
                "simulate": {"type": "boolean", "description": "A simulated run: the `sim/...` commands work."},
                "exhibit": {"type": "string", "description": "The running exhibit's id."},
                "reload": {"type": "boolean", "description": "A save reloads the running exhibit."},
            },
        },
        "Draft": {
            "type": "object",
            "required": ["text"],
            "properties": {
                "text": {"type": "string", "description": f"The exhibit file (at most {MAX_DRAFT // 1024} KiB)."},
                "base": {"type": "string", "description": "The `sha256` of the file the editor started from."},
                "note": {"type": "string", "description": "Why (kept with the version, up to 200 characters)."},
            },
        },
        "Checked": {
            "type": "object",
            "required": ["ok", "check_ms", "problems"],
            "properties": {
                "ok": {"type": "boolean", "description": "No problems."},
                "check_ms": {"type": "number", "description": "How long the checker took."},
                "problems": {"type": "array", "items": problem},
            },
        },
        "DraftRefused": {
            "allOf": [_ref("Error")],
            "properties": {"problems": {"type": "array", "items": problem}},
        },
        "Version": {
            "type": "object",
            "required": ["number", "sha256", "user", "at", "note", "size", "restored_from"],
            "properties": {
                "number": integer,
                "sha256": sha256,
                "user": string,
                "at": {"type": "string", "description": "When it was saved (ISO 8601, UTC)."},
                "note": string,
                "size": {"type": "integer", "description": "Bytes (UTF-8)."},
                "restored_from": {"type": ["integer", "null"], "description": "The version it restores."},
            },
        },
        "Saved": {
            "type": "object",
            "required": ["version", "sha256", "reload"],
            "properties": {
                "version": _ref("Version"),
                "sha256": sha256,
                "reload": {
                    "enum": ["applied", "restart", "off"],
                    "description": "Applied now; saved, but sensors, devices or MQTT changed (a restart applies "
                    "it); or this run does not reload.",
                },
            },
        },
        "History": {
            "type": "object",
            "required": ["versions", "current"],
            "properties": {
                "versions": {"type": "array", "items": _ref("Version"), "description": "Newest first."},
                "current": sha256,
            },
        },
        "VersionText": {
            "type": "object",
            "required": ["number", "text"],
            "properties": {"number": integer, "text": string},
        },
        "VersionDiff": {
            "type": "object",
            "required": ["number", "diff"],
            "properties": {
                "number": integer,
                "diff": {"type": "string", "description": "A unified diff from the version to the file as it is."},
            },
        },
        "Assets": {
            "type": "object",
            "required": ["assets"],
            "properties": {
                "assets": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["path", "size"],
                        "properties": {"path": string, "size": integer},
                    },
                }
            },
        },
        "Uploaded": {
            "type": "object",
            "required": ["path", "size"],
            "properties": {"path": string, "size": {"type": "integer", "description": "Bytes written."}},
        },
        "Inspection": {
            "type": "object",
            "required": ["now", "signals", "devices"],
            "properties": {
                "now": {"type": "number", "description": "The engine clock, in seconds."},
                "signals": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name", "type", "value", "stale", "changed", "owner", "group", "meaning"],
                        "properties": {
                            "name": string,
                            "type": string,
                            "value": {"description": "A small picture of the value (never landmarks or frames)."},
                            "stale": boolean,
                            "changed": {"type": ["number", "null"], "description": "Seconds ago."},
                            "owner": string,
                            "group": string,
                            "meaning": string,
                        },
                    },
                },
                "devices": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["device", "property", "value", "driver", "candidates"],
                        "properties": {
                            "device": string,
                            "property": string,
                            "value": {},
                            "driver": {
                                "type": ["object", "null"],
                                "description": "What drives it now: `kind`, `name`, `detail`, `since`.",
                            },
                            "candidates": {"type": "array", "items": {"type": "object"}},
                        },
                    },
                },
            },
        },
        "Simulation": {
            "type": "object",
            "required": ["simulated", "overrides", "pose", "clock", "controls"],
            "properties": {
                "simulated": boolean,
                "overrides": {"type": "object", "description": "Pinned inputs and their values."},
                "pose": {
                    "type": "object",
                    "description": "Each pose sensor's simulated visitors, and whether its recording is muted.",
                    "additionalProperties": {
                        "type": "object",
                        "required": ["muted", "visitors"],
                        "properties": {"muted": boolean, "visitors": {"type": "array", "items": {"type": "object"}}},
                    },
                },
                "clock": {
                    "type": "object",
                    "required": ["at", "timezone"],
                    "properties": {
                        "at": {"type": ["string", "null"], "description": "The pretended time; null: the true time."},
                        "timezone": string,
                    },
                },
                "controls": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name", "type", "range", "control", "meaning", "owner", "value"],
                        "properties": {
                            "name": string,
                            "type": string,
                            "range": {"type": ["array", "null"], "items": {"type": "number"}},
                            "control": {"enum": ["fader", "number", "toggle", "button", "text"]},
                            "meaning": string,
                            "owner": string,
                            "value": {},
                        },
                    },
                },
            },
        },
    }


def _studio_operation(
    name: str,
    summary: str,
    answer: dict[str, Any],
    refusals: dict[int, str],
    *,
    change: bool = False,
    description: str = "",
    parameters: list[dict[str, Any]] | None = None,
    body: dict[str, Any] | None = None,
    refusal_schemas: dict[int, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A studio route: admin only, a change with the session's CSRF token (or an admin API token)."""
    operation: dict[str, Any] = {
        "operationId": f"studio_{name}",
        "summary": summary,
        "description": f"{description} Needs the admin role.".lstrip(),
        "tags": ["studio"],
        "x-role": "admin",
        "security": CHANGES if change else SIGNED_IN,
    }
    if parameters:
        operation["parameters"] = parameters
    if body is not None:
        operation["requestBody"] = body
    operation["responses"] = {"200": answer, **_refusals(refusals, refusal_schemas)}
    return operation


def _version_number() -> dict[str, Any]:
    return {
        "name": "number",
        "in": "path",
        "required": True,
        "description": "A version's number (from the history).",
        "schema": {"type": "integer", "minimum": 0, "maximum": 999999},
    }


def _preview_parameters() -> list[dict[str, Any]]:
    return [
        {
            "name": "width",
            "in": "query",
            "required": False,
            "description": "The picture's width in pixels, kept within 160-1280.",
            "schema": {"type": "integer", "minimum": 0, "maximum": 9999, "default": 640},
        },
        {
            "name": "camera",
            "in": "query",
            "required": False,
            "description": "With an AR mirror's camera picture: only from this computer (loopback), and only "
            "if the exhibit opts in (`scene.mirror.preview_camera`).",
            "schema": {"type": "boolean", "default": False},
        },
    ]


def studio_paths() -> dict[str, Any]:
    draft = {"required": True, "content": {JSON: {"schema": _ref("Draft")}}}
    too_large = f"The body is larger than {MAX_DRAFT // 1024 + 64} KiB."
    bad_json = "The body is not a JSON object with `text` (a string), or a string in it is not valid Unicode."
    reading = {401: STUDIO_401, 403: STUDIO_403, 405: NO_STUDIO_405}
    file_gone = {404: "The exhibit file is gone from its folder."}
    not_a_number = "Or `number` is not a whole number of 1 to 6 digits."
    version_reading = {**reading, 404: "There is no such version.", 405: f"{NO_STUDIO_405} {not_a_number}"}
    changing = {401: STUDIO_401, 403: STUDIO_403_CHANGE}
    preview_refusals = {
        400: "`width` is not a whole number of pixels.",
        401: STUDIO_401,
        403: f"{STUDIO_403} Or the camera picture was asked for from another computer.",
        405: NO_STUDIO_405,
    }
    saving_conflict = (
        "Not now: the show lock is on, or the file changed since `base` (someone else saved, or it was edited "
        "outside the studio)."
    )
    return {
        f"{STUDIO}/file": {
            "get": _studio_operation(
                "file",
                "The exhibit file as it is now, with its SHA-256 and whether saving and reloading are possible.",
                _json("The exhibit file.", _ref("StudioFile")),
                {**reading, **file_gone},
            )
        },
        f"{STUDIO}/schema": {
            "get": _studio_operation(
                "schema",
                "The exhibit JSON Schema (the editor's completion).",
                _json("A JSON Schema.", {"type": "object"}),
                reading,
            )
        },
        f"{STUDIO}/check": {
            "post": _studio_operation(
                "check",
                "Check a draft of the exhibit file with the project's checker (as `exhibit check`).",
                _json("The draft's problems (none: `ok`).", _ref("Checked")),
                {400: bad_json, **changing, 404: NO_STUDIO, 413: too_large},
                change=True,
                description="`base` and `note` are ignored here.",
                body=draft,
            )
        },
        f"{STUDIO}/save": {
            "post": _studio_operation(
                "save",
                "Save the exhibit file: kept as a new version, then the running exhibit reloads.",
                _json("Saved.", _ref("Saved")),
                {
                    400: f"{bad_json} Or the draft has problems (listed in `problems`): nothing was saved.",
                    **changing,
                    404: NO_STUDIO,
                    409: saving_conflict,
                    413: too_large,
                },
                change=True,
                description="Refused while the draft has problems or the show lock is on. Audited.",
                body=draft,
                refusal_schemas={400: _ref("DraftRefused")},
            )
        },
        f"{STUDIO}/history": {
            "get": _studio_operation(
                "history",
                "Every saved version, newest first (a change made outside the studio becomes one first).",
                _json("The versions.", _ref("History")),
                {**reading, **file_gone},
            )
        },
        f"{STUDIO}/history/{{number}}": {
            "get": _studio_operation(
                "version",
                "A version's text.",
                _json("The version.", _ref("VersionText")),
                version_reading,
                parameters=[_version_number()],
            )
        },
        f"{STUDIO}/history/{{number}}/diff": {
            "get": _studio_operation(
                "version_diff",
                "A version's difference from the exhibit file as it is now.",
                _json("The difference.", _ref("VersionDiff")),
                {**version_reading, 404: "There is no such version, or the exhibit file is gone from its folder."},
                parameters=[_version_number()],
            )
        },
        f"{STUDIO}/history/{{number}}/restore": {
            "post": _studio_operation(
                "restore",
                "Save a version again, as a new one; the running exhibit reloads.",
                _json("Restored.", _ref("Saved")),
                {
                    400: "The body is not a JSON object, `base` is not a string, or the version has problems "
                    "(listed in `problems`).",
                    **changing,
                    404: f"{NO_STUDIO} Or there is no such version. {not_a_number}",
                    409: saving_conflict,
                    413: "The body is larger than 64 KiB.",
                },
                change=True,
                description="Audited.",
                parameters=[_version_number()],
                body={
                    "required": False,
                    "content": {
                        JSON: {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "base": {
                                        "type": "string",
                                        "description": "The `sha256` of the file the page last read.",
                                    }
                                },
                            }
                        }
                    },
                },
                refusal_schemas={400: _ref("DraftRefused")},
            )
        },
        f"{STUDIO}/assets": {
            "get": _studio_operation(
                "assets",
                "The exhibit folder's files (not hidden ones, not the exhibit file), with their sizes.",
                _json("The assets.", _ref("Assets")),
                reading,
            )
        },
        f"{STUDIO}/assets/{{path}}": {
            "put": _studio_operation(
                "upload",
                "Upload an asset into the exhibit folder, as `path`.",
                _json("Uploaded.", _ref("Uploaded")),
                {
                    400: "Refused: the place is outside the folder, hidden, the exhibit file or a folder, or a folder "
                    f"on its way is a file; the kind is not one of {ALLOWED}; the first bytes are not what the name "
                    "says; or the file is empty.",
                    **changing,
                    405: NO_STUDIO_405,
                    409: "The place is taken (ask to replace it).",
                    413: "Larger than its kind allows (64 MiB for models and recordings, 16 MiB for images).",
                },
                change=True,
                description="Written to a temporary file and moved into place only when whole and checked. Audited.",
                parameters=[
                    {
                        "name": "path",
                        "in": "path",
                        "required": True,
                        "description": f"Where it goes, relative to the exhibit folder (`models/boat.glb`; at most "
                        f"{MAX_DEPTH} deep, {MAX_PATH} characters).",
                        "schema": {"type": "string", "minLength": 1, "maxLength": MAX_PATH},
                        "example": "models/lantern.gltf",
                    },
                    {
                        "name": "replace",
                        "in": "query",
                        "required": False,
                        "description": "Replace the file there.",
                        "schema": {"type": "boolean", "default": False},
                    },
                ],
                body={
                    "required": True,
                    "content": {
                        "application/octet-stream": {
                            "schema": {"type": "string", "format": "binary"},
                            "example": '{"asset": {"version": "2.0"}}',
                        }
                    },
                },
            )
        },
        f"{STUDIO}/preview.mjpg": {
            "get": _studio_operation(
                "preview_stream",
                "The scene as the render process draws it, as MJPEG: one JPEG per frame, for as long as it is open.",
                {
                    "description": "An endless stream (`multipart/x-mixed-replace; boundary=frame`): each part a "
                    "JPEG. It waits while the scene is not drawn; never camera pixels unless `camera` is allowed.",
                    "content": {"multipart/x-mixed-replace": {"schema": {"type": "string", "format": "binary"}}},
                },
                {**preview_refusals, 409: "Too many previews are open (4): close one."},
                parameters=_preview_parameters(),
            )
        },
        f"{STUDIO}/preview.jpg": {
            "get": _studio_operation(
                "preview_still",
                "One frame of the scene as a JPEG.",
                {
                    "description": "One frame; `X-Frame-Sequence` is its number.",
                    "headers": {"X-Frame-Sequence": {"schema": {"type": "string"}}},
                    "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}},
                },
                {
                    **preview_refusals,
                    503: "The scene is not being drawn (no render process: `--no-render`, or no scene), or the "
                    "renderer sent no picture within 10 s.",
                },
                parameters=_preview_parameters(),
            )
        },
        f"{STUDIO}/inspect": {
            "get": _studio_operation(
                "inspect",
                "Every signal with its value, and every device property with what drives it and why.",
                _json("The inspector's picture.", _ref("Inspection")),
                reading,
            )
        },
        f"{STUDIO}/simulation": {
            "get": _studio_operation(
                "simulation",
                "The simulation: pinned inputs, simulated visitors, the pretended clock, and the controls.",
                _json("The simulation's state.", _ref("Simulation")),
                reading,
                description="Steered with the `sim/...` commands (simulated runs only).",
            )
        },
    }
