"""Settings from the environment (plugin/config.py), as DESIGN.md's table promises them."""

from __future__ import annotations

import json
import stat

import pytest
from cryptography.fernet import Fernet

from plugin.config import DEV_SECRETS_FILE, ConfigError, load_settings

PRODUCTION = {
    "BACKSTRIDE_ENV": "production",
    "BACKSTRIDE_SECRET_KEY": "a-long-random-session-key-for-tests-only-0123456789",
    "BACKSTRIDE_TOKEN_KEY": Fernet.generate_key().decode(),
    "BACKSTRIDE_PUBLIC_URL": "https://backstride.example.org",
    "STRAVA_CLIENT_ID": "4711",
    "STRAVA_CLIENT_SECRET": "secret",
    "STRAVA_VERIFY_TOKEN": "verify-me-a-long-random-token-for-tests-only",
    "STRAVA_WEBHOOK_SECRET": "a-random-path-segment-for-tests-only-0123456789",
}


def dev(tmp_path, **extra: str) -> dict[str, str]:
    return {"BACKSTRIDE_INSTANCE_DIR": str(tmp_path), **extra}


def production(tmp_path, **extra: str) -> dict[str, str]:
    return {**PRODUCTION, "BACKSTRIDE_INSTANCE_DIR": str(tmp_path), **extra}


# --- development defaults -----------------------------------------------------------------------------


def test_development_defaults(tmp_path):
    settings = load_settings(dev(tmp_path))
    instance = tmp_path.resolve()

    assert settings.env == "development"
    assert not settings.is_production
    assert settings.instance_dir == instance
    assert settings.database_url == f"sqlite:///{instance}/backstride.db"
    assert settings.queue_url == f"sqlite:///{instance}/queue.db"
    assert settings.public_url == "http://127.0.0.1:5000"
    assert settings.redirect_uri == "http://127.0.0.1:5000/oauth/callback"
    assert settings.webhook_callback_url == "http://127.0.0.1:5000/webhooks/strava"
    assert settings.strava_oauth_url == "https://www.strava.com/oauth"
    assert settings.strava_api_url == "https://www.strava.com/api/v3"
    assert settings.strava_client_id == ""
    assert settings.strava_client_secret == ""


def test_instance_dir_is_created_in_development(tmp_path):
    instance = tmp_path / "not" / "yet"

    settings = load_settings(dev(instance))

    assert instance.is_dir()
    assert settings.database_url == f"sqlite:///{instance.resolve()}/backstride.db"


def test_explicit_values_win_over_defaults(tmp_path):
    settings = load_settings(
        dev(
            tmp_path,
            BACKSTRIDE_DATABASE_URL="postgresql://backstride@db/backstride",
            BACKSTRIDE_QUEUE_URL="redis://queue:6379/0",
            STRAVA_CLIENT_ID="4711",
            STRAVA_CLIENT_SECRET="secret",
            STRAVA_OAUTH_URL="https://sandbox.test/oauth",
            STRAVA_API_URL="https://api-v3.strava.test",
        )
    )

    assert settings.database_url == "postgresql://backstride@db/backstride"
    assert settings.queue_url == "redis://queue:6379/0"
    assert (settings.strava_client_id, settings.strava_client_secret) == ("4711", "secret")
    assert settings.strava_oauth_url == "https://sandbox.test/oauth"
    assert settings.strava_api_url == "https://api-v3.strava.test"


