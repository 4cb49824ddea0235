"""Single sign-on through an organization's OpenID Connect provider, and Clerk-style session tokens, against a
provider the test runs (tests-e2e/oidc_provider.py) that signs with real RSA keys. Tried the way a new member
and a hostile client would: a browser-like session that follows redirects, forged and stale tokens, a provider
that vouches for someone else's email, and sessions that must stay inside their organization."""
import time
import urllib.parse

import pytest
import requests

from conftest import Herald
from oidc_provider import OIDCProvider


@pytest.fixture
def provider():
    p = OIDCProvider()
    yield p
    p.close()


@pytest.fixture
def server(store):
    s = Herald(database_url=store, env={"HERALD_BCRYPT_COST": "10", "HERALD_OUTBOUND_ALLOW_CIDRS": "127.0.0.0/8"}).start()
    yield s
    s.stop()


def organization(server, name="Acme"):
    owner = server.signup()
    h = server.auth(owner["token"])
    org = requests.post(server.url("/organizations"), headers=h, json={"name": name}).json()
    return owner, h, org


def connect(server, h, org, provider, **extra):
    body = {"issuer": provider.issuer, "clientId": provider.client_id, "clientSecret": provider.client_secret, **extra}
    r = requests.put(server.url(f"/organizations/{org['id']}/sso"), headers=h, json=body)
    assert r.status_code == 200, r.text
    return r.json()


def sign_in(server, org, return_to=None):
    """What a browser does: start, follow the provider's redirect back, keep cookies."""
    browser = requests.Session()
    query = f"?returnTo={urllib.parse.quote(return_to)}" if return_to else ""
    start = browser.get(server.url(f"/auth/sso/{org['id']}/login{query}"), allow_redirects=False)
    assert start.status_code == 302, start.text
    at_provider = browser.get(start.headers["Location"], allow_redirects=False)
    assert at_provider.status_code == 302, at_provider.text
    callback = browser.get(at_provider.headers["Location"], allow_redirects=False)
    return browser, start, callback


def test_sign_in_creates_a_member_limited_to_the_organization(server, provider):
    owner, h, org = organization(server)
    config = connect(server, h, org, provider, defaultRole="viewer")
    assert config["clientSecretSet"] is True and "clientSecret" not in config
    assert config["redirectUri"] == server.url("/auth/sso/callback")
    assert config["signInUrl"] == server.url(f"/auth/sso/{org['id']}/login")

    browser, start, callback = sign_in(server, org)
    # PKCE S256, state, nonce and the openid scope went to the provider; the state is bound to the browser.
    sent = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(start.headers["Location"]).query))
    assert sent["code_challenge_method"] == "S256" and len(sent["code_challenge"]) == 43
    assert sent["redirect_uri"] == server.url("/auth/sso/callback") and "openid" in sent["scope"]
    cookie = start.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/auth/sso" in cookie
    assert callback.status_code == 200, callback.text
    assert callback.headers["Cache-Control"] == "no-store"
    tokens = callback.json()
    assert tokens["user"]["email"] == "sso.user@example.com" and tokens["user"]["name"] == "Sso User"
    # The token endpoint was called with Basic client authentication and the PKCE verifier.
    form = provider.token_requests[-1]["form"]
    assert form["code_verifier"] and form["grant_type"] == "authorization_code"

    member = server.auth(tokens["accessToken"])
    orgs = requests.get(server.url("/organizations"), headers=member).json()["items"]
    assert [(o["id"], o["role"]) for o in orgs] == [(org["id"], "viewer")]
    # A viewer may read but not change the organization.
    assert requests.get(server.url(f"/organizations/{org['id']}/members"), headers=member).status_code == 200
    assert requests.patch(server.url(f"/organizations/{org['id']}"), headers=member, json={"name": "x"}).status_code == 403

    # The SSO session reaches nothing else: a new organization, or another one the user later joins.
    r = requests.post(server.url("/organizations"), headers=member, json={"name": "Elsewhere"})
    assert r.status_code == 403 and "single sign-on" in r.json()["detail"]

    # The refresh token keeps the limit.
    refreshed = requests.post(server.url("/auth/refresh"), json={"refreshToken": tokens["refreshToken"]}).json()
    r = requests.post(server.url("/organizations"), headers=server.auth(refreshed["accessToken"]), json={"name": "Elsewhere"})
    assert r.status_code == 403

    # A second sign-in finds the same user through the linked identity.
    _, _, again = sign_in(server, org)
    assert again.json()["user"]["id"] == tokens["user"]["id"]
    assert requests.get(server.url(f"/organizations/{org['id']}/sso"), headers=h).json()["linkedIdentities"] == 1

    # The audit log tells the story.
    actions = [e["action"] for e in requests.get(server.url(f"/organizations/{org['id']}/audit-logs?limit=100"), headers=h).json()["items"]]
    for action in ("sso.connection_created", "sso.user_provisioned", "sso.identity_linked", "auth.sso.succeeded"):
        assert action in actions, actions
    assert requests.get(server.url(f"/organizations/{org['id']}/audit-logs/verify"), headers=h).json()["valid"] is True

    # The account has no password: signing in with any password fails like a wrong one.
    r = requests.post(server.url("/auth/login"), json={"email": "sso.user@example.com", "password": "!sso"})
    assert r.status_code == 401


