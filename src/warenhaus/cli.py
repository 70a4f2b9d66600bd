"""The ``warenhaus`` command: one entry point for running and operating the shop.

    warenhaus migrate                 create or update the database (and the cache table)
    warenhaus serve [--dev]           gunicorn in production mode (--dev: Django's dev server)
    warenhaus worker                  deliver mail and run background jobs
    warenhaus demo [--no-serve]       fresh demo data, then server and worker on 127.0.0.1:8000
    warenhaus staff create --email E --role R [--role R2] [--password P]
    warenhaus vouchers block --code C | --campaign ID [--revoke] | --pattern 'P*' --reason R
    warenhaus vouchers list [--status S]
    warenhaus remediation preview|execute|watch|show|export|list ...   clean up after a leak or a price typo
    warenhaus manage <django command> anything else Django offers

Every subcommand maps onto a Django management command (``warenhaus.ops``, ``warenhaus.core``,
``warenhaus.promotions``, ``warenhaus.remediation``).
"""

from __future__ import annotations

import os
import sys

SUBCOMMANDS = {
    "migrate": "wh_migrate",
    "serve": "wh_serve",
    "worker": "wh_worker",
    "demo": "wh_demo",
    "staff": "wh_staff",
    "vouchers": "wh_vouchers",
    "remediation": "wh_remediation",
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "warenhaus.settings")
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(__doc__)
        return 0
    from django.core.management import execute_from_command_line

    head, rest = argv[0], argv[1:]
    if head == "manage":
        execute_from_command_line(["warenhaus", *rest])
        return 0
    command = SUBCOMMANDS.get(head)
    if command is None:
        print(f"warenhaus: unknown command '{head}'\n{__doc__}", file=sys.stderr)
        return 2
    execute_from_command_line(["warenhaus", command, *rest])
    return 0


if __name__ == "__main__":
    sys.exit(main())