def test_process_environment_is_read_when_no_mapping_is_given(tmp_path, monkeypatch):
    monkeypatch.setenv("BACKSTRIDE_INSTANCE_DIR", str(tmp_path))
    monkeypatch.setenv("BACKSTRIDE_PUBLIC_URL", "https://from-environ.test")
    for name in ("BACKSTRIDE_ENV", "BACKSTRIDE_TOKEN_KEY", "BACKSTRIDE_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)

    settings = load_settings()

    assert settings.public_url == "https://from-environ.test"
    assert settings.instance_dir == tmp_path.resolve()


# --- generated development secrets --------------------------------------------------------------------


def test_dev_secrets_are_generated_into_the_instance_dir(tmp_path):
    settings = load_settings(dev(tmp_path))

    path = tmp_path / DEV_SECRETS_FILE
    assert path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = json.loads(path.read_text())
    assert stored == {
        "BACKSTRIDE_SECRET_KEY": settings.secret_key,
        "BACKSTRIDE_TOKEN_KEY": settings.token_key,
        "STRAVA_VERIFY_TOKEN": settings.strava_verify_token,
    }
    assert len(settings.secret_key) >= 32
    assert len(settings.strava_verify_token) >= 16
    Fernet(settings.token_key.encode())  # a usable key
    assert sorted(p.name for p in tmp_path.iterdir()) == [DEV_SECRETS_FILE]  # no temporary file left


def test_dev_secrets_stay_the_same_on_the_next_start(tmp_path):
    first = load_settings(dev(tmp_path))
    second = load_settings(dev(tmp_path))

    assert second.secret_key == first.secret_key
    assert second.token_key == first.token_key
    assert second.strava_verify_token == first.strava_verify_token


def test_dev_secrets_differ_between_instances(tmp_path):
    one = load_settings(dev(tmp_path / "one"))
    two = load_settings(dev(tmp_path / "two"))

    assert one.secret_key != two.secret_key
    assert one.token_key != two.token_key
    assert one.strava_verify_token != two.strava_verify_token


def test_explicit_secrets_win_over_generated_ones(tmp_path):
    key = Fernet.generate_key().decode()

    settings = load_settings(
        dev(tmp_path, BACKSTRIDE_SECRET_KEY="mine", BACKSTRIDE_TOKEN_KEY=key, STRAVA_VERIFY_TOKEN="also-mine")
    )

    assert (settings.secret_key, settings.token_key, settings.strava_verify_token) == (
        "mine",
        key,
        "also-mine",
    )


# --- production -------------------------------------------------------------------------------------


def test_production_with_every_secret_starts(tmp_path):
    settings = load_settings(production(tmp_path))

    assert settings.is_production
    assert settings.secret_key == PRODUCTION["BACKSTRIDE_SECRET_KEY"]
    assert settings.token_key == PRODUCTION["BACKSTRIDE_TOKEN_KEY"]
    assert settings.strava_verify_token == PRODUCTION["STRAVA_VERIFY_TOKEN"]
    assert not (tmp_path / DEV_SECRETS_FILE).exists()


def test_production_creates_a_fresh_private_instance_directory(tmp_path):
    """Issue 20: production on the embedded defaults died on a missing instance directory."""
    fresh = tmp_path / "new" / "instance"
    settings = load_settings({**production(tmp_path), "BACKSTRIDE_INSTANCE_DIR": str(fresh)})
    assert settings.instance_dir == fresh and fresh.is_dir()
    assert fresh.stat().st_mode & 0o777 == 0o700
    assert settings.database_url == f"sqlite:///{fresh / 'backstride.db'}"


def test_production_without_secrets_names_the_first_missing_one(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_settings({"BACKSTRIDE_ENV": "production", "BACKSTRIDE_INSTANCE_DIR": str(tmp_path)})

    assert str(info.value).startswith("BACKSTRIDE_SECRET_KEY ")
    assert not (tmp_path / DEV_SECRETS_FILE).exists()


def test_production_names_the_one_missing_secret(tmp_path):
    env = production(tmp_path)
    del env["STRAVA_VERIFY_TOKEN"]

    with pytest.raises(ConfigError) as info:
        load_settings(env)

    message = str(info.value)
    assert "STRAVA_VERIFY_TOKEN" in message
    for present in (
        "BACKSTRIDE_SECRET_KEY",
        "BACKSTRIDE_TOKEN_KEY",
        "STRAVA_CLIENT_ID",
        "STRAVA_CLIENT_SECRET",
    ):
        assert present not in message
    assert not (tmp_path / DEV_SECRETS_FILE).exists()


def test_production_counts_a_blank_secret_as_missing(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_settings(production(tmp_path, STRAVA_CLIENT_SECRET="   "))

    assert "STRAVA_CLIENT_SECRET" in str(info.value)


def test_production_does_not_read_dev_secrets_left_in_the_instance_dir(tmp_path):
    load_settings(dev(tmp_path))  # a development run left its generated secrets behind
    env = production(tmp_path)
    del env["BACKSTRIDE_SECRET_KEY"]

    with pytest.raises(ConfigError) as info:
        load_settings(env)

    assert "BACKSTRIDE_SECRET_KEY" in str(info.value)


# --- invalid values ---------------------------------------------------------------------------------


@pytest.mark.parametrize("environment", [dev, production])
def test_invalid_token_key_is_named_but_not_echoed(tmp_path, environment):
    with pytest.raises(ConfigError) as info:
        load_settings(environment(tmp_path, BACKSTRIDE_TOKEN_KEY="not-a-fernet-key"))

    assert "BACKSTRIDE_TOKEN_KEY" in str(info.value)
    assert "not-a-fernet-key" not in str(info.value)


def test_unknown_env_is_refused(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_settings(dev(tmp_path, BACKSTRIDE_ENV="staging"))

    assert "BACKSTRIDE_ENV" in str(info.value)


def test_public_url_without_scheme_is_refused(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_settings(dev(tmp_path, BACKSTRIDE_PUBLIC_URL="backstride.example.org"))

    assert "BACKSTRIDE_PUBLIC_URL" in str(info.value)


# --- URLs -------------------------------------------------------------------------------------------


def test_trailing_slashes_are_stripped_from_urls(tmp_path):
    settings = load_settings(
        dev(
            tmp_path,
            BACKSTRIDE_PUBLIC_URL="https://backstride.example.org/",
            STRAVA_OAUTH_URL="https://sandbox.test/oauth/",
            STRAVA_API_URL="https://sandbox.test/api/v3//",
        )
    )

    assert settings.public_url == "https://backstride.example.org"
    assert settings.strava_oauth_url == "https://sandbox.test/oauth"
    assert settings.strava_api_url == "https://sandbox.test/api/v3"


def test_redirect_and_webhook_urls_follow_the_public_url(tmp_path):
    settings = load_settings(dev(tmp_path, BACKSTRIDE_PUBLIC_URL="https://backstride.example.org/plugin/"))

    assert settings.redirect_uri == "https://backstride.example.org/plugin/oauth/callback"
    assert settings.webhook_callback_url == "https://backstride.example.org/plugin/webhooks/strava"


def test_retry_base_defaults_to_30_s_and_can_be_shortened(tmp_path):
    assert load_settings(dev(tmp_path)).retry_base_s == 30.0
    assert load_settings(dev(tmp_path, BACKSTRIDE_RETRY_BASE_S="1.5")).retry_base_s == 1.5


@pytest.mark.parametrize("value", ["soon", "0", "-5", "7200", "nan"])
def test_a_retry_base_that_is_no_sensible_number_of_seconds_is_named(tmp_path, value):
    with pytest.raises(ConfigError, match="BACKSTRIDE_RETRY_BASE_S"):
        load_settings(dev(tmp_path, BACKSTRIDE_RETRY_BASE_S=value))


# --- production refuses what is unsafe ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes,named",
    [
        ({"BACKSTRIDE_SECRET_KEY": "x"}, "BACKSTRIDE_SECRET_KEY is shorter than 32 bytes"),
        ({"STRAVA_VERIFY_TOKEN": "v"}, "STRAVA_VERIFY_TOKEN is shorter than 32 bytes"),
        ({"BACKSTRIDE_SECRET_KEY": PRODUCTION["BACKSTRIDE_TOKEN_KEY"]}, "equals BACKSTRIDE_TOKEN_KEY"),
        ({"BACKSTRIDE_PUBLIC_URL": "http://backstride.example.org"}, "BACKSTRIDE_PUBLIC_URL is not https"),
        ({"BACKSTRIDE_PUBLIC_URL": ""}, "BACKSTRIDE_PUBLIC_URL is not https"),
        ({"STRAVA_API_URL": "http://127.0.0.1:5100/api/v3"}, "STRAVA_API_URL is not an https address"),
        ({"STRAVA_OAUTH_URL": "https://localhost:5100/oauth"}, "STRAVA_OAUTH_URL is not an https address"),
        ({"STRAVA_API_URL": "https://[::1]/api/v3"}, "STRAVA_API_URL is not an https address"),
    ],
)
def test_production_refuses_weak_secrets_and_unsafe_addresses(tmp_path, changes, named):
    with pytest.raises(ConfigError) as info:
        load_settings(production(tmp_path, **changes))
    assert named in str(info.value)
    assert str(info.value).startswith("BACKSTRIDE_ENV=production refuses to start: ")


def test_allow_insecure_waives_the_address_checks_out_loud_but_never_the_secrets(tmp_path, caplog):
    sandbox = {
        "BACKSTRIDE_PUBLIC_URL": "http://127.0.0.1:5000",
        "STRAVA_API_URL": "http://127.0.0.1:5100/api/v3",
    }
    settings = load_settings(production(tmp_path, BACKSTRIDE_ALLOW_INSECURE="1", **sandbox))
    assert settings.public_url == "http://127.0.0.1:5000"
    assert (
        "BACKSTRIDE_ALLOW_INSECURE=1: production runs although BACKSTRIDE_PUBLIC_URL is not https"
        in caplog.text
    )
    with pytest.raises(ConfigError, match="shorter than 32 bytes"):
        load_settings(production(tmp_path, BACKSTRIDE_ALLOW_INSECURE="1", BACKSTRIDE_SECRET_KEY="short"))


def test_development_accepts_what_production_refuses(tmp_path):
    settings = load_settings(
        dev(tmp_path, BACKSTRIDE_SECRET_KEY="x", STRAVA_API_URL="http://127.0.0.1:5100/api/v3")
    )
    assert settings.secret_key == "x"


def test_the_webhook_secret_moves_the_callback_and_must_be_url_safe(tmp_path):
    settings = load_settings(production(tmp_path))
    assert settings.webhook_path == f"/webhooks/strava/{PRODUCTION['STRAVA_WEBHOOK_SECRET']}"
    assert settings.webhook_callback_url == f"https://backstride.example.org{settings.webhook_path}"
    assert load_settings(dev(tmp_path)).webhook_path == "/webhooks/strava"
    with pytest.raises(ConfigError, match="STRAVA_WEBHOOK_SECRET may hold only"):
        load_settings(dev(tmp_path, STRAVA_WEBHOOK_SECRET="a/b"))
    with pytest.raises(ConfigError, match="STRAVA_WEBHOOK_SECRET is shorter than 32 bytes"):
        load_settings(production(tmp_path, STRAVA_WEBHOOK_SECRET="short"))
