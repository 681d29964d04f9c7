"""The `backstride` command: subscription management and configuration errors."""

from __future__ import annotations

import pytest

from plugin.cli import main
from plugin.config import load_settings
from plugin.store import Store
from tests.conftest import PUBLIC_URL, VERIFY_TOKEN


@pytest.fixture
def cli_env(env, monkeypatch):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("BACKSTRIDE_QUEUE_URL", f"sqlite:///{env['BACKSTRIDE_INSTANCE_DIR']}/queue.db")
    return env


def stored_subscription(env) -> int | None:
    settings = load_settings(env)
    return Store(settings.database_url, settings.token_key).subscription_id()


def test_subscription_create_registers_our_callback_and_remembers_the_id(cli_env, strava, capsys):
    assert main(["subscription", "create"]) == 0
    ((subscription_id, callback),) = strava.subscriptions.items()
    assert callback == f"{PUBLIC_URL}/webhooks/strava"
    assert f"subscription {subscription_id} created" in capsys.readouterr().out
    assert stored_subscription(cli_env) == subscription_id
    body = strava.mock.calls[-1].request.body
    assert f"verify_token={VERIFY_TOKEN}" in body


def test_subscription_create_when_one_exists_fails_clearly(cli_env, strava, capsys):
    strava.subscriptions[77] = "https://elsewhere.test/hook"
    assert main(["subscription", "create"]) == 1
    err = capsys.readouterr().err
    assert "subscription create failed" in err
    assert "already exists" in err


def test_subscription_show_lists_and_stores_ours(cli_env, strava, capsys):
    strava.subscriptions[88] = f"{PUBLIC_URL}/webhooks/strava"
    assert main(["subscription", "show"]) == 0
    assert f"subscription 88: {PUBLIC_URL}/webhooks/strava" in capsys.readouterr().out
    assert stored_subscription(cli_env) == 88


def test_subscription_show_with_none(cli_env, strava, capsys):
    assert main(["subscription", "show"]) == 0
    assert "no subscription" in capsys.readouterr().out
    assert stored_subscription(cli_env) is None


def test_subscription_delete_removes_it_at_the_host_and_here(cli_env, strava, capsys):
    assert main(["subscription", "create"]) == 0
    assert main(["subscription", "delete"]) == 0
    assert strava.subscriptions == {}
    assert "deleted" in capsys.readouterr().out
    assert stored_subscription(cli_env) is None


def test_subscription_delete_with_nothing_to_delete(cli_env, strava, capsys):
    assert main(["subscription", "delete"]) == 0
    assert "no subscription to delete" in capsys.readouterr().out


def test_subscription_needs_client_credentials(cli_env, monkeypatch, capsys):
    monkeypatch.delenv("STRAVA_CLIENT_ID")
    assert main(["subscription", "create"]) == 2
    assert "STRAVA_CLIENT_ID" in capsys.readouterr().err


def test_client_secret_never_printed(cli_env, strava, capsys):
    strava.fail(
        "POST",
        "/push_subscriptions",
        400,
        body={
            "message": "Bad Request",
            "errors": [
                {
                    "resource": "PushSubscription",
                    "field": "callback url",
                    "code": "GET to callback URL does not return 200",
                }
            ],
        },
    )
    assert main(["subscription", "create"]) == 1
    out = capsys.readouterr()
    assert "GET to callback URL does not return 200" in out.err
    assert cli_env["STRAVA_CLIENT_SECRET"] not in out.out + out.err


def test_production_without_a_secret_refuses_to_start_naming_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BACKSTRIDE_ENV", "production")
    monkeypatch.setenv("BACKSTRIDE_INSTANCE_DIR", str(tmp_path))
    for name in (
        "BACKSTRIDE_SECRET_KEY",
        "BACKSTRIDE_TOKEN_KEY",
        "STRAVA_CLIENT_ID",
        "STRAVA_CLIENT_SECRET",
        "STRAVA_VERIFY_TOKEN",
        "STRAVA_WEBHOOK_SECRET",
    ):
        monkeypatch.delenv(name, raising=False)
    assert main(["serve"]) == 2
    assert "BACKSTRIDE_SECRET_KEY is not set" in capsys.readouterr().err
    assert not (tmp_path / "dev-secrets.json").exists()


def test_keys_rotate_moves_every_token_to_the_newest_key(cli_env, strava, monkeypatch, capsys):
    from cryptography.fernet import Fernet

    from tests.conftest import ATHLETE_ID, connect_athlete

    settings = load_settings(cli_env)  # the instance's generated key: the old one
    old = settings.token_key
    store = Store(settings.database_url, old)
    store.create_schema()
    connect_athlete(store, strava)
    before = Store(settings.database_url, old).tokens(ATHLETE_ID)

    new = Fernet.generate_key().decode()
    monkeypatch.setenv("BACKSTRIDE_TOKEN_KEY", f"{new},{old}")
    assert main(["keys", "rotate"]) == 0
    assert "re-encrypted the tokens of 1 athlete(s) with the newest key" in capsys.readouterr().out
    # The old key can go: the newest alone reads every token.
    assert Store(settings.database_url, new).tokens(ATHLETE_ID) == before


def test_keys_rotate_names_the_athletes_no_key_opens(cli_env, strava, monkeypatch, capsys):
    from cryptography.fernet import Fernet

    from tests.conftest import ATHLETE_ID, connect_athlete

    settings = load_settings(cli_env)
    store = Store(settings.database_url, settings.token_key)
    store.create_schema()
    connect_athlete(store, strava)
    monkeypatch.setenv("BACKSTRIDE_TOKEN_KEY", Fernet.generate_key().decode())  # the old key lost
    assert main(["keys", "rotate"]) == 1
    assert f"({ATHLETE_ID}): they must reconnect" in capsys.readouterr().out
    assert Store(settings.database_url, settings.token_key).athlete(ATHLETE_ID).needs_reconnect


def test_a_malformed_token_key_list_is_a_clear_error(cli_env, monkeypatch, capsys):
    monkeypatch.setenv("BACKSTRIDE_TOKEN_KEY", "not-a-key,")
    assert main(["keys", "rotate"]) == 2
    assert "BACKSTRIDE_TOKEN_KEY is not a valid Fernet key" in capsys.readouterr().err


def test_subscription_create_registers_the_secret_path_when_there_is_one(cli_env, strava, monkeypatch):
    monkeypatch.setenv("STRAVA_WEBHOOK_SECRET", "s3cret-path-segment")
    assert main(["subscription", "create"]) == 0
    ((_, callback),) = strava.subscriptions.items()
    assert callback == f"{PUBLIC_URL}/webhooks/strava/s3cret-path-segment"


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "::"])  # noqa: S104 - refused, not bound
def test_the_sandbox_refuses_a_non_loopback_address_unless_told_public(host, capsys):
    """Issue 20: the sandbox bound to 0.0.0.0 when asked, and signs in any athlete id."""
    assert main(["sandbox", "--host", host, "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert f"--host {host} is not loopback" in err and "--public" in err
