"""The one fixture-write path (content_provider/fixtures/write.py): what may be named, what a write
and a delete leave in the folder, and the admin answers and the recorder built on them."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from content_provider.core.b64 import b64url_decode
from content_provider.core.contract import ContentId, UseCase
from content_provider.fixtures.generate import auth_jpeg, card_jpeg
from content_provider.fixtures.write import (
    BadFixturePath,
    BadImage,
    FixtureImage,
    delete_image,
    is_free_for_recording,
    publish_version,
    published_version,
    stage_version,
    write_image,
)
from content_provider.upstream.client import Fetched
from content_provider.upstream.record import FRAGMENT, Recorder

from .helpers import MakeClient, get_content, png_bytes

TOLERANCE = 0.01
RECORDED = b"eyJhbGciOiJSUzI1NiIsImtpZCI6InZlbmRvciJ9.cmVjb3JkZWQ.c2ln"  # a compact JWS, as recorded


@pytest.mark.parametrize(
    ("path", "image"),
    [
        ("users/alice/front.jpg", FixtureImage("users", "alice", "front")),
        (b"orgs/acme/auth.jpg", FixtureImage("orgs", "acme", "auth")),
        ("default/back.jpg", FixtureImage("default", None, "back")),
        ("users/a.b@c+d=e-f_g/back.jpg", FixtureImage("users", "a.b@c+d=e-f_g", "back")),
    ],
)
def test_a_canonical_path_names_its_image_and_back(path: str | bytes, image: FixtureImage) -> None:
    assert FixtureImage.parse(path) == image
    assert image.path == (path.decode() if isinstance(path, bytes) else path)


@pytest.mark.parametrize(
    "path",
    [
        "../../../x.txt",
        "/etc/passwd",
        "/users/alice/front.jpg",
        "users/a/../../x/front.jpg",
        "users/../front.jpg",
        "users/alice/../bob/front.jpg",
        "users/./front.jpg",
        "users/alice/./front.jpg",
        "users//front.jpg",
        "users/alice//front.jpg",
        "users/alice/front.jpg/",
        "users/alice/sub/front.jpg",
        "users/alice",
        "users/alice/",
        "users/front.jpg",
        "default/x/front.jpg",
        "default/front",
        "default/",
        "",
        "users/alice/front.jpeg",
        "users/alice/back.jws",
        "users/alice/front.JPG",
        "users/alice/members.txt",
        "users/alice/side.jpg",
        "users/alice/.jpg",
        "users/alice/front.jpg.jpg",
        "people/alice/front.jpg",
        "Users/alice/front.jpg",
        "users/.alice/front.jpg",
        "users/..alice/front.jpg",
        "users/al ice/front.jpg",
        "users/alice\n/front.jpg",
        "users/alice/front.jpg\n",
        "users/al\\..\\ice/front.jpg",
        "users/al\x00ice/front.jpg",
        "users/alice/front\x00.jpg",
        "users/ålice/front.jpg",
        "users/" + "a" * 201 + "/front.jpg",
        b"users/\xff/front.jpg",
        b"users/alice/front.jpg\xc0",
        b"users\xc0\xaf..\xc0\xafx/front.jpg",
    ],
)
def test_every_other_path_is_refused(path: str | bytes) -> None:
    with pytest.raises(BadFixturePath, match=r"^(path|name|side|kind): "):
        FixtureImage.parse(path)


@pytest.mark.parametrize(
    ("parts", "field"),
    [
        (("users", "alice", "side"), "side"),
        (("people", "alice", "front"), "kind"),
        (("users", "..", "front"), "name"),
        (("users", None, "front"), "name"),
        (("orgs", "a/b", "front"), "name"),
        (("default", "x", "front"), "name"),
    ],
)
def test_bad_parts_name_the_field(parts: tuple[str, str | None, str], field: str) -> None:
    with pytest.raises(BadFixturePath, match=f"^{field}: "):
        FixtureImage.of(*parts)


def test_a_write_is_the_side_s_one_file(tmp_path: Path) -> None:
    folder = tmp_path / "users/bob"
    folder.mkdir(parents=True)
    for name in ("back.jpeg", "back.jws", "front.jpg"):
        (folder / name).write_bytes(b"old")
    image = FixtureImage.of("users", "bob", "back")
    new = card_jpeg("new back")
    written = write_image(tmp_path, image, new, TOLERANCE)
    assert (written.path, written.replaced) == (Path("users/bob/back.jpg"), True)
    assert sorted(p.name for p in folder.iterdir()) == ["back.jpg", "front.jpg"]  # no twin, no temporary
    assert (folder / "back.jpg").read_bytes() == new
    first = write_image(tmp_path, FixtureImage.of("users", "new", "auth"), auth_jpeg("a"), TOLERANCE)
    assert (first.path, first.replaced) == (Path("users/new/auth.jpg"), False)


@pytest.mark.parametrize(
    ("side", "data", "reason"),
    [("front", png_bytes(), "not a JPEG"), ("back", auth_jpeg("square"), "aspect ratio"), ("auth", b"", "empty")],
)
def test_a_bad_image_writes_nothing(tmp_path: Path, side: str, data: bytes, reason: str) -> None:
    (tmp_path / "users/bob").mkdir(parents=True)
    (tmp_path / f"users/bob/{side}.jpeg").write_bytes(b"old")
    with pytest.raises(BadImage, match=reason):
        write_image(tmp_path, FixtureImage.of("users", "bob", side), data, TOLERANCE)
    assert [p.name for p in (tmp_path / "users/bob").iterdir()] == [f"{side}.jpeg"]


def test_a_recorded_answer_is_a_whole_version_served_by_one_link(tmp_path: Path) -> None:
    first = stage_version(tmp_path, "rec", None, ("front", "back"), {"front": b"front as it came", "back": RECORDED})
    assert not (tmp_path / "users/rec").exists()  # written where nothing looks yet
    assert sorted(p.name for p in (tmp_path / first.path).iterdir()) == ["back.jws", "front.jpg"]
    assert publish_version(tmp_path, first) is True
    assert (tmp_path / "users/rec/back.jws").read_bytes() == RECORDED  # a back kept as the JWS it came as
    assert publish_version(tmp_path, first) is False
    auth = stage_version(tmp_path, "rec", first, ("auth",), {"auth": b"auth"})  # the card's files are kept
    assert sorted(p.name for p in (tmp_path / auth.path).iterdir()) == ["auth.jpg", "back.jws", "front.jpg"]
    again = stage_version(tmp_path, "rec", first, ("front", "back"), {"front": b"front as it came", "back": RECORDED})
    assert again == first  # the same files: the same version, never written over
    publish_version(tmp_path, auth)
    assert published_version(tmp_path, "rec") == auth
    assert sorted(p.name for p in (tmp_path / "users").iterdir()) == ["rec"]  # no temporaries


def test_a_recording_never_replaces_a_folder_of_ones_own(tmp_path: Path) -> None:
    (tmp_path / "users/mine").mkdir(parents=True)
    (tmp_path / "users/mine/front.jpg").write_bytes(b"keep")
    assert is_free_for_recording(tmp_path, "mine") is False
    version = stage_version(tmp_path, "mine", None, ("front", "back"), {"front": b"x"})
    with pytest.raises(BadFixturePath, match="a folder of its own"):
        publish_version(tmp_path, version)
    assert (tmp_path / "users/mine/front.jpg").read_bytes() == b"keep"
    with pytest.raises(BadFixturePath, match="not a folder name"):
        stage_version(tmp_path, "../out", None, ("front",), {"front": b"x"})


def test_a_delete_removes_every_file_of_the_side_and_names_them(tmp_path: Path) -> None:
    folder = tmp_path / "users/bob"
    folder.mkdir(parents=True)
    for name in ("back.jpg", "back.jws", "front.jpeg"):
        (folder / name).write_bytes(b"x")
    assert delete_image(tmp_path, FixtureImage.of("users", "bob", "back")) == (
        Path("users/bob/back.jws"),
        Path("users/bob/back.jpg"),
    )
    assert delete_image(tmp_path, FixtureImage.of("users", "bob", "front")) == (Path("users/bob/front.jpeg"),)
    assert delete_image(tmp_path, FixtureImage.of("users", "bob", "front")) == ()
    assert list(folder.iterdir()) == []


def test_a_folder_that_leads_outside_is_neither_written_nor_deleted_in(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "users").mkdir(parents=True)
    outside.mkdir()
    (outside / "front.jpg").write_bytes(b"keep")
    (root / "users/link").symlink_to(outside)
    image = FixtureImage.of("users", "link", "front")
    with pytest.raises(BadFixturePath, match="outside the fixture folder"):
        write_image(root, image, card_jpeg("x"), TOLERANCE)
    with pytest.raises(BadFixturePath, match="outside the fixture folder"):
        delete_image(root, image)
    assert (outside / "front.jpg").read_bytes() == b"keep"


# --------------------------------------------------------------------------- the admin answers


@pytest.mark.parametrize(
    ("files", "side", "deleted", "removed"),
    [
        (["back.jws"], "back", "users/zoe/back.jws", ["users/zoe/back.jws"]),
        (["front.jpeg"], "front", "users/zoe/front.jpeg", ["users/zoe/front.jpeg"]),
        (["back.jpg", "back.jws"], "back", "users/zoe/back.jws", ["users/zoe/back.jws", "users/zoe/back.jpg"]),
        (["auth.jpg"], "auth", "users/zoe/auth.jpg", ["users/zoe/auth.jpg"]),
    ],
)
async def test_a_delete_answer_names_the_files_removed(
    make_client: MakeClient, fixture_root: Path, files: list[str], side: str, deleted: str, removed: list[str]
) -> None:
    folder = fixture_root / "users/zoe"
    folder.mkdir()
    for name in files:
        (folder / name).write_bytes(RECORDED if name.endswith(".jws") else card_jpeg(name))
    client = await make_client()
    response = await client.delete(f"/__admin/fixtures/users/zoe/{side}")
    assert response.status == 200
    assert await response.json() == {"deleted": deleted, "removed": removed}
    assert list(folder.iterdir()) == []
    missing = await client.delete(f"/__admin/fixtures/users/zoe/{side}")
    assert missing.status == 404
    assert (await missing.json())["message"] == f"users/zoe/{side}.jpg does not exist"


async def test_an_upload_over_a_recorded_back_replaces_it(make_client: MakeClient, fixture_root: Path) -> None:
    folder = fixture_root / "users/rec"
    folder.mkdir()
    (folder / "front.jpg").write_bytes(card_jpeg("rec"))
    (folder / "back.jws").write_bytes(RECORDED)
    client = await make_client(revalidate_seconds=3600)
    served = await (await get_content(client, "PROV:rec")).json()
    assert served["data"][1]["data"] == RECORDED.decode()
    new = card_jpeg("new back")
    response = await client.put("/__admin/fixtures/users/rec/back", data=new)
    assert response.status == 200  # the side had an image: replaced
    assert await response.json() == {"path": "users/rec/back.jpg", "bytes": len(new)}
    assert sorted(p.name for p in folder.iterdir()) == ["back.jpg", "front.jpg"]
    back = (await (await get_content(client, "PROV:rec")).json())["data"][1]["data"]
    assert b64url_decode(back.split(".")[1]) == new


# --------------------------------------------------------------------------- the recorder


def card_answer(front: bytes, back: str | None) -> Fetched:
    data = [{"key": "front", "data": base64.b64encode(front).decode()}]
    if back is not None:
        data.append({"key": "back", "data": back})
    body = json.dumps({"data": data}).encode()
    return Fetched(200, CIMultiDictProxy(CIMultiDict({"Content-Type": "application/json"})), body, 0.01)


async def test_the_recorder_writes_whole_answers_and_leaves_ones_own_folders_alone(tmp_path: Path) -> None:
    recorder = await asyncio.to_thread(Recorder, tmp_path, "http://upstream.invalid")
    folder = tmp_path / "users/bob"
    folder.mkdir(parents=True)
    (folder / "front.jpeg").write_bytes(card_jpeg("made by hand"))  # a folder of one's own
    content_id = ContentId("PROV:bob", UseCase.CARD, "bob", True)
    await recorder.record(content_id, card_answer(b"front as it came", RECORDED.decode()), None)
    assert [p.name for p in folder.iterdir()] == ["front.jpeg"]  # never written over
    entry = recorder.manifest.entries["PROV:bob"]
    assert entry.folder.startswith("rec-")  # recorded beside it, and mapped in recorded.yaml
    served = tmp_path / "users" / entry.folder
    assert sorted(p.name for p in served.iterdir()) == ["back.jws", "front.jpg"]
    assert (served / "front.jpg").read_bytes() == b"front as it came"  # a recording is not checked
    assert (served / "back.jws").read_bytes() == RECORDED
    assert f"users/{entry.folder}/front.jpg" in (tmp_path / FRAGMENT).read_text()
    await recorder.record(content_id, card_answer(b"front again", None), None)  # now without a back
    assert sorted(p.name for p in served.iterdir()) == ["front.jpg"]
    newline = ContentId("PROV:bob\n", UseCase.CARD, "bob\n", True)  # not a folder name: mapped
    await recorder.record(newline, card_answer(b"odd", None), None)
    assert recorder.manifest.entries["PROV:bob\n"].folder.startswith("rec-")
    assert not (tmp_path / "users/bob\n").exists()
    await recorder.close()
