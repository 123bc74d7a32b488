"""`serving.schemas.parse_predict_body`: /v1/predict's own body parsing accepts exactly what
FastAPI's parsing of a `PredictRequest` parameter accepted, with the same values and the same
422 errors (compared with a FastAPI route that takes the body as a parameter)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.testclient import TestClient

from serving.schemas import PredictRequest, parse_predict_body

_reference = FastAPI()


@_reference.post("/")
def _echo(body: PredictRequest) -> dict:
    return {"ids": [c.customer_id for c in body.customers],
            "times": [None if c.request_at is None else c.request_at.isoformat() for c in body.customers]}


@_reference.exception_handler(RequestValidationError)
async def _errors(request, exc: RequestValidationError):
    from fastapi.responses import JSONResponse

    return JSONResponse({"errors": _plain(exc.errors())}, status_code=422)


def _plain(errors) -> list[dict]:
    return [{"type": e["type"], "loc": list(e["loc"]), "msg": e["msg"]} for e in errors]


JSON = "application/json"
BODIES = [
    (b'{"customers": [{"customer_id": "a:1"}]}', JSON),
    (b'{"customers": [{"customer_id": "a:1", "request_at": "2026-05-01T10:30:00+02:00"},'
     b' {"customer_id": "a:2", "request_at": "2026-05-01T08:30:00"}, {"customer_id": "a:3", "request_at": null}]}', JSON),
    (b'{"customers": [{"customer_id": "a:1", "request_at": "2026-05-01"}]}', JSON),
    (b'{"customers": [{"customer_id": "a:1", "request_at": 1777777777}]}', JSON),
    (b'{"customers": [{"customer_id": "a:1", "request_at": "yesterday"}]}', JSON),
    (b'{"customers": [', JSON),
    (b'', JSON),
    (b'{"customers": []}', JSON),
    (b'{"customers": [{"customer_id": 5}]}', JSON),
    (b'{"customers": [{"customer_id": ""}]}', JSON),
    ('{"customers": [{"customer_id": "' + "x" * 201 + '"}]}', JSON),
    ('{"customers": [{"customer_id": "é' + "x" * 199 + '"}]}', JSON),
    (b'{"customers": [{"customer_id": "a:1"}, {"customer_id": "a:1"}]}', JSON),
    (json.dumps({"customers": [{"customer_id": f"a:{i}"} for i in range(1001)]}), JSON),
    (b'{"clients": []}', JSON),
    (b'{"customers": [{"customer_id": "a:1", "extra": 1}]}', JSON),
    (b'{"customers": [{"customer_id": "a:1"}], "extra": 1}', JSON),
    (b'{"customers": {"customer_id": "a:1"}}', JSON),
    (b'[1, 2]', JSON),
    (b'null', JSON),
    (b'""', JSON),
    (b'0', JSON),
    (b'   ', JSON),
    (b'{"customers": [{"customer_id": "a:1", "request_at": NaN}]}', JSON),
    ('{"customers": [{"customer_id": "a:\\ud800"}]}', JSON),
    ('{"customers": [{"customer_id": "a:1"}]}'.encode("utf-16"), JSON),
    (b'{"customers": [{"customer_id": "a:1"}]}', "application/vnd.parity+json; charset=utf-8"),
    (b'{"customers": [{"customer_id": "a:1"}]}', "text/plain"),
    (b'{"customers": [{"customer_id": "a:1"}]}', None),
]


@pytest.mark.parametrize(("raw", "content_type"), BODIES)
def test_same_values_and_errors_as_fastapi(raw, content_type):
    raw = raw.encode() if isinstance(raw, str) else raw
    headers = {"content-type": content_type} if content_type else {}
    with TestClient(_reference) as client:
        expected = client.post("/", content=raw, headers=headers)
    try:
        ids, times = parse_predict_body(raw, content_type)
    except RequestValidationError as err:
        assert expected.status_code == 422, expected.text
        assert _plain(err.errors()) == expected.json()["errors"]
        return
    assert expected.status_code == 200, expected.text
    assert {"ids": ids, "times": [None if t is None else t.isoformat() for t in times]} == expected.json()


def test_parsed_times_keep_their_offset():
    ids, times = parse_predict_body(b'{"customers": [{"customer_id": "a:1", "request_at": "2026-05-01T10:30:00+02:00"},'
                                    b' {"customer_id": "a:2", "request_at": "2026-05-01T10:30:00+02:00"}]}', JSON)
    assert ids == ["a:1", "a:2"]
    assert times == [datetime(2026, 5, 1, 8, 30, tzinfo=timezone.utc)] * 2
    assert times[0].utcoffset() == timedelta(hours=2)


def test_openapi_documents_the_body_and_security_as_a_parsed_parameter_would(tmp_path):
    """The route reads its own body, yet its OpenAPI operation (body schema, security) and the
    schemas it refers to are what FastAPI generates for a `PredictRequest` parameter."""
    from parity.config import load_settings
    from serving.app import create_app
    from serving.config import load_config

    schema = create_app(load_settings(tmp_path), load_config(None, {"PARITY_API_KEYS": "k"})).openapi()
    operation = schema["paths"]["/v1/predict"]["post"]
    assert operation["requestBody"] == {"content": {"application/json": {"schema": {
        "$ref": "#/components/schemas/PredictRequest"}}}, "required": True}
    assert operation["security"] == [{"HTTPBearer": []}, {"APIKeyHeader": []}]
    assert set(schema["components"]["securitySchemes"]) == {"HTTPBearer", "APIKeyHeader"}
    generated = _reference.openapi()["components"]["schemas"]
    for name in ("PredictRequest", "CustomerIn"):
        assert schema["components"]["schemas"][name] == generated[name]
