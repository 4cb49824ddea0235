"""SCIM 2.0 provisioning against the real binary: scim2-tester finds no failure, and targeted requests check the rules
an identity provider relies on (filters, pagination, PATCH, ETags, deprovisioning, tokens, tenant isolation)."""
import json
import urllib.parse

import httpx2
import pytest
import requests
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

from conftest import Herald

SCIM = "application/scim+json"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"


@pytest.fixture
def server(store):
    # Resources name themselves by absolute URLs (meta.location, members' $ref): the public URL is the server's own.
    herald = Herald(database_url=store, env={"HERALD_BCRYPT_COST": "10"})
    herald.env["HERALD_PUBLIC_URL"] = herald.base
    herald.start()
    yield herald
    herald.stop()


def organization(herald, name="Acme"):
    owner = herald.signup()
    auth = herald.auth(owner["token"])
    org = requests.post(herald.url("/organizations"), json={"name": name}, headers=auth).json()
    r = requests.post(herald.url(f"/organizations/{org['id']}/scim-tokens"), json={"name": "IdP"}, headers=auth)
    assert r.status_code == 201, r.text
    token = r.json()
    assert token["token"].startswith("scim_")
    assert token["scimBaseUrl"] == herald.url("/scim/v2")
    return {"owner": owner, "auth": auth, "org": org["id"], "token": token,
            "scim": {"Authorization": f"Bearer {token['token']}", "Content-Type": SCIM}}


def scim(herald, method, path, ctx, **kwargs):
    headers = dict(ctx["scim"]) if ctx else {"Content-Type": SCIM}
    headers.update(kwargs.pop("headers", {}))
    body = kwargs.pop("json", None)
    data = json.dumps(body) if body is not None else kwargs.pop("data", None)
    return requests.request(method, herald.url("/scim/v2" + path), headers=headers, data=data, timeout=10, **kwargs)


def assert_scim_error(r, status, scim_type=None):
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["Content-Type"] == SCIM
    body = r.json()
    assert body["schemas"] == [ERROR]
    assert body["status"] == str(status)
    if scim_type:
        assert body["scimType"] == scim_type, body


def new_user(herald, ctx, user_name, **extra):
    body = {"schemas": [USER], "userName": user_name, "emails": [{"value": user_name, "type": "work", "primary": True}],
            "name": {"givenName": "Ada", "familyName": "Lovelace"}, **extra}
    r = scim(herald, "POST", "/Users", ctx, json=body)
    assert r.status_code == 201, r.text
    return r.json()


def test_scim2_tester_reports_no_failure(server):
    ctx = organization(server)
    client = httpx2.Client(base_url=ctx["token"]["scimBaseUrl"], headers={"Authorization": ctx["scim"]["Authorization"]}, timeout=20)
    results = check_server(SyncSCIMClient(client))
    failures = [r for r in results if r.status in (Status.ERROR, Status.CRITICAL)]
    assert not failures, "\n".join(f"{r.resource_type} {r.title}: {r.reason}" for r in failures)
    passed = [r for r in results if r.status == Status.SUCCESS]
    titles = {r.title for r in passed}
    # Discovery, every CRUD step and the three PATCH operations ran and passed for both resource types.
    for title in ["object_creation", "object_query", "object_replacement", "object_deletion", "check_add_attribute",
                  "check_remove_attribute", "check_replace_attribute", "random_url", "query_all_schemas"]:
        assert title in titles, (title, sorted(titles))
    assert {r.resource_type for r in passed if r.title == "object_replacement"} == {"User", "Group"}


