"""Per-user over organisation over default; folder drop-in without a restart."""

from __future__ import annotations

import shutil
from pathlib import Path

from content_provider.config.settings import Organisation, UserImages
from content_provider.fixtures.generate import auth_jpeg, card_jpeg
from content_provider.fixtures.orgs import parse_members

from .helpers import DOC_CARD, MakeClient, get_content


async def resolved(client: object, content_id: str) -> tuple[int, str | None, list[str]]:
    response = await get_content(client, content_id)  # type: ignore[arg-type]
    keys = [e["key"] for e in (await response.json()).get("data", [])] if response.status == 200 else []
    return response.status, response.headers.get("X-Content-Provider-Resolved"), keys


async def test_user_over_organisation_over_default(make_client: MakeClient) -> None:
    client = await make_client()
    # alice is listed in acme's members.txt but has her own front: hers wins, with no back
    # (sides are never mixed across levels).
    assert await resolved(client, "PROV:alice") == (200, "user alice", ["front"])
    # bob is an exact member of acme; acme-42 matches the pattern acme-*.
    assert await resolved(client, "PROV:bob") == (200, "organisation acme", ["front", "back"])
    assert await resolved(client, "PROV:acme-42") == (200, "organisation acme", ["front", "back"])
    # alice has no own auth image, so her organisation's answers.
    assert await resolved(client, "AUTH:alice") == (200, "organisation acme", ["auth_image"])
    # globex: members.txt has a regex, config adds nothing here.
    assert await resolved(client, "PROV:globex-7") == (200, "organisation globex", ["front"])
    assert await resolved(client, "PROV:globex-x") == (200, "default", ["front"])
    assert await resolved(client, "PROV:stranger") == (200, "default", ["front"])


async def test_default_off_gives_404(make_client: MakeClient) -> None:
    client = await make_client(default_enabled=False)
    response = await get_content(client, "PROV:stranger")
    assert response.status == 404
    body = await response.json()
    assert body["error"] == "unknown_content_id"
    assert "card" in body["message"]
    assert (await get_content(client, "PROV:bob")).status == 200


async def test_config_members_patterns_and_user_mapping(make_client: MakeClient, fixture_root: Path) -> None:
    orgs = (
        Organisation("globex", members=("erin",), patterns=("GLX-*", "re:[0-9]{4}-glx")),
        Organisation("initech", members=("bob",), images=UserImages(front=fixture_root / "default/front.jpg")),
    )
    users = {"employee/0001": UserImages(front=fixture_root / "orgs/acme/front.jpg")}
    client = await make_client(organisations=orgs, users=users)
    assert await resolved(client, "PROV:erin") == (200, "organisation globex", ["front"])
    assert await resolved(client, "PROV:GLX-9") == (200, "organisation globex", ["front"])
    assert await resolved(client, "PROV:1234-glx") == (200, "organisation globex", ["front"])
    assert await resolved(client, "PROV:12345-glx") == (200, "default", ["front"])
    # Config organisations come first, so bob is initech's (configured images) before acme's.
    assert await resolved(client, "PROV:bob") == (200, "organisation initech", ["front"])
    assert await resolved(client, "PROV:employee/0001") == (200, "user employee/0001", ["front"])


async def test_exact_member_beats_an_earlier_pattern(make_client: MakeClient) -> None:
    orgs = (Organisation("globex", patterns=("*",)),)
    client = await make_client(organisations=orgs)
    assert (await resolved(client, "PROV:bob"))[1] == "organisation acme"
    assert (await resolved(client, "PROV:anyone"))[1] == "organisation globex"


async def test_user_folder_dropped_in_is_served_without_restart(make_client: MakeClient, fixture_root: Path) -> None:
    client = await make_client()
    assert (await resolved(client, "PROV:newcomer"))[1] == "default"
    folder = fixture_root / "users" / "newcomer"
    folder.mkdir()
    (folder / "front.jpg").write_bytes(card_jpeg("newcomer"))
    (folder / "back.jpg").write_bytes(card_jpeg("newcomer", "back"))
    assert await resolved(client, "PROV:newcomer") == (200, "user newcomer", ["front", "back"])
    (folder / "auth.jpeg").write_bytes(auth_jpeg("newcomer"))
    assert await resolved(client, "AUTH:newcomer") == (200, "user newcomer", ["auth_image"])
    shutil.rmtree(folder)
    assert (await resolved(client, "PROV:newcomer"))[1] == "default"


async def test_organisation_folder_dropped_in_is_served_without_restart(
    make_client: MakeClient, fixture_root: Path
) -> None:
    client = await make_client()
    assert (await resolved(client, "PROV:hooli-1"))[1] == "default"
    folder = fixture_root / "orgs" / "hooli"
    folder.mkdir()
    (folder / "front.jpg").write_bytes(card_jpeg("Hooli"))
    (folder / "members.txt").write_text("# Hooli staff\nhooli-*\n")
    assert (await resolved(client, "PROV:hooli-1"))[1] == "organisation hooli"
    (folder / "members.txt").write_text("someone-else\n")
    assert (await resolved(client, "PROV:hooli-1"))[1] == "default"
    assert (await resolved(client, "PROV:someone-else"))[1] == "organisation hooli"


async def test_changed_image_is_served_without_restart(make_client: MakeClient, fixture_root: Path) -> None:
    client = await make_client()
    before = (await (await get_content(client, DOC_CARD)).json())["data"][0]["data"]
    target = fixture_root / "users" / DOC_CARD.removeprefix("PROV:") / "front.jpg"
    target.write_bytes(card_jpeg("someone new"))
    after = (await (await get_content(client, DOC_CARD)).json())["data"][0]["data"]
    assert before != after


def test_members_file_format() -> None:
    members, patterns = parse_members("# staff\nalice  # lead\n\nacme-*\nre:x[0-9]+\n  bob\n")
    assert members == ("alice", "bob")
    assert patterns == ("acme-*", "re:x[0-9]+")
