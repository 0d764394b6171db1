"""Routing rules end to end: API, keywords in four languages, teams, language skills,
match counters."""

from __future__ import annotations

from tests.helpers import auth
from tests.routing.util import assignee, config, set_online, world, write_in


async def _team(live, w, name, *members):
    r = await live.client.post("/api/v1/teams", json={"name": name}, headers=auth(w.admin))
    assert r.status_code == 201, r.text
    team = r.json()["id"]
    for member in members:
        r = await live.client.put(
            f"/api/v1/teams/{team}/members/{w.agents[member][0]}",
            json={"role": "agent"},
            headers=auth(w.admin),
        )
        assert r.status_code == 200, r.text
    return team


async def _rule(live, w, name, conditions, actions):
    r = await live.client.post(
        "/api/v1/routing/rules",
        json={"name": name, "conditions": conditions, "actions": actions},
        headers=auth(w.admin),
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]


async def test_keyword_rules_route_to_teams_in_four_languages(live):
    w = await world(live, ("ana", "bo", "cy"))
    ana, bo = w.agents["ana"][0], w.agents["bo"][0]
    returns = await _team(live, w, "Returns", "ana")
    billing = await _team(live, w, "Billing", "bo")
    r1 = await _rule(
        live,
        w,
        "returns",
        {"keywords": ["devolução", "return", "वापसी", "คืนสินค้า"]},
        {"team_id": returns, "labels": ["returns"]},
    )
    r2 = await _rule(
        live,
        w,
        "billing",
        {"keywords": ["boleto", "invoice", "बिल", "ใบแจ้งหนี้"]},
        {"team_id": billing, "priority": "high"},
    )
    r = await live.client.put("/api/v1/routing/rules/99", json={}, headers=auth(w.admin))
    assert r.status_code == 405  # rules are changed with PATCH
    bad = await live.client.post(
        "/api/v1/routing/rules",
        json={"name": "bad", "conditions": {"regex": "(unclosed"}},
        headers=auth(w.admin),
    )
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_regex"
    await set_online(live, w, "ana", "bo", "cy")
    texts = {
        "5541900000001": ("Quero fazer uma DEVOLUCAO", ana),
        "5541900000002": ("I need to return this", ana),
        "5541900000003": ("मुझे वापसी चाहिए", ana),
        "5541900000004": ("ขอคืนสินค้าได้ไหมคะ", ana),
        "5541900000005": ("Segunda via do boleto", bo),
        "5541900000006": ("Where is my invoice?", bo),
        "5541900000007": ("मेरा बिल गलत है", bo),
        "5541900000008": ("ขอใบแจ้งหนี้ด้วยค่ะ", bo),
    }
    for phone, (text, expected) in texts.items():
        cid = await write_in(live, w, phone, text)
        assert await assignee(live, cid) == expected, text
        facts = (
            await live.client.get(f"/api/v1/routing/conversations/{cid}", headers=auth(w.admin))
        ).json()
        assert facts["team_id"] == (returns if expected == ana else billing)
    # "returned" is not "return"; nobody's rule: anyone may take it (the rotation: cy).
    cid = await write_in(live, w, "5541900000009", "It was returned to sender")
    facts = (
        await live.client.get(f"/api/v1/routing/conversations/{cid}", headers=auth(w.admin))
    ).json()
    assert facts["team_id"] is None and facts["matched_rules"] == []
    rules = (await live.client.get("/api/v1/routing/rules", headers=auth(w.admin))).json()
    counts = {r["id"]: r["match_count"] for r in rules["items"]}
    assert counts == {r1: 4, r2: 4}
    conv = (await live.client.get(f"/api/v1/conversations/{cid - 1}", headers=auth(w.admin))).json()
    assert conv["priority"] == "high"
    tested = await live.client.post(
        "/api/v1/routing/rules/test", json={"text": "preciso do boleto"}, headers=auth(w.admin)
    )
    assert tested.json()["matched"] == [r2] and tested.json()["team_id"] == billing


async def test_language_skills_and_language_rules(live):
    w = await world(live, ("ana", "bo"))
    ana, bo = w.agents["ana"][0], w.agents["bo"][0]
    await config(live, w, languages=["en", "pt", "hi", "th"])
    r = await live.client.patch(
        f"/api/v1/routing/agents/{bo}", json={"languages": ["th", "en"]}, headers=auth(w.admin)
    )
    assert r.status_code == 200 and r.json()["languages"] == ["en", "th"]
    bad = await live.client.patch(
        f"/api/v1/routing/agents/{bo}", json={"languages": ["xx"]}, headers=auth(w.admin)
    )
    assert bad.status_code == 422
    rule = await _rule(live, w, "thai label", {"languages": ["th"]}, {"labels": ["thai"]})
    await set_online(live, w, "ana", "bo")
    # bo speaks Thai: Thai conversations go to bo even when bo carries more.
    thai = [
        await write_in(live, w, f"554191111100{i}", "สวัสดีค่ะ ขอสอบถามเรื่องการจัดส่งหน่อยค่ะ")
        for i in range(2)
    ]
    assert [await assignee(live, c) for c in thai] == [bo, bo]
    pt = await write_in(live, w, "5541911111110", "Olá, gostaria de saber do meu pedido")
    assert await assignee(live, pt) == ana
    facts = (
        await live.client.get(f"/api/v1/routing/conversations/{thai[0]}", headers=auth(w.admin))
    ).json()
    assert facts["language"] == "th" and facts["matched_rules"] == [rule]
    conv = (await live.client.get(f"/api/v1/conversations/{thai[0]}", headers=auth(w.admin))).json()
    assert conv["labels"] == ["thai"]
