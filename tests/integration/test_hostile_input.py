"""Hostile input: property-based fuzzing of everything a stranger can send to the app.

The webhook, the OAuth callback and the settings form get arbitrary input (random JSON and bytes, wrong
types, huge numbers, unicode, repeated and unknown fields). Whatever arrives, the answer is a 4xx with a
reason or the normal answer, never a 5xx; nothing is stored unless the input is fully valid; bodies over the
limit are refused with 413; and no secret or description ever reaches a log record.

The expected outcome is stated here independently of the code under test (`event_is_valid`, the settings
checks), so a property fails when the two disagree, not only when the app crashes.

Each test builds its fixtures once and resets the state it looks at at the start of every example, hence the
suppressed function-scoped-fixture health check.
"""

from __future__ import annotations

import io
import json
import logging
import re
import string
import time
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import event as label
from hypothesis import strategies as st
from sqlalchemy import delete, func, select, update
from werkzeug.datastructures import MultiDict

from plugin.store.models import Athlete, InboxEvent
from plugin.web import MAX_REQUEST_BYTES
from tests.conftest import ATHLETE_ID, VERIFY_TOKEN, event, run_queue
from tests.fake_strava import CLIENT_SECRET


@pytest.fixture
def backend() -> dict[str, str]:
    """The embedded defaults only: what hostile input gets back is the web layer's concern."""
    return {}


SUBSCRIPTION_ID = 5150
INT64_MAX = 2**63 - 1  # what the database can hold; stated here, not imported from the schema

fuzz = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


# --- shared helpers -----------------------------------------------------------------------------------------


def inbox_rows(services) -> list[InboxEvent]:
    with services.store.session() as session:
        return list(session.scalars(select(InboxEvent)))


def athlete_count(services) -> int:
    with services.store.session() as session:
        return session.scalar(select(func.count()).select_from(Athlete))


def reset_inbox(services) -> None:
    with services.store.session() as session:
        session.execute(delete(InboxEvent))
    services.queue.huey.flush()


def errors_logged(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]


def assert_json_error(response) -> None:
    """A refusal: 4xx with a JSON body {"error": reason}, the reason a non-empty string."""
    assert 400 <= response.status_code < 500, response.status_code
    body = response.get_json(silent=True)
    assert isinstance(body, dict), response.get_data()[:200]
    assert isinstance(body.get("error"), str) and body["error"].strip()


def assert_page_with_reason(response) -> None:
    """A refusal for a person: 4xx with a page whose heading says what went wrong."""
    assert 400 <= response.status_code < 500, response.status_code
    heading = re.search(r"<h1>([^<]+)</h1>", response.get_data(as_text=True))
    assert heading and heading.group(1).strip()


# Query strings as a server can deliver them: gunicorn refuses request lines with non-ASCII bytes (400
# before the app runs), so raw strings are printable ASCII, including stray "%", "&", "=" and bad escapes.
raw_query_strings = st.text(
    alphabet=string.ascii_letters + string.digits + "%&=+.;:,/?@!$'()*-_~[]", max_size=80
)


def get_with_query(client, path: str, pairs: list[tuple[str, str]], raw: str | None):
    """GET path with the raw query string when there is one, else with the pairs; the response, and the
    parameters the app sees."""
    if raw is not None:
        return client.get(path, query_string=raw), first_values(parse_qsl(raw, keep_blank_values=True))
    return client.get(path, query_string=MultiDict(pairs)), first_values(pairs)


