"""What a steady-state worker keeps in memory (issue 9): rarely used parts load on first use."""
from __future__ import annotations


def test_a_worker_loads_neither_the_report_builder_nor_prometheus_client_until_asked():
    # Both are used rarely (a report a morning, a scrape): a steady-state worker keeps ~2.5 MB
    # less without them. The routes still work: they import on first use.
    import subprocess
    import sys
    from pathlib import Path
    code = ("import sys, tempfile\n"
            "from dashboard.app import create_app\nfrom dashboard.config.load import from_dict\n"
            "from dashboard.runtime import Runtime\n"
            "s = from_dict({'data_dir': tempfile.mkdtemp(), 'async_mode': 'threading'})\n"
            "create_app(s, Runtime(s, []), async_mode='threading')\n"
            "print(sorted(m for m in sys.modules if m.startswith(('prometheus_client', "
            "'dashboard.report.build', 'dashboard.report.render'))))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         cwd=str(Path(__file__).resolve().parent.parent))
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"
