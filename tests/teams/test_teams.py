"""Teams: admins create them and name supervisors; supervisors manage their members and read
their members' audit trail (and only theirs)."""

from __future__ import annotations

from tests.helpers import auth, create_user
from tests.web.client import sign_in


async def test_teams_membership_and_supervisors_audit_view(live):
    _, admin = await create_user(live, email="admin@example.com", role="admin")
    sup_id, sup = await create_user(
        live, email="sup@example.com", role="supervisor", scopes=("read", "write")
    )
    ana_id, ana = await create_user(
        live, email="ana@example.com", role="agent", scopes=("read", "write")
    )
    bo_id, bo = await create_user(
        live, email="bo@example.com", role="agent", scopes=("read", "write")
    )
    r = await live.client.post(
        "/api/v1/teams",
        json={"name": "Returns", "routing_strategy": "round_robin"},
        headers=auth(admin),
    )
    assert r.status_code == 201, r.text
    team = r.json()["id"]
    other = (
        await live.client.post("/api/v1/teams", json={"name": "Billing"}, headers=auth(admin))
    ).json()["id"]
    dup = await live.client.post("/api/v1/teams", json={"name": "Returns"}, headers=auth(admin))
    assert dup.status_code == 409
    # Only admins create teams and name supervisors.
    assert (
        await live.client.post("/api/v1/teams", json={"name": "x"}, headers=auth(sup))
    ).status_code == 403
    r = await live.client.put(
        f"/api/v1/teams/{team}/members/{sup_id}", json={"role": "supervisor"}, headers=auth(admin)
    )
    assert r.status_code == 200
    bad = await live.client.put(
        f"/api/v1/teams/{team}/members/{ana_id}", json={"role": "supervisor"}, headers=auth(admin)
    )
    assert bad.status_code == 422  # an agent cannot supervise
    # The supervisor adds an agent to their team, not to another team, and names no supervisor.
    r = await live.client.put(
        f"/api/v1/teams/{team}/members/{ana_id}", json={"role": "agent"}, headers=auth(sup)
    )
    assert r.status_code == 200
    assert {m["user_id"]: m["role"] for m in r.json()["members"]} == {
        sup_id: "supervisor",
        ana_id: "agent",
    }
    r = await live.client.put(
        f"/api/v1/teams/{other}/members/{bo_id}", json={"role": "agent"}, headers=auth(sup)
    )
    assert r.status_code == 404  # not one of theirs
    listed = (await live.client.get("/api/v1/teams", headers=auth(sup))).json()["items"]
    assert [t["id"] for t in listed] == [team]
    assert (await live.client.get("/api/v1/teams", headers=auth(ana))).status_code == 403
    # Ana and Bo each do something audited.
    for token in (ana, bo):
        r = await live.client.put(
            "/api/v1/routing/me", json={"availability": "away"}, headers=auth(token)
        )
        assert r.status_code == 200
    seen = (await live.client.get("/api/v1/audit-events?action=agent.", headers=auth(sup))).json()
    assert {e["target_id"] for e in seen["items"]} == {str(ana_id)}
    everything = (
        await live.client.get("/api/v1/audit-events?action=agent.", headers=auth(admin))
    ).json()
    assert {e["target_id"] for e in everything["items"]} == {str(ana_id), str(bo_id)}
    csv = await live.client.get("/api/v1/audit-events/export?action=agent.", headers=auth(sup))
    assert csv.status_code == 200 and f",{ana_id}," in csv.text and f",{bo_id}," not in csv.text
    assert (await live.client.get("/api/v1/audit-events", headers=auth(ana))).status_code == 403
    # The same reach on the audit page (a team's supervisor; the chain check stays with admins).
    sup_web = await sign_in(live, "sup@example.com")
    page = await sup_web.get("/admin/audit?action=agent.")
    assert page.status_code == 200 and "teams you supervise" in page.text
    assert "Verify the chain" not in page.text and 'href="/admin/audit"' in page.text
    web_csv = await sup_web.get("/admin/audit.csv?action=agent.")
    assert f",{ana_id}," in web_csv.text and f",{bo_id}," not in web_csv.text
    ana_web = await sign_in(live, "ana@example.com")
    assert (await ana_web.get("/admin/audit")).status_code == 403
    for client in (sup_web, ana_web):
        await client.aclose()
    assert (
        await live.client.get("/api/v1/audit-events/verify", headers=auth(sup))
    ).status_code == 403
    # Removing a member; deleting a team (admins).
    r = await live.client.delete(f"/api/v1/teams/{team}/members/{ana_id}", headers=auth(sup))
    assert r.status_code == 200 and [m["user_id"] for m in r.json()["members"]] == [sup_id]
    assert (
        await live.client.delete(f"/api/v1/teams/{other}", headers=auth(admin))
    ).status_code == 204
