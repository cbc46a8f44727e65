"""Bad input gets a 4xx, never a 500: ids too large for SQLite, unknown API paths (JSON like
every other API answer)."""
from __future__ import annotations

import pytest

from tests.auth_helpers import add_token

HUGE = "99999999999999999999999"          # past SQLite's 64-bit integers: OverflowError before
JUST_PAST = str(2 ** 63)
LARGEST = str(2 ** 63 - 1)                 # a valid id that does not exist


@pytest.mark.parametrize("ident", [HUGE, JUST_PAST, LARGEST])
def test_ending_a_silence_with_an_id_too_large_is_a_json_404(operator_client, ident):
    r = operator_client.delete(f"/api/silences/{ident}")
    assert r.status_code == 404 and r.is_json and "error" in r.get_json()


@pytest.mark.parametrize("ident", [HUGE, JUST_PAST, LARGEST])
def test_revoking_a_token_with_an_id_too_large_is_a_json_404(app, ident):
    api = app.test_client()
    r = api.delete(f"/api/admin/tokens/{ident}",
                   headers={"Authorization": f"Bearer {add_token(app, 'admin')}"})
    assert r.status_code == 404 and r.is_json and "error" in r.get_json()


@pytest.mark.parametrize("path", ["/admin/users/{}/role", "/admin/users/{}/password",
                                  "/admin/users/{}/delete", "/admin/tokens/{}/revoke"])
@pytest.mark.parametrize("ident", [HUGE, JUST_PAST])
def test_admin_forms_with_an_id_too_large_answer_404(client, path, ident):
    r = client.post(path.format(ident), data={"role": "viewer"})
    assert r.status_code == 404


def test_an_unknown_api_path_is_a_json_404(client):
    r = client.get("/api/no/such/thing")
    assert r.status_code == 404 and r.is_json
    assert r.get_json()["error"].startswith("Not Found")


def test_a_wrong_method_on_the_api_is_a_json_405_with_the_allowed_methods(client):
    r = client.put("/api/latest")
    assert r.status_code == 405 and r.is_json and "error" in r.get_json()
    assert "GET" in r.headers["Allow"]


def test_pages_keep_their_html_404(client):
    r = client.get("/no/such/page")
    assert r.status_code == 404 and r.mimetype == "text/html"
