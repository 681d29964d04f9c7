"""manifest.json against its schema and against the app: `backstride manifest check`."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from plugin import __version__
from plugin.cli import main
from plugin.manifest import PACKAGED_MANIFEST, SCHEMA_FILE, check_manifest

ROOT = Path(__file__).resolve().parents[2]
TOP_MANIFEST = ROOT / "manifest.json"


def shipped() -> dict:
    return json.loads(TOP_MANIFEST.read_text(encoding="utf-8"))


def write(tmp_path: Path, manifest: dict) -> Path:
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
    return path


def check(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["manifest", "check", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_the_shipped_manifest_is_valid(capsys):
    code, out, err = check(capsys)
    assert code == 0, err
    assert "valid against the schema and the app" in out
    assert err == ""


def test_the_package_carries_the_top_level_manifest():
    assert PACKAGED_MANIFEST.read_bytes() == TOP_MANIFEST.read_bytes()


def test_the_schema_is_a_valid_2020_12_schema_that_closes_every_object():
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"

    def objects(node):
        if isinstance(node, dict):
            if node.get("type") == "object":
                yield node
            for value in node.values():
                yield from objects(value)
        elif isinstance(node, list):
            for value in node:
                yield from objects(value)

    assert all(o.get("additionalProperties") is False for o in objects(schema))


def test_version_matches_the_package():
    assert shipped()["version"] == __version__


def test_no_secret_values_only_variable_names():
    def keys(node, prefix=""):
        if isinstance(node, dict):
            for key, value in node.items():
                yield f"{prefix}.{key}", key, value
                yield from keys(value, f"{prefix}.{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                yield from keys(value, f"{prefix}[{i}]")

    secretish = [(where, value) for where, key, value in keys(shipped()) if "secret" in key or "token" in key]
    assert secretish, "the manifest names the variables of its secrets"
    for where, value in secretish:
        assert where.endswith("_env"), where
        assert value.isupper() and value.replace("_", "").isalnum(), (where, value)


def mutate(change):
    manifest = copy.deepcopy(shipped())
    change(manifest)
    return manifest


def _drop(key):
    return lambda m: m.pop(key)


def _set(path, value):
    def change(m):
        node = m
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return change


SCHEMA_CASES = [
    (_drop("privacy_policy_url"), "'privacy_policy_url' is a required property"),
    (
        _set(["base_url"], "http://backstride.example"),
        "manifest.base_url: 'http://backstride.example' does not match",
    ),
    (_set(["unexpected"], 1), "Additional properties are not allowed ('unexpected' was unexpected)"),
    (
        lambda m: m["oauth"]["scopes"][0].pop("justification"),
        "manifest.oauth.scopes[0]: 'justification' is a required",
    ),
    (_set(["name"], "Backstride for Strava"), "manifest.name: 'Backstride for Strava' should not be valid"),
    (_set(["key"], "backstride"), "manifest.key: 'backstride' does not match"),
    (
        _set(["data_handling", "used_for_model_training"], True),
        "manifest.data_handling.used_for_model_training",
    ),
    (_set(["webhooks", "ack_timeout_ms"], 5000), "manifest.webhooks.ack_timeout_ms: 5000 is greater than"),
    (_set(["support", "email"], "not an address"), "manifest.support.email"),
]


@pytest.mark.parametrize("change,message", SCHEMA_CASES)
def test_schema_errors_are_named_and_exit_1(capsys, tmp_path, change, message):
    path = write(tmp_path, mutate(change))
    code, _, err = check(capsys, "--file", str(path))
    assert code == 1
    assert message in err
    assert str(path) in err


APP_CASES = [
    (_set(["oauth", "redirect_path"], "/oauth/cb"), "manifest.oauth.redirect_path: /oauth/cb is not a route"),
    (_set(["lifecycle", "disconnect", "method"], "GET"), "GET /disconnect is a route, but not for GET"),
    (_set(["data_handling", "export_path"], "/export"), "manifest.data_handling.export_path: /export is not"),
    (_set(["health_check_path"], "/health"), "manifest.health_check_path: /health is not a route"),
    (_set(["terms_url"], "https://backstride.example/tos"), "manifest.terms_url: /tos is not a route"),
    (
        lambda m: m["oauth"]["scopes"].pop(),
        "manifest.oauth.scopes: declares ['activity:read_all', 'activity:write']",
    ),
    (
        lambda m: m["oauth"]["scopes"][2].update(optional=False),
        "manifest.oauth.scopes (required, optional: false)",
    ),
    (_set(["version"], "9.9.9"), "manifest.version: declares '9.9.9', the app has"),
    (_set(["data_handling", "retention_days"], 5), "retention_days: declares 5, the app has 7"),
    (_set(["annotation", "marker"], "Backstride"), "manifest.annotation.marker: declares 'Backstride'"),
    (_set(["rate_limits", "backoff", "max_attempts"], 3), "max_attempts: declares 3, the app has 6"),
    (
        lambda m: m["icons"][0].update(sizes="256x256"),
        "manifest.icons[0]: declares 256x256, the PNG is (512, 512)",
    ),
    (lambda m: m["icons"][0].update(src="/static/missing.png"), "names a static file that does not exist"),
    (_set(["webhooks", "verify_token_env"], "VERIFY"), "verify_token_env: not a variable the app reads"),
]


@pytest.mark.parametrize("change,message", APP_CASES)
def test_the_app_disagreeing_is_named_and_exit_1(capsys, tmp_path, change, message):
    path = write(tmp_path, mutate(change))
    code, _, err = check(capsys, "--file", str(path))
    assert code == 1
    assert message in err, err


def test_a_secret_value_in_the_manifest_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("STRAVA_CLIENT_SECRET", "abcdef0123456789")
    manifest = mutate(_set(["vendor", "name"], "abcdef0123456789"))
    result = check_manifest(write(tmp_path, manifest))
    assert any("contains the value of STRAVA_CLIENT_SECRET" in e for e in result.errors)


@pytest.mark.parametrize(
    "content,reason",
    [(None, "cannot read it"), ("{not json", "not valid JSON: "), ("[1, 2]", "not a JSON object")],
)
def test_unreadable_manifest_is_one_line_naming_the_file(capsys, tmp_path, content, reason):
    path = tmp_path / "manifest.json"
    if content is not None:
        path.write_text(content)
    code, out, err = check(capsys, "--file", str(path))
    assert code == 1
    assert out == ""
    assert err.count("\n") == 1 and str(path) in err and reason in err