def first_values(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """What `request.args.get` sees: the first value of each repeated parameter."""
    seen: dict[str, str] = {}
    for key, value in pairs:
        seen.setdefault(key, value)
    return seen


# --- 1. POST /webhooks/strava -------------------------------------------------------------------------------

EDGE_INTS = [0, -1, 1, ATHLETE_ID, SUBSCRIPTION_ID, INT64_MAX, INT64_MAX + 1, 2**64, -(2**63) - 1, 10**30]

# st.text() never draws lone surrogates; JSON carries them ("\ud800"), and NUL and control characters too.
odd_text = st.text(alphabet=st.characters(categories=["Cs", "Cc", "Lo", "Nd", "So"]), max_size=12)
any_text = st.one_of(st.text(max_size=30), odd_text)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from(EDGE_INTS),
    st.floats(),  # NaN and infinities too: json.dumps writes them and the app's parser accepts them
    any_text,
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(any_text, children, max_size=4),
    max_leaves=12,
)
update_values = st.one_of(any_text, st.text(max_size=200), st.integers(), st.floats(), st.booleans())
update_keys = st.one_of(st.text(max_size=64), odd_text)

# For each field: good values (some of them extreme), and near misses a careless or hostile sender produces.
FIELD_GOOD = {
    "object_type": st.sampled_from(["activity", "athlete"]),
    "object_id": st.one_of(st.just(ATHLETE_ID), st.integers(1, INT64_MAX), st.just(INT64_MAX)),
    "aspect_type": st.sampled_from(["create", "update", "delete"]),
    "owner_id": st.one_of(st.just(ATHLETE_ID), st.integers(1, INT64_MAX)),
    "subscription_id": st.one_of(st.just(SUBSCRIPTION_ID), st.integers(1, INT64_MAX)),
    "event_time": st.one_of(st.integers(0, 2**32), st.integers(0, INT64_MAX), st.just(INT64_MAX)),
    "updates": st.dictionaries(update_keys, update_values, max_size=20),
}
INT_NEAR = st.one_of(
    st.sampled_from(EDGE_INTS),
    st.integers(min_value=INT64_MAX + 1),  # beyond what the database holds
    st.integers(max_value=0),
    st.integers().map(str),
    st.floats(),
    st.booleans(),
    st.integers(1, 10**6).map(float),
)
FIELD_NEAR = {
    "object_type": st.sampled_from(["Activity", "route", " activity", "", "athletes", "activity\x00"]),
    "aspect_type": st.sampled_from(["Create", "rename", "", "delete ", "update\n"]),
    "updates": st.one_of(
        st.none(),
        st.lists(st.text(max_size=5), max_size=3),
        st.text(max_size=10),
        st.dictionaries(st.text(min_size=65, max_size=80), update_values, min_size=1, max_size=2),
        st.dictionaries(update_keys, update_values, min_size=21, max_size=25),
        st.dictionaries(update_keys, json_values, min_size=1, max_size=3),
    ),
}


@st.composite
def event_like_bodies(draw) -> dict[str, Any]:
    """A good event, often for the connected athlete and our subscription, with a few fields (or none)
    dropped, nearly right or anything at all; plus unknown extra fields."""
    body = {name: draw(good) for name, good in FIELD_GOOD.items()}
    if draw(st.booleans()):
        body.update(owner_id=ATHLETE_ID, subscription_id=SUBSCRIPTION_ID)
    if body["object_type"] == "athlete" and draw(st.booleans()):
        body["object_id"] = body["owner_id"]
    for name in draw(st.lists(st.sampled_from(sorted(FIELD_GOOD)), max_size=3, unique=True)):
        how = draw(st.sampled_from(["missing", "near", "near", "any"]))
        if how == "missing":
            del body[name]
        elif how == "near":
            body[name] = draw(FIELD_NEAR.get(name, INT_NEAR))
        else:
            body[name] = draw(json_values)
    for key, value in draw(st.dictionaries(any_text, json_values, max_size=3)).items():
        body.setdefault(key, value)
    return body


def event_is_valid(body: Any) -> bool:
    """The webhook's contract, stated independently: a Strava event with every field well typed."""
    if not isinstance(body, dict):
        return False

    def whole(name: str, low: int) -> bool:
        value = body.get(name)
        return type(value) is int and low <= value <= INT64_MAX

    updates = body.get("updates", {})
    updates_ok = (
        isinstance(updates, dict)
        and len(updates) <= 20
        and all(len(key) <= 64 and isinstance(value, str | int | float) for key, value in updates.items())
    )
    return (
        body.get("object_type") in ("activity", "athlete")
        and body.get("aspect_type") in ("create", "update", "delete")
        and whole("object_id", 1)
        and whole("owner_id", 1)
        and whole("subscription_id", 1)
        and whole("event_time", 0)
        and updates_ok
        and (body["object_type"] != "athlete" or body["object_id"] == body["owner_id"])
    )


