"""The OpenAPI 3.1 document of sbcard's own API (``GET /v1/openapi.json``)."""

from __future__ import annotations

from typing import Any

from sbcard import __version__

_RESULT: dict[str, Any] = {"type": "object", "required": ["code", "message"], "properties": {
    "code": {"type": "integer", "description": "0 ok; a national return code (negative, "
             "e.g. -2 no card, -51 PIN wrong, -52 PIN locked, -2201 no PSAM); -90 reader "
             "busy; -91 abandoned before it started; -99 driver fault"},
    "message": {"type": "string"},
    "pOutInfo": {"type": "string", "description": "the national output string (code 0)"}}}

_ERROR: dict[str, Any] = {
    "type": "object", "required": ["code", "error", "message"], "properties": {
        "code": {"type": "integer"}, "error": {"type": "string"},
        "message": {"type": "string"}}}

_ITYPE: dict[str, Any] = {"type": "object", "properties": {"iType": {
    "type": "integer", "enum": [1, 2, 3, 4], "default": 3,
    "description": "1 contact, 2 contactless, 3 auto (contact first), 4 auto (contactless first)"}}}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _op(summary: str, body: dict[str, Any] | None = None,
        ok: dict[str, Any] | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": {
        "200": {"description": "the card's outcome (see code)", **_json(ok or _RESULT)},
        "400": {"description": "malformed request", **_json(_ERROR)},
        "403": {"description": "Host or Origin refused", **_json(_ERROR)},
        "503": {"description": "reader busy past the queue timeout", **_json(_RESULT)}}}
    if body is not None:
        op["requestBody"] = {"required": False, **_json(body)}
    return op


def _photo_op() -> dict[str, Any]:
    op = _op("The holder's photo (EF08) as image/jpeg or image/bmp; a JSON error object "
             "otherwise (-2201 no key source for RKSSSE, -27266 no photo on the card)")
    image = {"schema": {"type": "string", "contentMediaType": "image/*"}}
    op["responses"]["200"]["content"].update({"image/jpeg": image, "image/bmp": image})
    return op


def document(service: Any) -> dict[str, Any]:
    kiosk = {"pin": {"type": "string"}, "oldPin": {"type": "string"},
             "newPin": {"type": "string"}}
    pin_body = {"type": "object", "properties": {**_ITYPE["properties"], **kiosk},
                "description": "pin/oldPin/newPin only in kiosk mode "
                               "(kiosk_pin_from_page); refused otherwise"}
    card = {"type": "object", "properties": {
        "code": {"type": "integer"}, "message": {"type": "string"},
        "card": {"type": "object", "properties": {
            "fields": {"type": "object", "description": "the keys of `sbcard read --json`"},
            "national": {"type": ["string", "null"],
                         "description": "the iReadCardBas line (| separated)"},
            "national_code": {"type": "integer"}}}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "sbcard local card service", "version": __version__,
                 "description": "The social security card (社保卡) through the national "
                                "interface, for pages on this machine. Loopback only; Host "
                                "and Origin checked; see docs/local-service.md."},
        "servers": [{"url": "http://127.0.0.1:12380"}],
        "paths": {
            "/v1/card": {"get": {**_op("Read the card: parsed fields and the national line",
                                       ok=card),
                                 "parameters": [{"name": "iType", "in": "query",
                                                 "schema": _ITYPE["properties"]["iType"]}]}},
            "/v1/card/photo": {"get": {
                **_photo_op(),
                "parameters": [{"name": "iType", "in": "query",
                                "schema": _ITYPE["properties"]["iType"]}]}},
            "/v1/call": {"post": _op("Call an offered national function by name", {
                "type": "object", "required": ["function"],
                "properties": {"function": {"type": "string",
                                            "enum": sorted(service.offered)}},
                "additionalProperties": True})},
            "/v1/pin/verify": {"post": _op("Verify the PIN (from the PIN source)", pin_body)},
            "/v1/pin/change": {"post": _op("Change the PIN (from the PIN source); never "
                                           "half-done", pin_body)},
            "/v1/hsm/step1": {"post": _op("iReadCardBas_HSM_Step1: data for the HSM", _ITYPE)},
            "/v1/hsm/step2": {"post": _op("iReadCardBas_HSM_Step2 with the HSM's pKey", {
                "type": "object", "required": ["pKey"],
                "properties": {"pKey": {"type": "string"}}})},
            "/v1/hsm/read": {"post": _op("Both HSM steps through the service's HSM bridge "
                                         "(hsm_mode = bridge)", _ITYPE)},
            "/v1/health": {"get": {"summary": "Service state, offered functions, queue",
                                   "responses": {"200": {"description": "state"}}}},
            "/v1/events": {"get": {"summary": "WebSocket: card events as JSON messages "
                                              "{event: state|inserted|removed, reader, "
                                              "present, at}",
                                   "responses": {"101": {"description": "upgraded"}}}},
        },
    }
