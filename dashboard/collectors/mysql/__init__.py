"""The MySQL/MariaDB collector: its connection, status figures, statement digests and the
top-statements reader."""