def is_ours(body: dict[str, Any]) -> bool:
    return body["owner_id"] == ATHLETE_ID and body["subscription_id"] == SUBSCRIPTION_ID


CONTENT_TYPES = st.one_of(
    st.sampled_from(
        [
            "application/json",
            "application/json; charset=utf-8",
            "application/json; charset=utf-16",
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data",
            "multipart/form-data; boundary=xyz",
            "application/octet-stream",
            "",
        ]
    ),
    st.text(alphabet=string.ascii_letters + string.digits + "/;=-+. ", max_size=40),
)


@pytest.fixture
def webhook_ready(services, connected):
    services.store.set_subscription_id(SUBSCRIPTION_ID)
    return services


def check_webhook_answer(services, caplog, response, body: Any) -> None:
    label(
        f"webhook answered {response.status_code} {(response.get_json(silent=True) or {}).get('status', '')}"
    )
    assert response.status_code < 500
    stored = inbox_rows(services)
    if event_is_valid(body):
        assert response.status_code == 200
        answer = response.get_json()
        # One answer whatever became of the delivery: the inbox says whether it was taken.
        assert answer == {"status": "received"}
        if is_ours(body):
            assert len(stored) == 1
            row = stored[0]
            assert (row.object_type, row.object_id, row.owner_id, row.event_time) == (
                body["object_type"],
                body["object_id"],
                body["owner_id"],
                body["event_time"],
            )
            assert set(row.updates) == set(body.get("updates", {}))
        else:
            assert stored == []
    else:
        assert_json_error(response)
        assert stored == []
    assert errors_logged(caplog) == []


