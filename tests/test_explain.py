"""Why an id got its images: each resolution step and the near misses, wherever they are shown."""

from __future__ import annotations

import asyncio
import logging
import shutil
from pathlib import Path

import pytest

from content_provider.cli import main
from content_provider.config.settings import Organisation
from content_provider.fixtures.explain import EXPLAINER, edits_within

from .helpers import MakeClient, faults, get_content


def user_folder(root: Path, name: str, side: str = "front") -> None:
    (root / "users" / name).mkdir()
    shutil.copy(root / "users" / "alice" / "front.jpg", root / "users" / name / f"{side}.jpg")


async def explanation(client: object, content_id: str) -> tuple[int, dict[str, object]]:
    response = await client.get("/__admin/fixtures/resolve", params={"contentId": content_id})  # type: ignore[attr-defined]
    body = await response.json()
    return response.status, body["explanation"]


async def test_a_folder_spelt_otherwise_is_a_near_miss(make_client: MakeClient, fixture_root: Path) -> None:
    user_folder(fixture_root, "jane_doe")
    user_folder(fixture_root, "John.Smith")
    client = await make_client()
    status, why = await explanation(client, "PROV:jane.doe")
    assert status == 200
    assert why["answeredBy"] == "default"
    assert why["nearMisses"] == [{"target": "users/jane_doe/", "why": "differs only by . _ -"}]
    steps = why["steps"]
    assert isinstance(steps, list)
    assert [(step["level"], step["answered"]) for step in steps] == [
        ("config user", False),
        ("user folder", False),
        ("organisation", False),
        ("organisation", False),
        ("default", True),
    ]
    assert steps[1]["why"] == "no such folder"
    _, why = await explanation(client, "PROV:john_smith")
    assert why["nearMisses"] == [{"target": "users/John.Smith/", "why": "differs only by case and . _ -"}]
    _, why = await explanation(client, "PROV:jane_dou")  # a typo: found by the full scan
    assert why["nearMisses"] == [{"target": "users/jane_doe/", "why": "1 edit(s) apart"}]


async def test_an_image_for_the_other_use_case_and_a_member_spelt_otherwise(make_client: MakeClient) -> None:
    client = await make_client()
    _, why = await explanation(client, "AUTH:alice")  # users/alice has a front only; acme answers AUTH
    assert why["answeredBy"] == "organisation acme"
    steps = why["steps"]
    assert isinstance(steps, list)
    assert steps[1]["why"] == "no auth image (it has: front)"
    assert steps[2] == {
        "level": "organisation",
        "target": "orgs/acme/",
        "answered": True,
        "why": "an exact member; has auth",
    }
    assert {"target": "PROV:alice", "why": "user alice has front but no auth: an image for the other use case"} in (
        why["nearMisses"]  # type: ignore[operator]
    )
    _, why = await explanation(client, "PROV:Bob")
    assert {"target": "orgs/acme/ member 'bob'", "why": "differs only by case"} in why["nearMisses"]  # type: ignore[operator]


async def test_the_steps_are_the_order_served_exact_members_before_patterns(make_client: MakeClient) -> None:
    """The explanation is made by the resolution itself: an exact member of a later organisation
    answers before an earlier one's pattern, and the steps say so (they do not blame the earlier one)."""
    client = await make_client(organisations=(Organisation("globex", patterns=("*",)),))
    for content_id, answered in (("PROV:bob", "organisation acme"), ("PROV:anyone", "organisation globex")):
        response = await get_content(client, content_id)
        assert response.headers["X-Content-Provider-Resolved"] == answered
        _, why = await explanation(client, content_id)
        assert why["answeredBy"] == answered
        steps = why["steps"]
        assert isinstance(steps, list)
        assert [step for step in steps if step["answered"]] == [steps[-1]]
        assert steps[-1]["target"] == f"orgs/{answered.split()[-1]}/"
    _, why = await explanation(client, "PROV:bob")
    assert [(step["target"], step["why"]) for step in why["steps"][2:]] == [  # type: ignore[index]
        ("orgs/acme/", "an exact member; has front")
    ]
    _, why = await explanation(client, "PROV:anyone")
    assert [(step["target"], step["why"]) for step in why["steps"][2:]] == [  # type: ignore[index]
        ("orgs/globex/", "a member by pattern '*'; has front")
    ]


