"""Every error is a documented RFC 9457 problem, including the framework's own."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from pydantic import BaseModel

from daemon.http.problems import MEDIA_TYPE, PROBLEM_TYPES
from tests.daemon.http.conftest import Site, assert_problem, unreachable_site


def test_unknown_route_is_a_404_problem(site: Site) -> None:
    response = site.get("/v1/nothing-here")
    document = assert_problem(response, 404, "/problems/not-found")
    assert "/v1/nothing-here" in document["detail"]


def test_wrong_method_is_a_405_problem_with_allow(site: Site) -> None:
    response = site.client.post("/v1/event-types")
    assert_problem(response, 405, "/problems/method-not-allowed")
    assert response.headers["allow"] == "GET"


class Body(BaseModel):
    count: int
    email: str


class Count(BaseModel):
    count: int


def test_framework_validation_errors_are_422_problems_naming_each_input(site: Site) -> None:
    @site.api.post("/test/typed")
    def typed(limit: int, body: Body) -> dict[str, int]:
        return {"limit": limit}

    response = site.client.post("/test/typed", params={"limit": "many"},
                                json={"count": "lots"})
    document = assert_problem(response, 422, "/problems/validation")
    errors = {(error["in"], error["name"]): error for error in document["errors"]}
    assert set(errors) == {("query", "limit"), ("body", "count"), ("body", "email")}
    assert errors[("body", "count")]["pointer"] == "#/count"
    assert all(error["detail"] for error in document["errors"])
    assert "lots" not in response.text  # the rejected input is not echoed


def test_malformed_json_body_is_a_422_problem(site: Site) -> None:
    @site.api.post("/test/body")
    def body(body: Count) -> dict[str, int]:
        return {"count": body.count}

    response = site.client.post("/test/body", content=b"{not json",
                                headers={"content-type": "application/json"})
    assert_problem(response, 422, "/problems/validation")


def test_an_unexpected_exception_is_a_500_problem_without_internals(
        site: Site, caplog: pytest.LogCaptureFixture) -> None:
    @site.api.get("/test/explode")
    def explode() -> None:
        raise RuntimeError("password=hunter2 at /etc/calpool/secret")

    with caplog.at_level(logging.ERROR, logger="calpool.http"):
        response = site.client.get("/test/explode")
    document = assert_problem(response, 500, "/problems/internal")
    request_id = response.headers["x-request-id"]
    assert document["request_id"] == request_id
    assert request_id in document["detail"]
    assert "hunter2" not in response.text and "RuntimeError" not in response.text
    logged = [record for record in caplog.records if record.exc_info]
    assert len(logged) == 1
    assert getattr(logged[0], "request_id", None) == request_id
    assert "GET /test/explode" in logged[0].getMessage()


def test_an_async_route_that_raises_is_a_500_problem_too(site: Site) -> None:
    @site.api.get("/test/explode-async")
    async def explode() -> None:
        raise KeyError("internal-key")

    response = site.client.get("/test/explode-async")
    assert_problem(response, 500, "/problems/internal")
    assert "internal-key" not in response.text


def test_request_id_is_the_callers_when_plain_else_a_new_one(site: Site) -> None:
    given = site.get("/healthz", headers={"X-Request-Id": "proxy-1234.abc"})
    assert given.headers["x-request-id"] == "proxy-1234.abc"
    odd = site.get("/healthz", headers={"X-Request-Id": "bad id\twith spaces"})
    assert odd.headers["x-request-id"] not in ("", "bad id\twith spaces")
    assert site.get("/healthz").headers["x-request-id"] != site.get("/healthz").headers[
        "x-request-id"]


def test_database_that_does_not_answer_is_a_503_problem(site: Site) -> None:
    client = unreachable_site(site)
    response = client.get("/v1/event-types/consult/slots",
                          headers={"Authorization": "Bearer website-token-from-the-environment"})
    assert_problem(response, 503, "/problems/database-unavailable")
    assert response.headers["retry-after"] == "5"
    assert "connection refused" not in response.text


def openapi(site: Site) -> dict[str, Any]:
    document: dict[str, Any] = site.get("/openapi.json", token=None).json()
    return document


def test_every_problem_type_is_documented(site: Site) -> None:
    description = openapi(site)["info"]["description"]
    for uri in PROBLEM_TYPES:
        assert f"`{uri}`" in description


def test_error_responses_are_documented_as_problem_documents(site: Site) -> None:
    document = openapi(site)
    seen = 0
    for operations in document["paths"].values():
        for operation in operations.values():
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    seen += 1
                    assert list(response["content"]) == [MEDIA_TYPE]
                    schema = response["content"][MEDIA_TYPE]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ProblemDetails"}
                    assert "/problems/" in response["description"]
    assert seen >= 6
    slots = document["paths"]["/v1/event-types/{key}/slots"]["get"]
    assert {"401", "403", "404", "422", "503"} <= set(slots["responses"])
    assert "unknown-event-type" in slots["responses"]["404"]["description"]
    assert slots["security"] == [{"bearer": []}]
    assert "security" not in document["paths"]["/healthz"]["get"]
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_problem_documents_match_the_documented_schema(site: Site) -> None:
    document = openapi(site)
    validator = Draft202012Validator({"$ref": "#/components/schemas/ProblemDetails",
                                      "components": document["components"]})
    for response in (site.get("/v1/event-types/consult/slots", params={"timezone": "X/Y"}),
                     site.get("/v1/event-types", token=None),
                     site.get("/v1/event-types", token="ops"),
                     site.get("/nowhere")):
        validator.validate(response.json())