@pytest.mark.parametrize(
    "body",
    ["[" * 60_000, "{" + '"a":{' * 12_000, "[" * 30_000 + "]" * 30_000],
    ids=["open arrays", "open objects", "closed arrays"],
)
def test_a_deeply_nested_body_is_a_400_not_a_traceback(client, webhook_ready, body):
    """Issue 20: '[' * 60000 as a body gave a 500 with a traceback."""
    response = client.post("/webhooks/strava", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json() == {"error": "body must be a JSON object"}
    assert inbox_rows(webhook_ready) == []


@fuzz
@given(body=st.one_of(event_like_bodies(), json_values), ascii_only=st.booleans(), content_type=CONTENT_TYPES)
def test_webhook_post_with_arbitrary_json(client, webhook_ready, caplog, body, ascii_only, content_type):
    reset_inbox(webhook_ready)
    caplog.clear()
    # Non-ASCII text goes raw (UTF-8, lone surrogates passed through) half of the time.
    data = json.dumps(body, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    response = client.post("/webhooks/strava", data=data, content_type=content_type)
    check_webhook_answer(webhook_ready, caplog, response, body)


@fuzz
@given(data=st.binary(max_size=3000), content_type=CONTENT_TYPES)
def test_webhook_post_with_arbitrary_bytes(client, webhook_ready, caplog, data, content_type):
    reset_inbox(webhook_ready)
    caplog.clear()
    response = client.post("/webhooks/strava", data=data, content_type=content_type)
    try:
        body = json.loads(data)
    except ValueError:
        body = None
    check_webhook_answer(webhook_ready, caplog, response, body)


def test_the_webhook_oracle_agrees_with_the_known_cases():
    """The independent statement of validity itself, on the cases test_webhook.py pins down."""
    assert event_is_valid(event(111))
    assert event_is_valid({k: v for k, v in event(111).items() if k != "updates"})
    assert event_is_valid(event(ATHLETE_ID, object_type="athlete", updates={"authorized": "false"}))
    assert not event_is_valid(event(111, object_type="athlete"))
    assert not event_is_valid({**event(111), "object_id": True})
    assert not event_is_valid({**event(111), "object_id": 2**63})
    assert not event_is_valid({**event(111), "updates": {"title": None}})


# --- 2. GET /webhooks/strava (subscription validation) ------------------------------------------------------

hub_keys = st.one_of(st.sampled_from(["hub.mode", "hub.challenge", "hub.verify_token"]), st.text(max_size=12))
hub_values = st.one_of(
    st.sampled_from(["subscribe", VERIFY_TOKEN, "", VERIFY_TOKEN + " "]), st.text(max_size=40)
)


@fuzz
@given(
    pairs=st.lists(st.tuples(hub_keys, hub_values), max_size=6),
    right_token=st.booleans(),
    raw=st.one_of(st.none(), raw_query_strings),
)
def test_subscription_validation_with_arbitrary_query(client, services, caplog, pairs, right_token, raw):
    caplog.clear()
    if right_token:
        pairs = [("hub.mode", "subscribe"), ("hub.verify_token", VERIFY_TOKEN), *pairs]
        raw = None if raw is None else f"hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&{raw}"
    response, args = get_with_query(client, "/webhooks/strava", pairs, raw)

    assert response.status_code < 500
    answers = (
        args.get("hub.mode") == "subscribe"
        and "hub.challenge" in args
        and args.get("hub.verify_token") == VERIFY_TOKEN
    )
    assert (response.status_code == 200) == answers
    if answers:
        assert response.get_json() == {"hub.challenge": args["hub.challenge"]}
    if response.status_code != 200:
        assert_json_error(response)
        assert "hub.challenge" not in response.get_json()
    assert errors_logged(caplog) == []


# --- 3. GET /oauth/callback ---------------------------------------------------------------------------------

scope_values = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "activity:read_all,activity:write",
            " activity:write , activity:read_all ,,",
            "read",
            "",
        ]
    ),
    st.text(max_size=60),
)
optional_text = st.one_of(st.none(), st.just(""), st.text(max_size=60))


def start_connect(client) -> str:
    response = client.get("/connect")
    assert response.status_code == 302
    return parse_qs(urlsplit(response.headers["Location"]).query)["state"][0]


FULL_SCOPE = "read,activity:read_all,activity:write,profile:read_all"


@fuzz
@given(
    # Weighted towards a callback that gets as far as the code exchange, then varied from there.
    started=st.sampled_from([True, True, True, False]),
    state_kind=st.sampled_from(["match", "match", "match", "other", "absent"]),
    other_state=st.text(max_size=40),
    code=st.one_of(
        st.text(min_size=1, max_size=60), optional_text, st.sampled_from(["code-1000", "expired"])
    ),
    scope=st.one_of(st.just(FULL_SCOPE), scope_values),
    error=st.one_of(st.none(), st.just(""), st.text(max_size=60), st.just("access_denied")),
    extra=st.lists(st.tuples(st.text(max_size=10), st.text(max_size=20)), max_size=3),
    raw=st.one_of(st.none(), st.none(), raw_query_strings),
)
def test_oauth_callback_with_arbitrary_query(
    app, services, strava, caplog, started, state_kind, other_state, code, scope, error, extra, raw
):
    strava.calls.clear()
    caplog.clear()
    client = app.test_client()  # a fresh browser: no state left over from the previous example
    real_state = start_connect(client) if started else None

    params = {"state": real_state if state_kind == "match" else other_state, "code": code, "scope": scope}
    if state_kind == "absent":
        params.pop("state")
    pairs = [(k, v) for k, v in params.items() if v is not None] + extra
    if error is not None:
        pairs.append(("error", error))
    if raw is not None and real_state and state_kind == "match":
        raw = f"state={real_state}&{raw}"
    response, sent = get_with_query(client, "/oauth/callback", pairs, raw)

    assert response.status_code < 500
    assert_page_with_reason(response)  # no code in these examples is one the host issued
    assert athlete_count(services) == 0
    state_matched = real_state is not None and sent.get("state") == real_state
    granted = {scope.strip() for scope in sent.get("scope", "").split(",")}
    exchanged = (
        state_matched
        and not sent.get("error")
        and bool(sent.get("code"))
        and {"activity:read_all", "activity:write"} <= granted
    )
    label(f"callback answered {response.status_code}" + (" after asking the host" if exchanged else ""))
    # The host is asked (once, to exchange the code) exactly when the state matches and nothing else is
    # wrong; a forged or missing state never reaches it.
    assert strava.calls == ([("POST", "/oauth/token")] if exchanged else [])
    assert errors_logged(caplog) == []


