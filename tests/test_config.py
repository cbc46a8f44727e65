from __future__ import annotations

import os
import subprocess
import sys

import pytest

from dashboard.config import load as config
from dashboard.config.settings import ConfigError


def load_toml(tmp_path, text, env=None):
    p = tmp_path / "dashboard.toml"
    p.write_text(text)
    return config.load(p, env=env or {})


def test_the_contract_example_loads(tmp_path):
    s = load_toml(tmp_path, '''
interval_s = 1
data_dir = "/var/lib/dashboard"
public_url = "https://dash.example"
[mysql]
url = "mysql://monitor:s3cret@127.0.0.1:3306/"
pool_capacity = 100
connections_per_hour_limit = 500
[redis]
url = "redis://127.0.0.1:6379/0"
[[queues]]
name = "emails"
kind = "redis-list"
key = "queue:emails"
[[probes]]
name = "home"
url = "https://shop.example/health"
[rules.db_pool_utilization]
warning = 80
critical = 95
for_s = 60
[[notify]]
kind = "webhook"
url = "https://hooks.example/oncall"
min_severity = "warning"
''')
    assert s.mysql.password == "s3cret" and s.mysql.pool_capacity == 100
    assert s.queues[0].key == "queue:emails"
    assert s.rules["db_pool_utilization"]["for_s"] == 60


@pytest.mark.parametrize("text, key", [
    ("interval_s = 0", "interval_s"),
    ("interval_s = 'fast'", "interval_s"),
    ('timezone = "Mars/Olympus"', "timezone"),
    ('[mysql]\nurl = "postgres://x@h/"', "mysql.url"),
    ('[mysql]\nurl = "mysql://u:p@h:3306/"\npool_capacity = 2.5', "mysql.pool_capacity"),
    ('[redis]\nurl = "http://h"', "redis.url"),
    ('[[queues]]\nname = "q"\nkind = "kafka"', "queues[0].kind"),
    ('[rules.db_pool_utilisation]\nwarning = 1', "rules.db_pool_utilisation"),
    ('[rules.host_cpu]\nwarnin = 1', "rules.host_cpu.warnin"),
    ('[[notify]]\nkind = "email"', "notify[0].to"),
    ('colour = "blue"', "colour"),
    ('[[probes]]\nname = "home"\nurl = "http://127.0.0.1:99999/health"', "probes[0].url"),
    ('[phpfpm]\nurl = "http://h:80a/status"', "phpfpm.url"),
    ("store_buffer_s = -1", "store_buffer_s"),
    ("store_buffer_s = 'long'", "store_buffer_s"),
])
def test_a_bad_value_is_an_error_naming_its_key(tmp_path, text, key):
    with pytest.raises(ConfigError) as e:
        load_toml(tmp_path, text)
    assert str(e.value).startswith(f"{key}: ")
    assert "\n" not in str(e.value)


def test_environment_overrides_the_file(tmp_path):
    s = load_toml(tmp_path, 'interval_s = 5\n[mysql]\nurl = "mysql://a:b@h:1/"',
                  env={"DASHBOARD_INTERVAL_S": "2", "DASHBOARD_MYSQL_URL": "mysql://m:pw@db:3307/"})
    assert s.interval_s == 2.0
    assert (s.mysql.host, s.mysql.port, s.mysql.user) == ("db", 3307, "m")


def test_store_buffer_s_defaults_to_300_and_comes_from_the_file_or_the_environment(tmp_path):
    assert load_toml(tmp_path, "").store_buffer_s == 300
    assert load_toml(tmp_path, "store_buffer_s = 60").store_buffer_s == 60
    assert load_toml(tmp_path, "store_buffer_s = 60",
                     env={"DASHBOARD_STORE_BUFFER_S": "0"}).store_buffer_s == 0


def test_masked_settings_contain_no_secret(tmp_path):
    s = load_toml(tmp_path, '''
[mysql]
url = "mysql://monitor:Very-Secret-1@127.0.0.1:3306/"
[smtp]
password = "Very-Secret-2"
[[notify]]
kind = "webhook"
url = "https://hooks.example/x"
secret = "Very-Secret-3"
''')
    text = repr(s.masked())
    assert "Very-Secret" not in text
    assert {"Very-Secret-1", "Very-Secret-2", "Very-Secret-3"} <= set(s.secrets())


