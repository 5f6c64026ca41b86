"""Parameter merging, ${env:NAME} resolution and secret masking."""

from __future__ import annotations

import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.connectors import ConnectorError, is_secret_key, listed_names, mask_secrets, merge_params, resolve_env


def test_merge_inline_wins_and_dicts_merge_one_level():
    stored = {"url": "http://a", "headers": {"Accept": "json", "X-A": "1"}, "retries": 2}
    inline = {"url": "http://b", "headers": {"X-A": "2", "X-B": "3"}, "json": {"k": 1}}
    merged = merge_params(stored, inline)
    assert merged == {
        "url": "http://b",
        "headers": {"Accept": "json", "X-A": "2", "X-B": "3"},
        "retries": 2,
        "json": {"k": 1},
    }
    assert stored["headers"] == {"Accept": "json", "X-A": "1"}
    assert merge_params({"headers": {"a": "1"}}, {"headers": None}) == {"headers": None}


def test_resolve_env_recursively():
    env = {"TOKEN": "t0k", "HOST": "db"}
    value = {
        "headers": {"Authorization": "Bearer ${env:TOKEN}"},
        "args": ["${env:HOST}:${env:HOST}"],
        "n": 3,
        "plain": "$HOME ${other}",
    }
    assert resolve_env(value, env) == {
        "headers": {"Authorization": "Bearer t0k"},
        "args": ["db:db"],
        "n": 3,
        "plain": "$HOME ${other}",
    }


def test_resolve_env_reads_os_environ_by_default(monkeypatch):
    monkeypatch.setenv("ENGINE_TEST_VAR", "v")
    assert resolve_env("x=${env:ENGINE_TEST_VAR}") == "x=v"


@pytest.mark.parametrize(
    ("value", "named"), [("${env:NOPE_ENGINE}", "NOPE_ENGINE"), ("${env:1x}", "1x")]
)
def test_missing_or_bad_variable_is_named(value, named):
    with pytest.raises(ConnectorError) as caught:
        resolve_env({"a": [value]}, {})
    assert not caught.value.retryable
    assert named in caught.value.message


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("password", True),
        ("PASSWD", True),
        ("api_key", True),
        ("private_key", True),
        ("X-Api-Key", True),
        ("Authorization", True),
        ("client_secret", True),
        ("access_token", True),
        ("credentials", True),
        ("Cookie", True),
        ("Set-Cookie", True),
        ("X-Auth", True),
        ("session_id", True),
        ("X-Amz-Signature", True),
        ("sig", True),
        ("DB_PASS", True),
        ("--api-key", True),
        ("bypass", False),
        ("page", False),
        ("url", False),
        ("headers", False),
        ("method", False),
        ("to", False),
    ],
)
def test_is_secret_key(name, secret):
    assert is_secret_key(name) is secret


def test_mask_secrets_nested_and_inside_strings():
    params = {
        "url": "https://bob:pw1@example.com/x?api_key=k1&page=2",
        "headers": {"Authorization": "Bearer t1", "Accept": "json"},
        "password": "pw2",
        "items": [{"api_key": "k2", "name": "n"}],
        "dsn": "host=db user=app password=pw3 dbname=x",
        "credentials": {"user": "u", "pass": "p"},
    }
    assert mask_secrets(params) == {
        "url": "https://bob:***@example.com/x?api_key=***&page=2",
        "headers": {"Authorization": "***", "Accept": "json"},
        "password": "***",
        "items": [{"api_key": "***", "name": "n"}],
        "dsn": "host=db user=app password=*** dbname=x",
        "credentials": {"user": "***", "pass": "***"},  # the shape stays, every value is masked
    }
    assert params["password"] == "pw2"


SECRET_NAMES = st.sampled_from(
    ["password", "api_key", "Authorization", "X-Auth-Token", "client_secret", "private_key"]
)
PLAIN_NAMES = st.sampled_from(["url", "method", "name", "user", "headers", "body", "items"])
SECRETS = st.one_of(st.text(max_size=8), st.binary(max_size=8)).map(lambda tail: f"SECRET{tail!r}")
PLAIN_VALUES = st.one_of(st.integers(), st.booleans(), st.none(), st.text(alphabet="abcdef :/"))
# Secret values appear only under secret-looking keys, at any depth.
TREES = st.recursive(
    PLAIN_VALUES,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(PLAIN_NAMES, children, max_size=3),
        st.dictionaries(SECRET_NAMES, st.one_of(SECRETS, children), max_size=2),
    ),
    max_leaves=15,
)


@settings(suppress_health_check=[HealthCheck.too_slow])  # first run builds hypothesis' charmap
@given(TREES)
def test_no_secret_value_survives_masking(value):
    assert "SECRET" not in repr(mask_secrets(value))


@given(st.text(alphabet=string.ascii_letters + string.digits + "-_.~!$%", min_size=1))
def test_no_url_password_or_secret_query_value_survives_masking(secret):
    url = f"https://bob:SECRET{secret}@example.com/p?page=2&access_token=SECRET{secret}"
    assert "SECRET" not in mask_secrets(url)


def test_masking_rules_for_headers_queries_command_lines_and_texts():
    assert mask_secrets({
        "url": "http://h/login?auth=A1&sig=S1&page=1",
        "headers": {"Cookie": "sid=C1", "X-Auth": "X1", "Set-Cookie": "session=C2", "Accept": "json"},
        "args": ["mysql", "--password", "P1", "-u", "admin:U1", "DB_PASSWORD=N1", "--token=T1", "-p", "P2",
                 "--user", "bob:U2", "-H", "X-Auth: H1", "--verbose", "plain"],
        "command": "curl -H 'Cookie: a=C3' -uadm:U3 --user=ad:U4 --api-key K1 https://ghp_0123456789abcdefXYZ@github.com/x",
        "git": "ssh://git@github.com/x.git",
        "stderr": 'error: {"password": "J1", "user": "u"}\nToken: L1\nok: fine',
    }) == {
        "url": "http://h/login?auth=***&sig=***&page=1",
        "headers": {"Cookie": "***", "X-Auth": "***", "Set-Cookie": "***", "Accept": "json"},
        "args": ["mysql", "--password", "***", "-u", "admin:***", "DB_PASSWORD=***", "--token=***", "-p", "***",
                 "--user", "bob:***", "-H", "X-Auth: ***", "--verbose", "plain"],
        "command": "curl -H 'Cookie: ***' -uadm:*** --user=ad:*** --api-key *** https://***@github.com/x",
        "git": "ssh://git@github.com/x.git",
        "stderr": 'error: {"password": "***", "user": "u"}\nToken: ***\nok: fine',
    }


def test_references_stay_and_a_secrets_parameter_names_more():
    assert mask_secrets({
        "args": ["--password", "${env:PW}", "-u", "admin:${env:UPW}"],
        "headers": {"Authorization": "Bearer ${env:T}", "X-Tenant": "tenant-1"},
        "region": "eu", "query": "region=eu&x=1",
        "secrets": ["X-Tenant", "region"],
    }) == {
        "args": ["--password", "${env:PW}", "-u", "admin:${env:UPW}"],
        "headers": {"Authorization": "Bearer ${env:T}", "X-Tenant": "***"},
        "region": "***", "query": "region=***&x=1",
        "secrets": ["X-Tenant", "region"],  # names, not values: kept
    }
    with pytest.raises(ConnectorError, match="secrets must be a list"):
        listed_names({"secrets": "X-Tenant"})
