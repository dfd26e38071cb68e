"""``wsgi-fleet-console`` / ``python -m console``: the console's management commands, as
``manage.py`` gives them in a checkout, for an installed wheel (``wsgi-fleet-console
migrate``, ``createhost``, ``check --deploy`` ...). daphne serves ``console.asgi:application``.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
    from django.core.management import execute_from_command_line

    args = sys.argv if argv is None else argv
    execute_from_command_line(["wsgi-fleet-console", *args[1:]])


if __name__ == "__main__":
    main()
