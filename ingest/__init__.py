"""wsgi-fleet per-host agent: receives mod_wsgi telemetry, decodes, forwards.

Plain Python: nothing here imports Django, so the agent installs on any
host that runs Apache + mod_wsgi.
"""

__version__ = "0.1.0"