# --- 4. POST /settings --------------------------------------------------------------------------------------

SETTINGS_FIELDS = ("weight", "weight_unit", "units", "detection", "note_style", "paused")
ALLOWED = {
    "weight_unit": ("kg", "lb"),
    "units": ("host", "metric", "imperial"),
    "detection": ("auto", "tagged"),
    "note_style": ("compact", "detailed"),
}
DEFAULTS = {"weight": "", "weight_unit": "kg", "units": "host", "detection": "auto", "note_style": "detailed"}
BASELINE = {
    "weight_kg": 80.0,
    "weight_unit": "kg",
    "units": "metric",
    "detection": "tagged",
    "note_style": "compact",
    "paused": True,
}
KNOWN_KEYS = {"weight_kg", "weight_unit", "units", "detection", "note_style", "paused"}

form_values = st.one_of(
    st.sampled_from(
        [
            "",
            "kg",
            "lb",
            "host",
            "metric",
            "imperial",
            "auto",
            "tagged",
            "compact",
            "detailed",
            "on",
            "off",
            "0",
            "false",
            "NaN",
            "nan",
            "inf",
            "-Infinity",
            "1e400",
            "1e-400",
            "-0",
            "25",
            "300",
            "300.0001",
            "24.999",
            "55",
            "661",
            "661.4",
            "70,5",
            " 70 ",
            "1_000",
            "0x10",
            "٧٠",  # Arabic-Indic digits: float() reads them
            "7\x000",
        ]
    ),
    st.text(max_size=30),
    st.text(max_size=2000),
    st.floats().map(str),
    st.integers().map(str),
)
form_keys = st.one_of(st.sampled_from(SETTINGS_FIELDS), st.text(max_size=10)).filter(
    lambda k: k != "csrf_token"
)


@pytest.fixture
def signed_in_client(client, connected):
    with client.session_transaction() as session:
        session["athlete_id"] = connected
        session["session_version"] = 0  # as the OAuth callback signs in a new athlete
    page = client.get("/settings").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    return client, token


def check_stored_settings(stored: dict[str, Any], sent: dict[str, str]) -> None:
    """Saved settings hold known keys with valid values, and they are what the form said."""
    assert set(stored) <= KNOWN_KEYS
    weight = stored["weight_kg"]
    assert weight is None or (isinstance(weight, float) and 25.0 <= weight <= 300.0)
    assert (weight is None) == (not sent.get("weight", "").strip())
    assert stored["weight_unit"] in ("kg", "lb")
    assert stored.get("units", "absent") in ("metric", "imperial", "absent")
    assert stored["detection"] in ("auto", "tagged")
    assert stored["note_style"] in ("compact", "detailed")
    assert isinstance(stored["paused"], bool)
    for name in ("weight_unit", "detection", "note_style"):
        assert stored[name] == sent.get(name, DEFAULTS[name])
    units = sent.get("units", "host")
    assert stored.get("units") == (None if units == "host" else units)
    assert stored["paused"] == (sent.get("paused", "") not in ("", "off", "false", "0"))


