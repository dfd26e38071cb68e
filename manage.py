#!/usr/bin/env python
"""Django's command-line utility for the wsgi-fleet console, in a checkout (installed:
``wsgi-fleet-console``, the same ``console.__main__``)."""

from console.__main__ import main

if __name__ == "__main__":
    main()