async def test_the_404_names_the_best_near_miss(make_client: MakeClient, fixture_root: Path) -> None:
    user_folder(fixture_root, "jane_doe")
    client = await make_client(default_enabled=False)
    response = await get_content(client, "PROV:Jane.Doe")
    assert response.status == 404
    body = await response.json()
    assert body == {
        "error": "unknown_content_id",
        "message": "no card image for this content id; near miss: users/jane_doe/ (differs only by case and . _ -)",
    }
    response = await get_content(client, "PROV:nobody-like-that")
    assert (await response.json())["message"] == "no card image for this content id"
    status, why = await explanation(client, "PROV:nobody-like-that")
    assert status == 404
    assert why["answeredBy"] is None
    assert why["steps"][-1] == {  # type: ignore[index]
        "level": "default",
        "target": "default/",
        "answered": False,
        "why": "off (fixtures.default: false)",
    }


async def test_an_id_falling_through_to_the_default_is_logged_once_with_why(
    make_client: MakeClient, fixture_root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    user_folder(fixture_root, "jane_doe")
    client = await make_client()
    with caplog.at_level(logging.INFO, logger="content_provider.fixtures"):
        for _ in range(3):
            assert (await get_content(client, "PROV:jane.doe")).status == 200
        for _ in range(100):
            if "got the default" in caplog.text:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)
    lines = [r.getMessage() for r in caplog.records if "got the default" in r.getMessage()]
    assert lines == [
        "PROV:jane.doe got the default card: nothing else answers it; near miss: users/jane_doe/ "
        "(differs only by . _ -) (content-provider explain PROV:jane.doe)"
    ]


async def test_an_id_that_resolves_costs_no_explanation(make_client: MakeClient) -> None:
    client = await make_client()
    for content_id in ("PROV:alice", "PROV:bob", "AUTH:4018e11f-1209-45f5-ade7-e59004e10745"):
        assert (await get_content(client, content_id)).status == 200
    explainer = client.app[EXPLAINER]
    assert not explainer._hints
    assert not explainer._logged


def test_explain_on_the_command_line(
    tmp_path: Path, fixture_root: Path, signing_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    user_folder(fixture_root, "jane_doe")
    config = tmp_path / "config.yaml"
    config.write_text(f"fixtures:\n  root: {fixture_root}\nsigning:\n  directory: {signing_dir}\n")
    assert main(["explain", "PROV:jane.doe", "--config", str(config)], {}) == 0
    out = capsys.readouterr().out
    assert "  answered default       default/: has front" in out
    assert out.rstrip().endswith("near misses:\n  users/jane_doe/ (differs only by . _ -)")
    config.write_text(f"fixtures:\n  root: {fixture_root}\n  default: false\nsigning:\n  directory: {signing_dir}\n")
    assert main(["explain", "PROV:nobody", "--config", str(config)], {}) == 1
    assert "-> nothing answers (404)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("a", "b", "distance"),
    [("jane", "jane", 0), ("jane", "jan", 1), ("jane", "jnae", 2), ("jane", "john", None), ("a", "abcd", None)],
)
def test_edit_distance_within_two(a: str, b: str, distance: int | None) -> None:
    assert edits_within(a, b) == distance


def test_the_docs_example_is_what_explain_prints(
    tmp_path: Path, fixture_root: Path, signing_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from .docs import ROOT, blocks

    [shown] = [b.text for b in blocks("text", (ROOT / "docs" / "fixtures.md",)) if b.text.startswith("PROV:jane.doe:")]
    user_folder(fixture_root, "jane_doe")
    config = tmp_path / "config.yaml"
    config.write_text(f"fixtures:\n  root: {fixture_root}\nsigning:\n  directory: {signing_dir}\n")
    assert main(["explain", "PROV:jane.doe", "--config", str(config)], {}) == 0
    assert capsys.readouterr().out == shown


async def test_a_bare_id_that_would_answer_with_a_prefix(make_client: MakeClient) -> None:
    client = await make_client(bare_ids="off")
    response = await get_content(client, "alice")
    assert response.status == 404
    assert (await response.json())["message"] == (
        "bare content ids are off (fixtures.bare_ids: off); use PROV: or AUTH:; "
        "near miss: PROV:alice (would answer from user alice)"
    )
    status, why = await explanation(client, "alice")
    assert status == 404
    assert why["nearMisses"] == [
        {"target": "PROV:alice", "why": "would answer from user alice"},
        {"target": "AUTH:alice", "why": "would answer from organisation acme"},
    ]


async def test_resolve_checks_the_id_as_the_server_does(make_client: MakeClient) -> None:
    client = await make_client(faults=faults(content_id_directives=True))
    for bad in (" ", "PROV:" + "x" * 300, "PROV:a;fault=nonsense"):
        response = await client.get("/__admin/fixtures/resolve", params={"contentId": bad})
        assert response.status == 400, bad
        assert (await response.json())["error"] == "invalid_query"
    response = await client.get("/__admin/fixtures/resolve", params={"contentId": "PROV:alice;fault=503"})
    resolved = await response.json()
    assert resolved["subject"] == "alice"  # the directive is cut off, as the server does
