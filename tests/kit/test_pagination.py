from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.kit.outbox import EventData, event_type, record_event
from tests.factories import Partner


def _seeded_type(name: str) -> type[EventData]:
    @event_type(name, "Seeded by the pagination tests.")
    class Seeded(EventData):
        n: int

    return Seeded


SEEDED = {name: _seeded_type(name) for name in ("test.seeded", "test.a", "test.b", "test.c")}


async def _seed(session: AsyncSession, partner: Partner, count: int, type: str) -> None:
    for n in range(count):
        record_event(session, program_id=partner.program_id, object_id=None, data=SEEDED[type](n=n))
    await session.commit()


async def test_pages_through_250_events(
    client: AsyncClient, partner: Partner, session: AsyncSession
) -> None:
    await _seed(session, partner, 250, "test.seeded")
    seen: list[str] = []
    cursor = None
    pages = []
    while True:
        params = {"type": "test.seeded", "limit": 100}
        if cursor:
            params["cursor"] = cursor
        response = await client.get("/v1/events", params=params, headers=partner.headers)
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append(len(body["data"]))
        seen.extend(event["id"] for event in body["data"])
        if not body["meta"]["has_more"]:
            assert body["meta"]["next_cursor"] is None
            break
        cursor = body["meta"]["next_cursor"]
    assert pages == [100, 100, 50]
    assert len(set(seen)) == 250
    assert seen == sorted(seen, reverse=True), "newest first"


async def test_default_page_is_20_and_type_filters(
    client: AsyncClient, partner: Partner, session: AsyncSession
) -> None:
    await _seed(session, partner, 25, "test.a")
    await _seed(session, partner, 3, "test.b")
    body = (await client.get("/v1/events", headers=partner.headers)).json()
    assert len(body["data"]) == 20
    assert body["meta"]["has_more"] is True
    only_b = (await client.get("/v1/events?type=test.b", headers=partner.headers)).json()
    assert [e["type"] for e in only_b["data"]] == ["test.b"] * 3
    assert only_b["meta"] == {"next_cursor": None, "has_more": False}


async def test_rows_added_while_paging_do_not_shift_pages(
    client: AsyncClient, partner: Partner, session: AsyncSession
) -> None:
    await _seed(session, partner, 10, "test.c")
    first = (await client.get("/v1/events?type=test.c&limit=5", headers=partner.headers)).json()
    await _seed(session, partner, 3, "test.c")
    second = (
        await client.get(
            f"/v1/events?type=test.c&limit=5&cursor={first['meta']['next_cursor']}",
            headers=partner.headers,
        )
    ).json()
    first_ids = {e["id"] for e in first["data"]}
    assert len(second["data"]) == 5
    assert not first_ids & {e["id"] for e in second["data"]}
    assert second["meta"]["has_more"] is False


async def test_bad_cursor_and_limits_are_validation_errors(
    client: AsyncClient, partner: Partner
) -> None:
    for query in ("cursor=nonsense", "cursor=eyJpZCI6ImtleV8xIn0", "limit=0", "limit=abc"):
        response = await client.get(f"/v1/events?{query}", headers=partner.headers)
        assert response.status_code == 422, query
        assert response.json()["code"] == "VALIDATION_ERROR"
