"""Connector lookup: built-ins and plugins from a real dist-info on sys.path."""

from __future__ import annotations

import sys
import textwrap

import pytest

from engine.connectors import Connector, ConnectorError, get_connector, known_types
from engine.connectors.rest import RestConnector

BUILTINS = ["COMMAND", "GIT", "POSTGRES", "REST", "SMTP", "SQLITE"]

PLUGIN_MODULE = """
class EchoConnector:
    name = "ECHO"

    def run(self, params, *, idempotency_key, timeout):
        return {"params": params, "key": idempotency_key, "timeout": timeout}


NOT_A_CONNECTOR = object()
"""

ENTRY_POINTS = """
[engine.connectors]
echo = engine_test_plugin:EchoConnector
broken = engine_test_plugin_missing:Whatever
notconn = engine_test_plugin:NOT_A_CONNECTOR
rest = engine_test_plugin:EchoConnector
"""


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """Install a tiny plugin distribution: a module plus its dist-info, on sys.path."""
    (tmp_path / "engine_test_plugin.py").write_text(PLUGIN_MODULE)
    dist = tmp_path / "engine_test_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: engine-test-plugin\nVersion: 1.0\n"
    )
    (dist / "entry_points.txt").write_text(textwrap.dedent(ENTRY_POINTS))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop("engine_test_plugin", None)


def test_builtins_are_known_and_case_insensitive():
    assert set(BUILTINS) <= set(known_types())
    connector = get_connector("rest")
    assert isinstance(connector, RestConnector)
    assert isinstance(connector, Connector)
    assert get_connector("Sqlite").name == "SQLITE"


def test_unknown_type_lists_the_known_ones():
    with pytest.raises(ConnectorError) as caught:
        get_connector("FTP")
    assert not caught.value.retryable
    assert "unknown connector type 'FTP'" in caught.value.message
    assert ", ".join(BUILTINS) in caught.value.message
    assert caught.value.details["known_types"] == known_types()


@pytest.mark.usefixtures("plugin")
def test_plugin_is_loaded_from_its_entry_point():
    assert {"ECHO", "BROKEN", "NOTCONN"} <= set(known_types())
    connector = get_connector("Echo")
    out = connector.run({"a": 1}, idempotency_key="e:2", timeout=None)
    assert out == {"params": {"a": 1}, "key": "e:2", "timeout": None}


@pytest.mark.usefixtures("plugin")
def test_builtin_wins_over_a_plugin_of_the_same_name():
    assert isinstance(get_connector("REST"), RestConnector)


@pytest.mark.usefixtures("plugin")
def test_broken_plugins_explain_themselves():
    with pytest.raises(ConnectorError) as caught:
        get_connector("broken")
    assert "cannot be loaded: ModuleNotFoundError" in caught.value.message
    with pytest.raises(ConnectorError) as caught:
        get_connector("notconn")
    assert "is not a connector" in caught.value.message
