"""OpenID Connect bearer tokens against the real services: JWTs signed with a key pair generated here, whose
public half is served as a JWKS by a small HTTP server inside the test. A valid token works with the role and
territory its claims map to; a wrong key, an expired token, a wrong issuer or audience, a shared-secret or
unsigned token are refused with 401; a genuine token naming no known role with 403."""

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from sellthrough_devstack.processes import free_port
from sellthrough_devstack.services import ServiceProcess
from tests.conftest import Infra, Tokens
from tests.support.services import running_services

pytestmark = pytest.mark.e2e

ISSUER = "https://idp.test/realms/sellthrough"
AUDIENCE = "sellthrough-api"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwks() -> dict[str, Any]:
    rsa_jwk = json.loads(RSAAlgorithm.to_jwk(KEY.public_key()))
    ec_jwk = json.loads(ECAlgorithm.to_jwk(EC_KEY.public_key()))
    return {
        "keys": [
            {**rsa_jwk, "kid": "rsa-1", "use": "sig", "alg": "RS256"},
            {**ec_jwk, "kid": "ec-1", "use": "sig", "alg": "ES256"},
        ]
    }


class JwksServer:
    """The identity provider's JWKS endpoint, counting its fetches."""

    def __init__(self) -> None:
        self.fetches = 0
        body = json.dumps(jwks()).encode()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # the name http.server calls
                outer.fetches += 1
                self.send_response(200 if self.path == "/jwks.json" else 404)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/jwks.json"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "JwksServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def idp() -> Iterator[JwksServer]:
    with JwksServer() as server:
        yield server


@pytest.fixture(scope="module")
def services(infra: Infra, tokens: Tokens, idp: JwksServer) -> Iterator[dict[str, ServiceProcess]]:
    env = {
        "SELLTHROUGH_OIDC_JWKS_URL": idp.url,
        "SELLTHROUGH_OIDC_ISSUER": ISSUER,
        "SELLTHROUGH_OIDC_AUDIENCE": AUDIENCE,
        "SELLTHROUGH_OIDC_ROLE_CLAIM": "realm_access.roles",
        "SELLTHROUGH_OIDC_GEO_IDS_CLAIM": "sellthrough_geo",
    }
    with running_services(infra, tokens, ["order-capture", "query-api"], env) as running:
        yield running


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "RM-7",
        "iat": now,
        "exp": now + 300,
        "realm_access": {"roles": ["offline_access", "regional_manager"]},
        "sellthrough_geo": ["Z1"],
    }
    return {k: v for k, v in {**base, **changes}.items() if v is not None}


def signed(payload: dict[str, Any], key: Any = KEY, kid: str = "rsa-1", algorithm: str = "RS256") -> str:
    return jwt.encode(payload, key, algorithm=algorithm, headers={"kid": kid})


def get(service: ServiceProcess, path: str, token: str) -> httpx.Response:
    return httpx.get(f"{service.url}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=10)


def test_a_valid_token_works_with_the_role_and_territory_its_claims_map_to(
    services: dict[str, ServiceProcess],
) -> None:
    manager = get(services["query-api"], "/v1/whoami", signed(claims()))
    assert manager.status_code == 200, manager.text
    assert manager.json() == {
        "role": "regional_manager",
        "subject": "RM-7",
        "device_id": None,
        "distributors": [],
        "geo_ids": ["Z1"],
    }
    rep = signed(
        claims(sub="REP-1", device_id="phone-1", realm_access={"roles": ["rep"]}, sellthrough_geo=None),
        key=EC_KEY,
        kid="ec-1",
        algorithm="ES256",
    )
    assert get(services["order-capture"], "/v1/whoami", rep).json()["device_id"] == "phone-1"
    # The role decides what a token may do, as for any other token.
    analyst = signed(claims(sub="ana", realm_access={"roles": ["analyst"]}, sellthrough_geo=None))
    assert get(services["query-api"], "/v1/sales", analyst).status_code == 200
    assert get(services["order-capture"], "/v1/reference/status", analyst).status_code == 200
    refused = get(services["query-api"], "/v1/sales", rep)
    assert refused.status_code == 403, refused.text


@pytest.mark.parametrize(
    ("name", "token", "slug"),
    [
        ("signed by another key", lambda: signed(claims(), key=OTHER_KEY), "unauthorized"),
        ("a key id the provider never had", lambda: signed(claims(), key=OTHER_KEY, kid="rsa-9"), "unauthorized"),
        ("expired", lambda: signed(claims(exp=int(time.time()) - 600, iat=int(time.time()) - 900)), "token-expired"),
        ("another issuer", lambda: signed(claims(iss="https://evil.test")), "unauthorized"),
        ("another audience", lambda: signed(claims(aud="someone-else")), "unauthorized"),
        ("no expiry", lambda: signed(claims(exp=None)), "unauthorized"),
        (
            "a shared secret (HS256)",
            lambda: jwt.encode(claims(), "secret" * 8, algorithm="HS256", headers={"kid": "rsa-1"}),
            "unauthorized",
        ),
        (
            "unsigned (alg none)",
            lambda: jwt.encode(claims(), "", algorithm="none", headers={"kid": "rsa-1"}),
            "unauthorized",
        ),
        ("tampered claims", lambda: tampered(signed(claims())), "unauthorized"),
    ],
)
def test_tokens_that_do_not_verify_are_refused_with_401(
    services: dict[str, ServiceProcess], name: str, token: Any, slug: str
) -> None:
    for service in services.values():
        response = get(service, "/v1/whoami", token())
        assert response.status_code == 401, f"{name}: {response.text}"
        assert response.json()["type"].endswith(f"/{slug}"), f"{name}: {response.text}"
        assert response.headers["www-authenticate"].startswith("Bearer")


def tampered(token: str) -> str:
    header, payload, signature = token.split(".")
    claims_ = json.loads(jwt.utils.base64url_decode(payload))
    claims_["sellthrough_geo"] = ["Z1", "Z2"]
    forged = jwt.utils.base64url_encode(json.dumps(claims_).encode()).decode()
    return f"{header}.{forged}.{signature}"


def test_a_genuine_token_naming_no_known_role_is_refused_with_403(services: dict[str, ServiceProcess]) -> None:
    token = signed(claims(realm_access={"roles": ["offline_access", "superuser"]}))
    response = get(services["query-api"], "/v1/whoami", token)
    assert response.status_code == 403, response.text
    assert response.json()["type"].endswith("/unknown-role")
    assert "realm_access.roles" in response.json()["title"] + response.json().get("detail", "")


def test_made_up_key_ids_do_not_make_the_services_hammer_the_provider(
    services: dict[str, ServiceProcess], idp: JwksServer
) -> None:
    before = idp.fetches
    for n in range(20):
        assert get(services["query-api"], "/v1/whoami", signed(claims(), kid=f"made-up-{n}")).status_code == 401
    assert idp.fetches - before <= 1  # at most one refetch per cooldown per process


def test_static_tokens_keep_working_beside_oidc(services: dict[str, ServiceProcess], tokens: Tokens) -> None:
    assert get(services["order-capture"], "/v1/whoami", tokens.issued["analyst"].token).json()["role"] == "analyst"
