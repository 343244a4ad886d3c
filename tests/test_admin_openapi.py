"""The admin API's OpenAPI document covers every admin route."""

from __future__ import annotations

import re

import httpx
from starlette.routing import Route

from gateway.api import openapi
from tests.admin_client import Admin
from tests.harness import GatewayServer
from tests.test_admin_auth import READS, WRITES


def test_openapi_document_lists_every_admin_route(gateway: GatewayServer):
    admin = Admin(gateway)
    assert Admin(gateway, "").get("/admin/openapi.json").status_code == 401
    spec = admin.ok(admin.get("/admin/openapi.json"))
    assert spec["openapi"] == "3.1.0"
    paths = spec["paths"]
    schemas = spec["components"]["schemas"]

    def documented(method: str, path: str) -> dict:
        for template, operations in paths.items():
            pattern = "^" + re.sub(r"\{\w+\}", r"[^/]+", template) + "$"
            if re.match(pattern, path) and method.lower() in operations:
                return operations[method.lower()]
        raise AssertionError(f"{method} {path} is not documented")

    for method, path, body in WRITES:
        operation = documented(method, path)
        assert {"400", "401"} <= set(operation["responses"])
        if body is not None:
            reference = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            assert reference.rsplit("/", 1)[1] in schemas
    for path in READS:
        documented("GET", path)
    assert documented("GET", "/admin/openapi.json")
    # Every body schema names the fields the API accepts, no more.
    assert set(schemas["Model"]["required"]) >= {"model_id", "provider"}
    assert schemas["Credit"]["additionalProperties"] is False


def test_every_body_schema_exists():
    for schema in openapi.BODIES.values():
        assert schema in openapi.SCHEMAS
    assert all(isinstance(r, Route) for r in openapi.routes)


def test_the_v1_answers_the_document_describes_have_its_fields(gateway: GatewayServer):
    """The gateway's own /v1 answers name exactly the fields their schemas do."""
    spec = Admin(gateway).ok(Admin(gateway).get("/admin/openapi.json"))
    schemas = spec["components"]["schemas"]

    def fits(answer: dict, schema: str | dict) -> None:
        described = schemas[schema] if isinstance(schema, str) else schema
        assert set(described["required"]) <= set(answer) <= set(described["properties"]), (
            schema,
            answer,
        )

    base, key = gateway.base_url, {"x-api-key": gateway.demo_key}
    anthropic = {**key, "anthropic-version": "2023-06-01"}
    listed = httpx.get(f"{base}/v1/models?all=true").json()
    fits(listed, "ModelList")
    for entry in listed["data"]:
        fits(entry, "ModelEntry")
    as_anthropic = httpx.get(f"{base}/v1/models?all=true", headers=anthropic).json()
    fits(as_anthropic, "AnthropicModelList")
    for entry in as_anthropic["data"]:
        fits(entry, "AnthropicModel")
    missing = httpx.get(f"{base}/v1/models/nope")
    fits(missing.json(), "Error")
    fits(missing.json()["error"], schemas["Error"]["properties"]["error"])
    count = httpx.post(
        f"{base}/v1/messages/count_tokens",
        headers=key,
        json={"model": "mock-1", "messages": [{"role": "user", "content": "hi"}]},
    )
    fits(count.json(), "TokenCount")
    refused = httpx.post(f"{base}/v1/messages/count_tokens", headers=key, json={"model": 5})
    fits(refused.json(), "AnthropicError")
    fits(refused.json()["error"], schemas["AnthropicError"]["properties"]["error"])
    account = httpx.get(f"{base}/v1/account", headers=key).json()
    fits(account, "Account")
    for part in ("user", "spend", "key"):
        fits(account[part], schemas["Account"]["properties"][part])
    for path, methods in spec["paths"].items():
        for operation in methods.values():
            for answer in operation["responses"].values():
                assert "x-request-id" in answer["headers"], (path, answer)
