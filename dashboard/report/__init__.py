"""The managers' daily capacity summary (issue 6).

Core (no Flask): ``days`` (local days, DST-right), ``areas`` (what is reported, levels from the
alert rules), ``reader`` (rollups + raw tail), ``stats`` (one series' figures), ``history``
(trend and runway), ``build`` (the document), ``render`` (text, CSV, e-mail HTML), ``charts``
(plotly, imported only when a page is built), ``mailer`` (the morning e-mail).
Delivery: ``views`` (page and API), ``cli`` (``python -m dashboard report``).
"""
