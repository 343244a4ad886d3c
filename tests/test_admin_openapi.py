"""The admin API's OpenAPI document covers every admin route."""

from __future__ import annotations

import re

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