def test_filters_pagination_patch_and_etags(server):
    ctx = organization(server)
    ada = new_user(server, ctx, "ada@example.com", externalId="okta-00u1")
    for i in range(4):
        new_user(server, ctx, f"user{i}@example.com")

    for query in ['userName eq "ADA@example.com"', 'username EQ "ada@example.com"', 'externalId eq "okta-00u1"',
                  'emails.value eq "ada@example.com"']:
        r = scim(server, "GET", "/Users?filter=" + urllib.parse.quote(query), ctx)
        assert r.status_code == 200, r.text
        assert r.headers["Content-Type"] == SCIM
        body = r.json()
        assert body["totalResults"] == 1 and body["Resources"][0]["id"] == ada["id"], (query, body)
    for query in ['userName co "ada"', 'title eq "x"', 'userName eq ada', "userName", 'userName eq "a" or userName eq "b"']:
        assert_scim_error(scim(server, "GET", "/Users?filter=" + urllib.parse.quote(query), ctx), 400, "invalidFilter")

    page = scim(server, "GET", "/Users?startIndex=2&count=2", ctx).json()
    assert (page["totalResults"], page["startIndex"], page["itemsPerPage"], len(page["Resources"])) == (5, 2, 2, 2)
    assert len(scim(server, "GET", "/Users?count=1000", ctx).json()["Resources"]) == 5
    assert scim(server, "GET", "/Users?count=-3", ctx).json()["Resources"] == []
    assert_scim_error(scim(server, "GET", "/Users?count=ten", ctx), 400, "invalidValue")
    search = scim(server, "POST", "/Users/.search", ctx, json={"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                                                               "filter": 'userName eq "ada@example.com"', "attributes": ["userName"]})
    assert search.status_code == 200, search.text
    assert search.json()["Resources"][0].keys() <= {"id", "schemas", "userName"}

    # ETags: the version is the ETag; If-Match with another version is 412; If-None-Match with the current one 304.
    r = scim(server, "GET", f"/Users/{ada['id']}", ctx)
    etag = r.headers["ETag"]
    assert etag == r.json()["meta"]["version"] and etag.startswith('W/"')
    assert scim(server, "GET", f"/Users/{ada['id']}", ctx, headers={"If-None-Match": etag}).status_code == 304
    ops = {"schemas": [PATCH], "Operations": [
        {"op": "replace", "path": "name.givenName", "value": "Augusta"},
        {"op": "add", "path": 'emails[type eq "home"].value', "value": "ada@home.example.com"},
        {"op": "Replace", "value": {"displayName": "Ada L.", "externalId": "okta-00u2"}},
    ]}
    r = scim(server, "PATCH", f"/Users/{ada['id']}", ctx, json=ops, headers={"If-Match": etag})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["name"] == {"givenName": "Augusta", "familyName": "Lovelace"}
    assert {e["value"] for e in body["emails"]} == {"ada@example.com", "ada@home.example.com"}
    assert body["displayName"] == "Ada L." and body["externalId"] == "okta-00u2"
    assert r.headers["ETag"] != etag
    assert_scim_error(scim(server, "PATCH", f"/Users/{ada['id']}", ctx, json=ops, headers={"If-Match": etag}), 412)
    assert_scim_error(scim(server, "DELETE", f"/Users/{ada['id']}", ctx, headers={"If-Match": etag}), 412)
    # Removing by a value filter, and errors RFC 7644 names.
    r = scim(server, "PATCH", f"/Users/{ada['id']}", ctx, json={"schemas": [PATCH], "Operations": [
        {"op": "remove", "path": 'emails[value eq "ada@home.example.com"]'}, {"op": "remove", "path": "name.givenName"}]})
    assert r.status_code == 200, r.text
    assert [e["value"] for e in r.json()["emails"]] == ["ada@example.com"] and r.json()["name"] == {"familyName": "Lovelace"}
    assert_scim_error(scim(server, "PATCH", f"/Users/{ada['id']}", ctx, json={"schemas": [PATCH], "Operations": [{"op": "remove"}]}),
                      400, "noTarget")
    assert_scim_error(scim(server, "PATCH", f"/Users/{ada['id']}", ctx, json={"schemas": [PATCH], "Operations": [
        {"op": "replace", "path": "id", "value": "x"}]}), 400, "mutability")
    assert_scim_error(scim(server, "PATCH", f"/Users/{ada['id']}", ctx, json={"schemas": [PATCH], "Operations": [
        {"op": "replace", "path": "name[givenName eq \"x\"]", "value": "x"}]}), 400, "invalidPath")
    assert_scim_error(scim(server, "POST", "/Users", ctx, data="{nope"), 400, "invalidSyntax")
    assert_scim_error(scim(server, "POST", "/Users", ctx, json={"schemas": [USER], "userName": "ADA@EXAMPLE.COM"}), 409, "uniqueness")
    assert_scim_error(scim(server, "POST", "/Users", ctx, json={"schemas": [USER], "userName": "no-email"}), 400, "invalidValue")
    assert_scim_error(scim(server, "POST", "/Users", ctx, json={"schemas": [USER], "emails": [{"value": "x@example.com"}]}),
                      400, "invalidValue")
    assert_scim_error(scim(server, "POST", "/Users", ctx, data="[" * 300_000), 413)
    assert_scim_error(scim(server, "GET", "/Users/not-a-uuid", ctx), 404)
    assert_scim_error(scim(server, "GET", "/Nothing", ctx), 404)
    assert_scim_error(scim(server, "DELETE", "/ServiceProviderConfig", ctx), 405)


def test_deprovisioning_ends_sessions_and_groups_grant_roles(server):
    ctx = organization(server)
    person = server.signup(email="grace@example.com")
    grace = new_user(server, ctx, "Grace@Example.com")
    assert grace["id"] == person["id"], "the existing account with that email is provisioned"
    me = requests.get(server.url(f"/organizations/{ctx['org']}"), headers=server.auth(person["token"]))
    assert me.status_code == 200 and me.json()["role"] == "viewer"

    group = scim(server, "POST", "/Groups", ctx, json={"displayName": "Herald Admins", "members": [{"value": grace["id"]}]})
    assert group.status_code == 201, group.text
    members = requests.get(server.url(f"/organizations/{ctx['org']}/members"), headers=ctx["auth"]).json()["items"]
    assert {m["userId"]: m["role"] for m in members}[grace["id"]] == "admin"
    assert scim(server, "GET", f"/Users/{grace['id']}", ctx).json()["groups"][0]["display"] == "Herald Admins"

    # Okta deactivates with a PATCH without a path; the session's access token and refresh token stop working.
    r = scim(server, "PATCH", f"/Users/{grace['id']}", ctx, json={"schemas": [PATCH], "Operations": [
        {"op": "replace", "value": {"active": False}}]})
    assert r.status_code == 200 and r.json()["active"] is False, r.text
    assert requests.get(server.url("/users/me"), headers=server.auth(person["token"])).status_code == 401
    assert requests.post(server.url("/auth/refresh"), json={"refreshToken": person["refresh"]}).status_code == 401
    members = requests.get(server.url(f"/organizations/{ctx['org']}/members"), headers=ctx["auth"]).json()["items"]
    assert grace["id"] not in {m["userId"] for m in members}

    # Reactivated (Entra sends the boolean as a string), the membership returns with the group's role; DELETE ends it.
    r = scim(server, "PATCH", f"/Users/{grace['id']}", ctx, json={"schemas": [PATCH], "Operations": [
        {"op": "Replace", "path": "active", "value": "True"}]})
    assert r.status_code == 200 and r.json()["active"] is True, r.text
    members = requests.get(server.url(f"/organizations/{ctx['org']}/members"), headers=ctx["auth"]).json()["items"]
    assert {m["userId"]: m["role"] for m in members}[grace["id"]] == "admin"
    assert scim(server, "DELETE", f"/Users/{grace['id']}", ctx).status_code == 204
    assert_scim_error(scim(server, "GET", f"/Users/{grace['id']}", ctx), 404)
    assert scim(server, "GET", f"/Groups/{group.json()['id']}", ctx).json().get("members") is None

    audit = requests.get(server.url(f"/organizations/{ctx['org']}/audit-logs?limit=200"), headers=ctx["auth"])
    actions = {item["action"] for item in audit.json()["items"]}
    assert {"scim.token.created", "scim.user.created", "scim.user.deactivated", "scim.user.reactivated", "scim.user.deleted",
            "scim.group.created", "member.joined", "member.role_changed", "member.removed"} <= actions, actions
    assert "grace@example.com" not in audit.text.lower()


def test_tokens_and_tenant_isolation(server):
    a = organization(server, "A")
    b = organization(server, "B")
    user = new_user(server, a, "only-a@example.com")
    group = scim(server, "POST", "/Groups", a, json={"displayName": "Viewers"}).json()

    assert scim(server, "GET", "/Users", b).json()["totalResults"] == 0
    assert scim(server, "GET", "/Groups", b).json()["totalResults"] == 0
    assert scim(server, "GET", "/Users?filter=" + urllib.parse.quote('userName eq "only-a@example.com"'), b).json()["totalResults"] == 0
    for method, path in [("GET", f"/Users/{user['id']}"), ("DELETE", f"/Users/{user['id']}"), ("GET", f"/Groups/{group['id']}"),
                         ("DELETE", f"/Groups/{group['id']}")]:
        assert_scim_error(scim(server, method, path, b), 404)
    assert_scim_error(scim(server, "PATCH", f"/Users/{user['id']}", b, json={"schemas": [PATCH], "Operations": [
        {"op": "replace", "path": "active", "value": False}]}), 404)
    # B cannot pull A's user into one of its groups.
    assert_scim_error(scim(server, "POST", "/Groups", b, json={"displayName": "Admins", "members": [{"value": user["id"]}]}), 400,
                      "invalidValue")
    assert scim(server, "GET", f"/Users/{user['id']}", a).json().get("active") is not False
    members = requests.get(server.url(f"/organizations/{a['org']}/members"), headers=a["auth"]).json()["items"]
    assert user["id"] in {m["userId"] for m in members}

    # Credentials: none, unknown, a user's access token, a site key: all 401 in SCIM's error shape.
    assert_scim_error(scim(server, "GET", "/Users", None), 401)
    for bearer in ["scim_" + "x" * 43, a["owner"]["token"], "sk_nope"]:
        assert_scim_error(scim(server, "GET", "/Users", None, headers={"Authorization": f"Bearer {bearer}"}), 401)

    # Token management: admins only, no secrets listed, deletion takes effect at once, audited.
    tokens = requests.get(server.url(f"/organizations/{a['org']}/scim-tokens"), headers=a["auth"]).json()["items"]
    assert len(tokens) == 1 and "token" not in tokens[0] and tokens[0]["lastUsedAt"]
    assert requests.get(server.url(f"/organizations/{a['org']}/scim-tokens"), headers=b["auth"]).status_code == 404
    assert requests.delete(server.url(f"/organizations/{a['org']}/scim-tokens/{tokens[0]['id']}"), headers=b["auth"]).status_code == 404
    r = requests.post(server.url(f"/organizations/{a['org']}/scim-tokens"), json={"name": ""}, headers=a["auth"])
    assert r.status_code == 422 and r.headers["Content-Type"] == "application/problem+json"
    assert requests.delete(server.url(f"/organizations/{a['org']}/scim-tokens/{tokens[0]['id']}"), headers=a["auth"]).status_code == 204
    assert_scim_error(scim(server, "GET", "/Users", a), 401)
    assert scim(server, "GET", "/Users", b).status_code == 200
