"""``warenhaus vouchers``: the kill switch from the command line, and a list of campaigns.

warenhaus vouchers block --code CODE --reason R
warenhaus vouchers block --campaign ID --reason R      (pauses the campaign; --revoke: for good)
warenhaus vouchers block --pattern 'SOMMER*' --reason R
warenhaus vouchers list [--status approved]
"""

from django.core.management.base import BaseCommand, CommandError

from warenhaus.core.errors import DomainError


class Command(BaseCommand):
    help = "Block voucher codes, campaigns or code patterns (effective for the next request); list campaigns."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        block = sub.add_parser("block", help="block a code, a campaign or a pattern")
        what = block.add_mutually_exclusive_group(required=True)
        what.add_argument("--code")
        what.add_argument("--campaign", type=int)
        what.add_argument("--pattern", help="a prefix and '*', e.g. SOMMER*")
        block.add_argument("--reason", required=True)
        block.add_argument(
            "--revoke",
            action="store_true",
            help="with --campaign: revoke for good instead of pausing",
        )
        block.add_argument(
            "--by", default="", help="e-mail of the staff member acting (for the audit trail)"
        )
        lst = sub.add_parser("list", help="list campaigns")
        lst.add_argument("--status", default="")

    def handle(self, *args, **opts):
        if opts["action"] == "list":
            return self._list(opts["status"])
        from django.contrib.auth import get_user_model

        from warenhaus.promotions import services

        actor = None
        if opts["by"]:
            actor = get_user_model().objects.filter(email=opts["by"].strip().lower()).first()
            if actor is None:
                raise CommandError(f"no account {opts['by']}")
        try:
            if opts["code"]:
                row = services.block_code(
                    code=opts["code"], actor=actor, reason=opts["reason"], source="cli"
                )
                self.stdout.write(
                    self.style.SUCCESS(
                        f"blocked code {row.display_hint} of campaign {row.campaign_id}"
                    )
                )
            elif opts["campaign"] is not None:
                fn = services.revoke_campaign if opts["revoke"] else services.pause_campaign
                c = fn(
                    campaign_id=opts["campaign"], actor=actor, reason=opts["reason"], source="cli"
                )
                self.stdout.write(self.style.SUCCESS(f"campaign {c.pk} ({c.name}) is {c.status}"))
            else:
                out = services.block_pattern(
                    pattern=opts["pattern"], actor=actor, reason=opts["reason"], source="cli"
                )
                self.stdout.write(
                    self.style.SUCCESS(
                        f"blocked {out['blocked']} existing codes matching {out['pattern']}; codes typed later that match are refused too"
                    )
                )
        except DomainError as err:
            raise CommandError(f"{err.code}: {err.detail}") from None

    def _list(self, status):
        from warenhaus.promotions.models import Campaign

        qs = Campaign.objects.all().order_by("id")
        if status:
            qs = qs.filter(status=status)
        self.stdout.write(
            f"{'id':>5}  {'status':9} {'mode':7} {'redeemed':>9} {'limit':>6} {'spent':>12} {'budget':>12}  name"
        )
        for c in qs:
            self.stdout.write(
                f"{c.pk:>5}  {c.status:9} {c.code_mode:7} {c.redeemed_count:>9} {c.total_limit if c.total_limit is not None else '-':>6} "
                f"{c.spent_amount:>12} {c.budget if c.budget is not None else '-':>12}  {c.name}"
            )