@fuzz
@given(pairs=st.lists(st.tuples(form_keys, form_values), max_size=10), multipart=st.booleans())
def test_settings_form_with_arbitrary_fields(services, signed_in_client, caplog, pairs, multipart):
    client, token = signed_in_client
    services.store.update_settings(ATHLETE_ID, BASELINE)
    caplog.clear()
    data = MultiDict([("csrf_token", token), *pairs])
    response = client.post(
        "/settings",
        data=data,
        content_type="multipart/form-data" if multipart else "application/x-www-form-urlencoded",
    )

    label(f"settings answered {response.status_code}")  # shown by --hypothesis-show-statistics
    assert response.status_code in (303, 400), response.status_code
    stored = services.store.athlete(ATHLETE_ID).settings
    sent = first_values(pairs)
    if response.status_code == 400:
        page = response.get_data(as_text=True)
        assert "Nothing was saved" in page
        assert re.search(r'<p class="error" id="[a-z_]+-error">[^<]+</p>', page)
        assert stored == BASELINE
    else:
        assert response.headers["Location"].endswith("/settings?saved=1")
        check_stored_settings(stored, sent)
    # A choice outside its list can never be saved.
    if any(name in sent and sent[name] not in allowed for name, allowed in ALLOWED.items()):
        assert response.status_code == 400
    assert errors_logged(caplog) == []


# --- 5. request size limits ---------------------------------------------------------------------------------


def padded(body: dict[str, Any], size: int) -> bytes:
    """The JSON of body, padded with whitespace (still valid JSON) to exactly size bytes."""
    data = json.dumps(body).encode()
    return data[:-1] + b" " * (size - len(data)) + data[-1:]


def test_the_limit_is_64_kib():
    assert MAX_REQUEST_BYTES == 64 * 1024


def test_a_webhook_body_of_exactly_the_limit_is_read(client, webhook_ready):
    response = client.post("/webhooks/strava", data=padded(event(111), MAX_REQUEST_BYTES))
    assert response.get_json() == {"status": "received"}
    assert len(inbox_rows(webhook_ready)) == 1


@pytest.mark.parametrize("size", [MAX_REQUEST_BYTES + 1, 4 * MAX_REQUEST_BYTES, 1024 * 1024])
@pytest.mark.parametrize("content_type", ["application/json", "text/plain", "multipart/form-data"])
def test_a_webhook_body_over_the_limit_is_refused_and_not_stored(client, webhook_ready, size, content_type):
    response = client.post("/webhooks/strava", data=padded(event(111), size), content_type=content_type)
    assert response.status_code == 413
    assert_json_error(response)
    assert inbox_rows(webhook_ready) == []


