"""Token side: scope per cloud, a CA setting the environment cannot override, msal errors mapped."""

from __future__ import annotations

import pytest

from entrasync.adapters.graph.auth import MsalTokenProvider, graph_scope, token_error
from entrasync.adapters.graph.errors import GraphStopError, GraphTransientError
from entrasync.adapters.graph.identity_http import IdentityHttp
from entrasync.adapters.graph.retry import RetryBudget


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


def test_identity_http_ignores_ca_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/env/requests.pem")
    monkeypatch.setenv("CURL_CA_BUNDLE", "/env/curl.pem")
    monkeypatch.setenv("SSL_CERT_FILE", "/env/ssl.pem")
    http = IdentityHttp(ca_bundle=None, timeout=5, budget=RetryBudget())
    assert http._http._trust_env is False  # httpx reads no CA, proxy or netrc setting from the environment
    http.close()


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
    assert "nothing answered at https://127.0.0.1:9" in str(info.value)
    assert "3 attempt(s)" in str(info.value)  # a closed port: two quick retries, not ten
