"""Bearer tokens and scopes on every /v1 route; health routes need none."""

from __future__ import annotations

import pytest

from daemon.config import ConfigError
from tests.daemon.http.conftest import (
    TOKEN_ENV,
    TOKENS,
    MakeSite,
    Site,
    assert_problem,
    digest,
)

V1_ROUTES = ["/v1/event-types", "/v1/event-types/consult/slots"]


@pytest.mark.parametrize("route", V1_ROUTES)
def test_no_token_is_401_with_a_bearer_challenge(site: Site, route: str) -> None:
    response = site.get(route, token=None)
    assert_problem(response, 401, "/problems/unauthorized")
    assert response.headers["www-authenticate"].startswith("Bearer ")


@pytest.mark.parametrize("route", V1_ROUTES)
def test_another_scheme_is_401(site: Site, route: str) -> None:
    response = site.get(route, token=None, headers={"Authorization": "Basic d2Vic2l0ZTp4"})
    assert_problem(response, 401, "/problems/unauthorized")
    assert response.headers["www-authenticate"].startswith("Bearer ")


@pytest.mark.parametrize("route", V1_ROUTES)
@pytest.mark.parametrize("presented", ["not-a-configured-token", TOKENS["website"] + "x",
                                       TOKENS["website"][:-1], "0" * 64])
def test_unknown_token_is_401_invalid_token(site: Site, route: str, presented: str) -> None:
    response = site.get(route, token=presented)
    assert_problem(response, 401, "/problems/unauthorized")
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_a_configured_digest_is_not_itself_a_token(site: Site) -> None:
    """Regression: the digest stored in the config must not authenticate."""
    response = site.get("/v1/event-types", token=digest(TOKENS["reports"]))
    assert_problem(response, 401, "/problems/unauthorized")


@pytest.mark.parametrize("route", V1_ROUTES)
def test_token_without_the_scope_is_403(site: Site, route: str) -> None:
    response = site.get(route, token="ops")
    document = assert_problem(response, 403, "/problems/forbidden")
    assert document["scope"] == "slots"
    assert "ops" in document["detail"]
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]


@pytest.mark.parametrize("route", V1_ROUTES)
@pytest.mark.parametrize("token", ["website", "desk", "reports"])  # env, file, sha256
def test_token_with_the_scope_is_admitted(site: Site, route: str, token: str) -> None:
    response = site.get(route, token=token)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"


@pytest.mark.parametrize("route", ["/healthz", "/readyz", "/openapi.json"])
def test_health_and_the_openapi_document_need_no_token(site: Site, route: str) -> None:
    response = site.get(route, token=None)
    assert response.status_code in (200, 503)  # /readyz: nothing has synced yet
    assert response.status_code != 401


def test_tokens_are_read_once_when_the_hook_is_built(make_site: MakeSite,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    site = make_site()
    monkeypatch.setenv(TOKEN_ENV, "a-rotated-token")
    assert site.get("/v1/event-types", token="website").status_code == 200
    assert site.get("/v1/event-types", token="a-rotated-token").status_code == 401


def test_an_explicit_environment_is_used_for_token_variables(make_site: MakeSite) -> None:
    site = make_site(environ={TOKEN_ENV: "from-the-given-environment"})
    assert site.get("/v1/event-types", token="from-the-given-environment").status_code == 200
    assert site.get("/v1/event-types", token="website").status_code == 401


def test_an_unset_token_variable_fails_the_build_naming_the_key(make_site: MakeSite) -> None:
    with pytest.raises(ConfigError) as raised:
        make_site(environ={})
    assert raised.value.problems == [
        f"api.tokens[0].token_env: environment variable {TOKEN_ENV} is not set"
    ]
