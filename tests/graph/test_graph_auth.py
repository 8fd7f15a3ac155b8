"""Token side: scope per cloud, a CA setting the environment cannot override, msal errors mapped."""

from __future__ import annotations

import pytest

from entrasync.adapters.graph.auth import MsalTokenProvider, graph_scope, make_requests_session, token_error
from entrasync.adapters.graph.errors import GraphStopError, GraphTransientError


@pytest.mark.parametrize(
    ("graph_url", "scope"),
    [
        ("https://graph.microsoft.com", "https://graph.microsoft.com/.default"),
        ("https://graph.microsoft.com/", "https://graph.microsoft.com/.default"),
        ("https://graph.microsoft.us", "https://graph.microsoft.us/.default"),
        ("https://dod-graph.microsoft.us", "https://dod-graph.microsoft.us/.default"),
        ("https://microsoftgraph.chinacloudapi.cn", "https://microsoftgraph.chinacloudapi.cn/.default"),
        # the emulator (or any stand-in) accepts the public Graph resource
        ("https://127.0.0.1:8443", "https://graph.microsoft.com/.default"),
    ],
)
def test_scope_follows_the_cloud(graph_url: str, scope: str) -> None:
    assert graph_scope(graph_url) == scope


def test_requests_session_ignores_ca_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/env/requests.pem")
    monkeypatch.setenv("CURL_CA_BUNDLE", "/env/curl.pem")
    session = make_requests_session("/ours/ca.pem")
    assert session.trust_env is False
    settings = session.merge_environment_settings("https://login.test/x", {}, None, None, None)
    assert settings["verify"] == "/ours/ca.pem"
    # Without our own bundle: certifi, still not the environment's.
    default = make_requests_session(None).merge_environment_settings("https://login.test/x", {}, None, None, None)
    assert default["verify"] not in ("/env/requests.pem", "/env/curl.pem")


def test_msal_error_becomes_stop_error_without_secret() -> None:
    err = token_error(
        {
            "error": "invalid_client",
            "error_description": "AADSTS7000215: Invalid client secret provided.\r\nTrace ID: abc\r\nCorrelation ID: d",
        }
    )
    assert isinstance(err, GraphStopError)
    text = str(err)
    assert "invalid_client" in text and "AADSTS7000215: Invalid client secret provided." in text
    assert "Trace ID" not in text
    assert "secret" in text  # the hint says what to fix
    assert err.code == "invalid_client"


def test_unreachable_identity_platform_is_not_a_stop_error() -> None:
    provider = MsalTokenProvider(
        login_url="https://127.0.0.1:9",  # nothing listens on the discard port
        tenant_id="t",
        client_id="c",
        client_credential="s3cret-value",
        timeout=2.0,
    )
    with pytest.raises(GraphTransientError) as info:
        provider()
    assert "s3cret-value" not in str(info.value)
