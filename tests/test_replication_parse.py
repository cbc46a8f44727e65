"""The MySQL 8 path of replica monitoring (issue 17). MySQL 8 is not installable on the test
machine (MariaDB replaces it in Debian), so its ``SHOW REPLICA STATUS`` is read here from
recorded output: the MySQL 8.0 reference manual's example (section "SHOW REPLICA STATUS
Statement"), with its MySQL 8 column names, plus the same row with a stopped SQL thread.
MariaDB's spelling is exercised against a real replica in tests/test_db_replication.py."""
from __future__ import annotations

from dashboard.collectors.mysql import replication

# SHOW REPLICA STATUS\G on MySQL 8.0.22+ (the columns this monitor reads, as the manual shows
# them; values as pymysql returns them: strings, ints, None for NULL).
MYSQL8_ROW = {
    "Replica_IO_State": "Waiting for source to send event", "Source_Host": "127.0.0.1",
    "Source_User": "root", "Source_Port": 13000, "Connect_Retry": 1,
    "Source_Log_File": "master-bin.000001", "Read_Source_Log_Pos": 927,
    "Relay_Log_File": "slave-relay-bin.000002", "Relay_Log_Pos": 1145,
    "Relay_Source_Log_File": "master-bin.000001", "Replica_IO_Running": "Yes",
    "Replica_SQL_Running": "Yes", "Last_Errno": 0, "Last_Error": "", "Skip_Counter": 0,
    "Exec_Source_Log_Pos": 927, "Seconds_Behind_Source": 0, "Last_IO_Errno": 0,
    "Last_IO_Error": "", "Last_SQL_Errno": 0, "Last_SQL_Error": "",
    "Replica_SQL_Running_State": "Replica has read all relay log; waiting for more updates",
    "Channel_Name": "",
}


def test_mysql8_column_names_give_role_threads_and_lag():
    assert replication.STATUS_SQL["mysql"] == "SHOW REPLICA STATUS"
    s = replication.parse([{**MYSQL8_ROW, "Seconds_Behind_Source": 42}])
    assert s == replication.ReplicaStatus("127.0.0.1:13000", True, True, 42.0, None)
    assert s.values() == {"db.replica": 1.0, "db.replica_lag_s": 42.0, "db.replica_io_running": 1.0,
                          "db.replica_sql_running": 1.0, "db.replica_running": 1.0}


def test_a_stopped_sql_thread_has_no_lag_and_says_its_last_error():
    row = {**MYSQL8_ROW, "Replica_SQL_Running": "No", "Seconds_Behind_Source": None,
           "Last_SQL_Errno": 1062, "Last_SQL_Error": "Could not execute Write_rows event on "
           "table shop.orders; Duplicate entry '1' for key 'PRIMARY'"}
    s = replication.parse([row])
    assert (s.sql_running, s.io_running, s.lag_s) == (False, True, None)
    assert s.values()["db.replica_running"] == 0.0 and s.values()["db.replica_lag_s"] is None
    assert "Duplicate entry" in replication.describe(s)
    assert "SQL thread STOPPED" in replication.describe(s)


def test_no_row_is_a_primary_and_several_channels_report_the_worst():
    assert replication.parse([]) is None
    assert replication.describe(None).startswith("role: primary")
    connecting = {**MYSQL8_ROW, "Channel_Name": "b", "Replica_IO_Running": "Connecting",
                  "Seconds_Behind_Source": 7, "Last_IO_Error": "error connecting to master"}
    s = replication.parse([MYSQL8_ROW, connecting])
    assert (s.io_running, s.sql_running, s.lag_s) == (False, True, 7.0)
    assert s.last_error == "error connecting to master"
