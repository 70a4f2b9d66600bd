import getpass
import secrets
import sys

from django.core.management.base import BaseCommand, CommandError

from warenhaus.accounts.roles import ROLES
from warenhaus.core.errors import DomainError


class Command(BaseCommand):
    help = "Manage staff accounts: `staff create --email E --role R [--role R2] [--password P]`."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="create a staff member or add roles to one")
        create.add_argument("--email", required=True)
        create.add_argument(
            "--role", action="append", required=True, choices=sorted(ROLES), help="may be repeated"
        )
        create.add_argument("--name", default="")
        create.add_argument(
            "--password", default=None, help="omit to be asked, or '-' to generate one"
        )
        sub.add_parser("roles", help="list the roles")

    def handle(self, *args, **opts):
        if opts["action"] == "roles":
            for name, text in ROLES.items():
                self.stdout.write(f"{name:22} {text}")
            return
        from warenhaus.accounts.services import create_staff

        password = opts["password"]
        generated = False
        if password == "-":  # noqa: S105  ("-" asks for a generated password)
            password, generated = secrets.token_urlsafe(18), True
        elif password is None:
            if not sys.stdin.isatty():
                raise CommandError(
                    "no password given: pass --password P, or --password - to generate one"
                )
            password = getpass.getpass("Password (at least 12 characters): ")
            if password != getpass.getpass("Again: "):
                raise CommandError("the two passwords differ")
        try:
            user = create_staff(
                email=opts["email"],
                password=password,
                roles=opts["role"],
                name=opts["name"],
                source="cli",
            )
        except DomainError as err:
            raise CommandError(f"{err.code}: {err.detail}") from None
        self.stdout.write(
            self.style.SUCCESS(f"staff {user.email} has roles: {', '.join(sorted(opts['role']))}")
        )
        if generated:
            self.stdout.write(f"password: {password}")
