"""The pytest plugin, used the way a consuming project would: from separate test files."""

from __future__ import annotations

import re

import pytest

from .docs import Block, python_examples


@pytest.mark.parametrize("example", python_examples("plugin test"), ids=str)
def test_doc_example_passes_as_a_consumer_runs_it(pytester: pytest.Pytester, example: Block) -> None:
    source = example.text
    pytester.makepyfile(test_from_docs=source)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=len(re.findall(r"^def test_", source, flags=re.MULTILINE)))


@pytest.mark.parametrize("example", python_examples("plugin conftest"), ids=str)
def test_doc_conftest_example_configures_the_server(pytester: pytest.Pytester, example: Block) -> None:
    pytester.makeconftest(example.text)
    pytester.makepyfile(
        test_with_docs_conftest="""
import urllib.request, urllib.error

def test_credentials_are_asked_for(content_provider):
    request = urllib.request.Request(content_provider.url + "/getcontent", data=b'{"contentId": "PROV:bob"}')
    try:
        urllib.request.urlopen(request)
    except urllib.error.HTTPError as error:
        assert error.code == 401
    else:
        raise AssertionError("expected 401: the docs' conftest.py turns on basic authentication")
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_each_test_starts_from_the_configured_state(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_isolation="""
import json, urllib.request, urllib.error

def status(url, content_id):
    request = urllib.request.Request(url + "/getcontent", data=json.dumps({"contentId": content_id}).encode())
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, response.headers["X-Content-Provider-Resolved"]
    except urllib.error.HTTPError as error:
        return error.code, None

def test_first(content_provider):
    content_provider.add_rule(name="down", outcome=503)
    content_provider.add_image("front", user="temp-user")
    assert status(content_provider.url, "PROV:x") == (503, None)

def test_second_sees_none_of_it(content_provider):
    assert content_provider.rules() == []
    assert content_provider.requests() == []
    assert not (content_provider.fixture_root / "users" / "temp-user" / "front.jpg").exists()
    assert status(content_provider.url, "PROV:temp-user") == (200, "default")

def test_counts_fail_with_the_journal(content_provider):
    status(content_provider.url, "PROV:y")
    try:
        content_provider.assert_request_count(2, content_id="PROV:y")
    except AssertionError as error:
        assert "expected 2 request(s) for 'PROV:y', got 1" in str(error)
        assert "'PROV:y' -> 200" in str(error)
    else:
        raise AssertionError("should have failed")
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly")
    result.assert_outcomes(passed=3)


def test_settings_can_be_overridden(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
import pytest

@pytest.fixture(scope="session")
def content_provider_settings():
    return {"username": "hermod", "password": "s3cret", "default_enabled": False}
"""
    )
    pytester.makepyfile(
        test_auth="""
import json, urllib.request, urllib.error

def test_needs_credentials(content_provider):
    request = urllib.request.Request(content_provider.url + "/getcontent", data=b'{"contentId": "PROV:bob"}')
    try:
        urllib.request.urlopen(request)
    except urllib.error.HTTPError as error:
        assert error.code == 401
    else:
        raise AssertionError("expected 401")
    assert content_provider.request_count("PROV:bob") == 0  # a 401 is journaled before the id is read
    assert content_provider.request_count() == 1
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_replacing_an_existing_image_restores_it_afterwards(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_replace="""
import base64, json, urllib.request

from content_provider.client import generated_image

def fronts(url, content_id):
    request = urllib.request.Request(url + "/getcontent", data=json.dumps({"contentId": content_id}).encode())
    with urllib.request.urlopen(request) as response:
        resolved = response.headers["X-Content-Provider-Resolved"]
        body = json.load(response)
    return resolved, base64.b64decode(next(e["data"] for e in body["data"] if e["key"] == "front"))

ORIGINAL = {}

def test_a_replaces_the_default_and_a_user_image_twice(content_provider):
    root = content_provider.fixture_root
    ORIGINAL["default"] = (root / "default" / "front.jpg").read_bytes()
    ORIGINAL["alice"] = (root / "users" / "alice" / "front.jpg").read_bytes()
    (root / "users" / "carol").mkdir()
    (root / "users" / "carol" / "front.jpeg").write_bytes(ORIGINAL["alice"])  # a .jpeg twin the upload removes
    new = generated_image("front", "replaced")
    content_provider.add_image("front", new)
    content_provider.add_image("front", new, user="alice")
    content_provider.add_image("front", generated_image("front", "again"), user="alice")
    content_provider.add_image("front", new, user="carol")
    assert fronts(content_provider.url, "PROV:nobody") == ("default", new)
    assert not (root / "users" / "carol" / "front.jpeg").exists()

def test_b_sees_the_originals_again(content_provider):
    root = content_provider.fixture_root
    assert fronts(content_provider.url, "PROV:nobody") == ("default", ORIGINAL["default"])
    assert fronts(content_provider.url, "PROV:alice") == ("user alice", ORIGINAL["alice"])
    assert fronts(content_provider.url, "PROV:carol") == ("user carol", ORIGINAL["alice"])
    assert not (root / "users" / "carol" / "front.jpg").exists()
    assert (root / "users" / "carol" / "front.jpeg").read_bytes() == ORIGINAL["alice"]
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly")
    result.assert_outcomes(passed=2)