def test_the_cli_stops_with_one_line_and_status_2_on_bad_config(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text('[mysql]\nurl = "mysql://u:topsecret@h:notaport/"\n')
    for command in ("serve", "check"):
        r = subprocess.run([sys.executable, "-m", "dashboard", "--config", str(p), command],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 2
        assert r.stderr.strip().splitlines() == ["configuration error: mysql.url: the port is not a number"]
        assert "topsecret" not in r.stdout + r.stderr


def test_mysql_may_list_several_named_servers_and_a_sql_queue_names_its_own():
    """Issue 17: [[mysql]] with names; [mysql] alone keeps working unlabelled."""
    one = config.from_dict({"mysql": {"url": "mysql://m:p@db1:3306/"}})
    assert one.mysql is not None and one.mysql.name is None and one.mysql_servers == (one.mysql,)
    s = config.from_dict({
        "mysql": [{"name": "primary", "url": "mysql://m:p1@db1:3306/"},
                  {"name": "replica1", "url": "mysql://m:p2@db2:3306/", "slow_ms": 500}],
        "queues": [{"name": "jobs", "kind": "sql", "server": "replica1"},
                   {"name": "mails", "kind": "sql"}]})
    assert [m.name for m in s.mysql_servers] == ["primary", "replica1"]
    assert s.mysql == s.mysql_servers[0] and s.mysql_servers[1].slow_ms == 500
    assert s.queues[0].options["url"] == "mysql://m:p2@db2:3306/"
    assert s.queues[1].options["url"] is None                   # the first server's, as before
    assert {"p1", "p2"} <= set(s.secrets())
    masked = s.masked()
    assert [m["password"] for m in masked["mysql_servers"]] == ["***", "***"]
    assert "p2" not in str(masked)
    for raw, key in [
        ([{"url": "mysql://m:p@db1/"}], "mysql[0].name"),
        ([{"name": "a", "url": "mysql://m:p@db1/"}, {"name": "a", "url": "mysql://m:p@db2/"}],
         "mysql[1].name"),
        ([{"name": "a", "url": "http://db1/"}], "mysql[0].url"),
        ([{"name": "a b", "url": "mysql://m:p@db1/"}], "mysql[0].name"),
    ]:
        with pytest.raises(ConfigError) as e:
            config.from_dict({"mysql": raw})
        assert e.value.key == key, (raw, str(e.value))
    with pytest.raises(ConfigError, match="queues\\[0\\].server"):
        config.from_dict({"mysql": [{"name": "a", "url": "mysql://m:p@db1/"}],
                          "queues": [{"name": "q", "kind": "sql", "server": "b"}]})


@pytest.mark.parametrize("value, why", [
    ("mysql://u:p@h:3306/db", "expected postgresql://user:pass@host:port/db"),
    ("postgresql://u:p@h:5432/", "expected one database name"),
    ("postgresql://u:p@h:54x2/db", "the port is not a number"),
    ("postgresql://u:p@/db", "the URL has no host"),
    ("postgresql://h:5432/db", "the URL has no user name"),
    ("postgresql://u:p@h/db?sslmode=disable", "unknown URL parameter 'sslmode'"),
])
def test_a_bad_store_url_stops_start_up_naming_the_key_without_its_password(tmp_path, value, why):
    with pytest.raises(ConfigError) as e:
        load_toml(tmp_path, f'store_url = "{value}"')
    assert str(e.value).startswith(f"store_url: {why}")
    assert "\n" not in str(e.value) and ":p@" not in str(e.value)
    with pytest.raises(ConfigError) as e:
        load_toml(tmp_path, "", env={"DASHBOARD_STORE_URL": value})
    assert str(e.value).startswith("store_url: ")


def test_store_url_comes_from_the_file_or_the_environment_and_empty_means_sqlite(tmp_path):
    assert load_toml(tmp_path, "").store_url is None
    assert load_toml(tmp_path, 'store_url = ""').store_url is None
    url = "postgresql://dash:Pg-Secret-9@db.example:5433/dashboard"
    s = load_toml(tmp_path, 'store_url = "postgresql://a:b@h/x"', env={"DASHBOARD_STORE_URL": url})
    assert s.store_url == url and s.store_pool_size == 20
    assert load_toml(tmp_path, "store_pool_size = 4").store_pool_size == 4
    assert load_toml(tmp_path, "", env={"DASHBOARD_STORE_POOL_SIZE": "3"}).store_pool_size == 3
    with pytest.raises(ConfigError) as e:
        load_toml(tmp_path, "store_pool_size = 1")
    assert str(e.value).startswith("store_pool_size: ")
    shown = repr(s.masked())
    assert "Pg-Secret-9" not in shown and "postgresql://dash:***@db.example:5433/dashboard" in shown
    assert "Pg-Secret-9" in s.secrets()


def test_the_cli_stops_with_one_line_and_status_2_on_a_bad_store_url(tmp_path):
    r = subprocess.run([sys.executable, "-m", "dashboard", "check"], capture_output=True, text=True,
                       timeout=60, env={**os.environ, "DASHBOARD_CONFIG": "",
                                        "DASHBOARD_STORE_URL": "postgres://u:topsecret@h:99999/db"})
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "configuration error: store_url: the port is not a number from 1 to 65535,"
        " got 'postgres://u:***@h:99999/db'"]
    assert "topsecret" not in r.stdout + r.stderr