def test_a_chunked_webhook_body_over_the_limit_is_refused(client, webhook_ready):
    # No Content-Length (chunked transfer, as gunicorn passes it on): the limit applies while reading.
    response = client.post(
        "/webhooks/strava",
        input_stream=io.BytesIO(padded(event(111), 2 * MAX_REQUEST_BYTES)),
        content_type="application/json",
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 413
    assert_json_error(response)
    assert inbox_rows(webhook_ready) == []


@pytest.mark.parametrize("multipart", [False, True])
def test_a_settings_form_over_the_limit_is_refused_and_changes_nothing(services, signed_in_client, multipart):
    client, token = signed_in_client
    services.store.update_settings(ATHLETE_ID, BASELINE)
    response = client.post(
        "/settings",
        data={"csrf_token": token, "weight": "7" * MAX_REQUEST_BYTES, "units": "imperial"},
        content_type="multipart/form-data" if multipart else "application/x-www-form-urlencoded",
    )
    assert response.status_code == 413
    assert_page_with_reason(response)
    assert services.store.athlete(ATHLETE_ID).settings == BASELINE


def test_a_settings_form_with_too_many_fields_is_refused(services, signed_in_client):
    client, token = signed_in_client
    services.store.update_settings(ATHLETE_ID, BASELINE)
    data = MultiDict([("csrf_token", token)] + [("units", "imperial")] * 1500)
    response = client.post("/settings", data=data, content_type="multipart/form-data")
    assert response.status_code == 413
    assert services.store.athlete(ATHLETE_ID).settings == BASELINE


# --- 6. no secret or description in the logs ----------------------------------------------------------------

CADENCE_STREAMS = {
    "time": {"data": list(range(0, 600, 10)), "series_type": "time"},
    "distance": {"data": [i * 22.0 for i in range(60)], "series_type": "time"},
    "cadence": {"data": [80] * 60, "series_type": "time"},
}
PRIVATE_WORDS = "Knee still sore after the fall, told nobody but my physio Marguerite"


def everything_logged(caplog) -> str:
    formatter = logging.Formatter()
    parts = [caplog.text]
    for record in caplog.records:
        parts += [str(record.msg), record.getMessage(), repr(record.args)]
        if record.exc_info:
            parts.append(formatter.formatException(record.exc_info))
    return "\n".join(parts)


def test_no_token_secret_code_or_description_is_ever_logged(app, services, strava, caplog):
    caplog.set_level(logging.DEBUG)  # the root and its handler: every logger that does not opt out
    issued: list[dict[str, Any]] = []
    grant = strava.grant

    def recording_grant(*args, **kwargs):
        issued.append(grant(*args, **kwargs))
        return issued[-1]

    strava.grant = recording_grant
    client = app.test_client()
    strava.add_athlete(ATHLETE_ID)

    # The host's validation of the subscription, right and wrong.
    ok = client.get(
        "/webhooks/strava",
        query_string={"hub.mode": "subscribe", "hub.challenge": "c", "hub.verify_token": VERIFY_TOKEN},
    )
    assert ok.status_code == 200
    wrong_token = "guessed-verify-token-4417"
    assert (
        client.get(
            "/webhooks/strava",
            query_string={"hub.mode": "subscribe", "hub.challenge": "c", "hub.verify_token": wrong_token},
        ).status_code
        == 403
    )

    # A refused code, then a real connection.
    scope = "read,activity:read_all,activity:write,profile:read_all"
    refused_code = "made-up-code-90321"
    state = start_connect(client)
    assert client.get(f"/oauth/callback?state={state}&code={refused_code}&scope={scope}").status_code == 400
    code = strava.issue_code(ATHLETE_ID)
    state = start_connect(client)
    assert client.get(f"/oauth/callback?state={state}&code={code}&scope={scope}").status_code == 200

    # The access token is about to expire (refreshed before the call), and the host then refuses the
    # refreshed one once (a second refresh and a retry).
    with services.store.session() as session:
        session.execute(update(Athlete).where(Athlete.id == ATHLETE_ID).values(expires_at=int(time.time())))
    strava.fail("GET", r"/activities/\d+$", 401)
    strava.add_activity(
        ATHLETE_ID, 601, name="Sunday #retro run", description=PRIVATE_WORDS, streams=CADENCE_STREAMS
    )
    services.store.set_subscription_id(SUBSCRIPTION_ID)
    assert client.post("/webhooks/strava", json=event(601)).get_json() == {"status": "received"}
    run_queue(services)

    description = strava.description(601)
    assert description.startswith(PRIVATE_WORDS) and "Backstride" in description  # the note was written
    assert len(issued) >= 3  # connect, the refresh before the call, the refresh after the 401

    logged = everything_logged(caplog)
    assert "athlete 90210 connected" in logged and "host calls" in logged  # web and worker both captured
    secrets = {
        "client secret": CLIENT_SECRET,
        "verify token": VERIFY_TOKEN,
        "wrong verify token": wrong_token,
        "OAuth code": code,
        "refused OAuth code": refused_code,
        "athlete's description": PRIVATE_WORDS,
    }
    for number, tokens in enumerate(issued):
        secrets[f"access token {number}"] = tokens["access_token"]
        secrets[f"refresh token {number}"] = tokens["refresh_token"]
    for number, line in enumerate(description.splitlines()):
        if len(line.strip()) >= 12:
            secrets[f"description line {number}"] = line.strip()
    leaked = [name for name, secret in secrets.items() if secret in logged]
    assert leaked == []