def test_return_to_gets_a_one_time_code_not_tokens(server, provider):
    owner, h, org = organization(server)
    connect(server, h, org, provider)
    browser, _, callback = sign_in(server, org, return_to="/app?tab=sites")
    assert callback.status_code == 303
    location = callback.headers["Location"]
    assert location.startswith("/app?tab=sites&ssoCode=sso_")
    assert "max-age=0" in callback.headers["Set-Cookie"].lower()
    code = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(location).query))["ssoCode"]
    r = requests.post(server.url("/auth/sso/exchange"), json={"code": code})
    assert r.status_code == 200 and r.json()["accessToken"]
    again = requests.post(server.url("/auth/sso/exchange"), json={"code": code})
    assert again.status_code == 401 and again.headers["Content-Type"].startswith("application/problem+json")

    # Open redirects are refused before anything happens.
    for bad in ("https://evil.example/", "//evil.example/", "/\\evil.example", "javascript:alert(1)"):
        r = requests.get(server.url(f"/auth/sso/{org['id']}/login"), params={"returnTo": bad}, allow_redirects=False)
        assert r.status_code == 422, (bad, r.status_code, r.text)


@pytest.mark.parametrize("mode,reason", [
    ("bad-signature", "signature is invalid"),
    ("wrong-audience", "another audience"),
    ("expired", "expired"),
    ("unknown-kid", "does not publish"),
    ("wrong-nonce", "nonce"),
])
def test_bad_id_tokens_are_refused(server, provider, mode, reason):
    owner, h, org = organization(server)
    connect(server, h, org, provider)
    provider.mode = mode
    _, _, callback = sign_in(server, org)
    assert callback.status_code == 401, callback.text
    problem = callback.json()
    assert problem["type"].endswith("/sso-failed") and reason in problem["detail"], problem
    log = requests.get(server.url(f"/organizations/{org['id']}/audit-logs?limit=100"), headers=h).json()["items"]
    assert any(e["action"] == "auth.sso.failed" and reason in e["details"]["reason"] for e in log)


def test_state_must_come_back_to_the_same_browser_once(server, provider):
    owner, h, org = organization(server)
    connect(server, h, org, provider)
    browser = requests.Session()
    start = browser.get(server.url(f"/auth/sso/{org['id']}/login"), allow_redirects=False)
    back = requests.get(start.headers["Location"], allow_redirects=False).headers["Location"]
    # Another browser (no cookie) presenting the callback: login CSRF, refused.
    r = requests.get(back, allow_redirects=False)
    assert r.status_code == 401 and r.json()["type"].endswith("/sso-state-mismatch")
    assert browser.get(back, allow_redirects=False).status_code == 200
    # Replaying the same answer fails: the state was used.
    r = browser.get(back, allow_redirects=False)
    assert r.status_code == 401


def test_provider_cannot_take_over_an_outside_account(server, provider):
    victim = server.signup(email="victim@example.com")
    owner, h, org = organization(server)
    connect(server, h, org, provider)
    provider.user = {"sub": "attacker", "email": "victim@example.com", "email_verified": True}
    _, _, callback = sign_in(server, org)
    assert callback.status_code == 403 and callback.json()["type"].endswith("/sso-account-exists")
    # Unverified email: refused too.
    provider.user = {"sub": "someone", "email": "new@example.com", "email_verified": False}
    _, _, callback = sign_in(server, org)
    assert callback.status_code == 403 and callback.json()["type"].endswith("/sso-email-unverified")
    # An account that is already a member is linked.
    provider.user = {"sub": "owner-at-idp", "email": owner["email"], "email_verified": "true"}
    _, _, callback = sign_in(server, org)
    assert callback.status_code == 200 and callback.json()["user"]["id"] == owner["id"]


