"""Bad input gets a 4xx, never a 500: ids too large for SQLite, non-ASCII digits, unknown API
paths (JSON like every other API answer)."""
from __future__ import annotations

import pytest

from dashboard.config.load import from_dict
from dashboard.config.settings import ConfigError
from tests.support.auth_helpers import add_token

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


@pytest.mark.parametrize("limit", ["\u00b2", "\u0663", "1\u00b2", "+5", " 5", "5 "])
def test_a_statements_limit_in_other_digits_is_a_400(tmp_path, limit):
    from dashboard.app import create_app
    from dashboard.runtime import Runtime
    from tests.support.auth_helpers import logged_in_client
    settings = from_dict({"data_dir": str(tmp_path / "data"), "async_mode": "threading",
                          "mysql": {"url": "mysql://monitor:pw@127.0.0.1:9/"}})
    app = create_app(settings, Runtime(settings), async_mode="threading")   # never started
    r = logged_in_client(app, "viewer").get("/api/db/statements", query_string={"limit": limit})
    assert r.status_code == 400 and "limit" in r.get_json()["error"]


@pytest.mark.parametrize("key, raw", [
    ("report.send_at", {"report": {"send_at": "\u00b2:00"}}),
    ("report.send_at", {"report": {"send_at": "07:\u0663\u0660"}}),
    ("bind", {"bind": "127.0.0.1:\u00b2"}),
    ("bind", {"bind": "127.0.0.1:\u0668\u0660"}),
    ("memcached.url", {"memcached": {"url": "127.0.0.1:\u00b9\u00b9"}}),
])
def test_digits_other_than_0_to_9_in_the_configuration_are_a_one_line_config_error(key, raw):
    with pytest.raises(ConfigError) as e:
        from_dict(raw)
    assert e.value.key == key and "\n" not in str(e.value)


@pytest.mark.parametrize("bind", ["127.0.0.1:\u00b2", "127.0.0.1:\u0668\u0660"])
def test_the_demo_refuses_a_bind_port_in_other_digits_in_one_line(tmp_path, capsys, bind):
    import argparse

    from dashboard.demo.cli import cmd_demo
    assert cmd_demo(argparse.Namespace(data_dir=str(tmp_path), bind=bind, fast=True)) == 2
    assert capsys.readouterr().err.startswith("demo: --bind: expected host:port")