def test_connection_is_validated_and_private(server, provider):
    owner, h, org = organization(server)
    r = requests.put(server.url(f"/organizations/{org['id']}/sso"), headers=h, json={"issuer": provider.issuer + "/nope", "clientId": "x"})
    assert r.status_code == 422 and "issuer" in r.text
    r = requests.put(server.url(f"/organizations/{org['id']}/sso"), headers=h, json={"issuer": provider.issuer, "clientId": "x", "defaultRole": "owner"})
    assert r.status_code == 422 and "defaultRole" in r.text
    assert requests.get(server.url(f"/organizations/{org['id']}/sso"), headers=h).status_code == 404
    connect(server, h, org, provider)
    # Another organization's owner sees nothing of it.
    other = server.signup()
    oh = server.auth(other["token"])
    assert requests.get(server.url(f"/organizations/{org['id']}/sso"), headers=oh).status_code == 404
    assert requests.delete(server.url(f"/organizations/{org['id']}/sso"), headers=oh).status_code == 404
    # Unknown organization: 404, no redirect.
    r = requests.get(server.url("/auth/sso/00000000-0000-7000-8000-000000000000/login"), allow_redirects=False)
    assert r.status_code == 404
    assert requests.delete(server.url(f"/organizations/{org['id']}/sso"), headers=h).status_code == 204
    assert requests.get(server.url(f"/auth/sso/{org['id']}/login"), allow_redirects=False).status_code == 404


def test_clerk_style_session_tokens(server, provider):
    owner, h, org = organization(server)
    connect(server, h, org, provider, acceptSessionTokens=True, authorizedParties=["https://app.example.com"])
    provider.user = {"sub": "user_2abc", "email": "clerk.user@example.com", "email_verified": True, "name": "Clerk User"}
    # Clerk's default session token carries no email: first sign-in through OIDC links the identity.
    _, _, callback = sign_in(server, org)
    user_id = callback.json()["user"]["id"]

    token = provider.session_token(sub="user_2abc", sid="sess_A")
    me = requests.get(server.url("/users/me"), headers=server.auth(token))
    assert me.status_code == 200 and me.json()["id"] == user_id
    assert requests.get(server.url(f"/organizations/{org['id']}/members"), headers=server.auth(token)).status_code == 200
    assert requests.post(server.url("/organizations"), headers=server.auth(token), json={"name": "x"}).status_code == 403

    def refused(tok, words):
        r = requests.get(server.url("/users/me"), headers=server.auth(tok))
        assert r.status_code == 401, (words, r.text)
        assert words in r.json()["detail"], r.json()

    refused(provider.session_token(sub="user_2abc", key=provider.unpublished), "does not publish")
    refused(provider.session_token(sub="user_2abc", key=provider.unpublished, kid=provider.keys[0].kid), "signature is invalid")
    refused(provider.session_token(sub="user_2abc", lifetime=-600), "expired")
    refused(provider.session_token(sub="user_2abc", azp="https://evil.example"), "party")
    # An identity never linked, whose token carries no verified email, is not a member.
    refused(provider.session_token(sub="nobody"), "verified email")

    # Key rotation: a token signed with a new key id makes Herald fetch the keys again.
    fetches = provider.jwks_fetches
    provider.rotate()
    # Herald refetches at most every 10 s, so a flood of forged key ids cannot hammer the provider.
    deadline = time.time() + 15
    while True:
        r = requests.get(server.url("/users/me"), headers=server.auth(provider.session_token(sub="user_2abc", sid="sess_A")))
        if r.status_code == 200 or time.time() > deadline:
            break
        time.sleep(1)
    assert r.status_code == 200 and provider.jwks_fetches > fetches

    # Another issuer's token, or one for an organization that did not turn session tokens on, is not accepted.
    other = OIDCProvider()
    try:
        r = requests.get(server.url("/users/me"), headers=server.auth(other.session_token(sub="user_2abc")))
        assert r.status_code == 401
    finally:
        other.close()

    # The Herald session standing for the provider session ends when the member leaves.
    assert requests.delete(server.url(f"/organizations/{org['id']}/members/{user_id}"), headers=h).status_code == 204
    r = requests.get(server.url(f"/organizations/{org['id']}/members"), headers=server.auth(provider.session_token(sub="user_2abc", sid="sess_A")))
    assert r.status_code == 404
    actions = [e["action"] for e in requests.get(server.url(f"/organizations/{org['id']}/audit-logs?limit=100"), headers=h).json()["items"]]
    assert "auth.session_token.accepted" in actions


def test_one_issuer_one_organization_for_session_tokens(server, provider):
    _, h1, org1 = organization(server, "One")
    _, h2, org2 = organization(server, "Two")
    connect(server, h1, org1, provider, acceptSessionTokens=True)
    r = requests.put(server.url(f"/organizations/{org2['id']}/sso"), headers=h2,
                     json={"issuer": provider.issuer, "clientId": "c", "acceptSessionTokens": True})
    assert r.status_code == 409 and r.json()["type"].endswith("/sso-issuer-taken")
    # Sign-in through the same provider without session tokens is fine.
    connect(server, h2, org2, provider)
