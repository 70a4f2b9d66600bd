"""Four eyes held by the database: who took part in each campaign (CampaignSignoff) and the
campaign's approval naming its approver's row (its constraints follow in 0004).

Existing campaigns get their rows from what is known: the author from the audit trail's
``campaign.create`` entry (else ``created_by``), editors from ``campaign.edit`` entries, from
codes added before the approval, and from ``created_by`` (an edit used to make the editor the
author), the approver from ``approved_by``.
A live campaign whose approver had made or edited it was approved against four eyes: it is
paused (audited) for another approver to check; the approver keeps the row the campaign names,
their earlier part is left out of the table (the audit trail keeps it).
"""

import django.db.models.deletion
import django.db.models.functions.text
from django.conf import settings
from django.db import migrations, models

BREACH = "Paused when four eyes became stricter: its approver had made or edited it. Another approver should check it before it is resumed, or revoke it."


def backfill(apps, schema_editor):
    Campaign = apps.get_model("promotions", "Campaign")
    Signoff = apps.get_model("promotions", "CampaignSignoff")
    AuditEntry = apps.get_model("core", "AuditEntry")

    def key(c, user_id, role):
        return f"{c.pk}:{user_id}:{role}"

    for c in Campaign.objects.order_by("pk").iterator():
        entries = AuditEntry.objects.filter(object_type="promotions.campaign", object_id=str(c.pk), actor__isnull=False)
        made_by = entries.filter(action="campaign.create").order_by("at", "pk").values_list("actor_id", flat=True).first() or c.created_by_id
        added = entries.filter(action__in=["campaign.codes_generate", "campaign.codes_import"])
        if c.approved_at is not None:
            added = added.filter(at__lt=c.approved_at)
        edited_by = list((entries.filter(action="campaign.edit") | added).order_by("at", "pk").values_list("actor_id", flat=True))
        if c.created_by_id:
            edited_by.append(c.created_by_id)
        parts = {}
        if made_by:
            parts[made_by] = "author"
        for user_id in edited_by:
            parts.setdefault(user_id, "editor")
        breach = c.approved_by_id is not None and c.approved_by_id in parts
        if c.approved_by_id is not None:
            parts[c.approved_by_id] = "approver"
        Signoff.objects.bulk_create([Signoff(subject_id=c.pk, user_id=u, role=r, key=key(c, u, r)) for u, r in parts.items()])
        if c.approved_by_id is None:
            continue
        c.approval_id = key(c, c.approved_by_id, "approver")
        fields = ["approval"]
        if breach and c.status == "approved":
            AuditEntry.objects.create(action="campaign.pause", object_type="promotions.campaign", object_id=str(c.pk),
                                      before={"status": c.status}, after={"status": "paused"}, reason=BREACH, source="system")
            c.status, c.status_reason = "paused", BREACH
            fields += ["status", "status_reason"]
        c.save(update_fields=fields)


class Migration(migrations.Migration):

    dependencies = [
        ('promotions', '0002_monitors'),
        ('core', '0002_rate_counter'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='CampaignSignoff',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('role', models.CharField(choices=[('author', 'made it'), ('editor', 'edited it'), ('approver', 'approved it')], max_length=10)),
                ('key', models.CharField(max_length=64, unique=True)),
                ('at', models.DateTimeField(auto_now_add=True)),
                ('subject', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='signoffs', to='promotions.campaign')),
                ('user', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['at', 'id'],
                'abstract': False,
                'constraints': [
                    models.UniqueConstraint(fields=('subject', 'user'), name='promotions_campaignsignoff_one_part_per_person'),
                    models.CheckConstraint(condition=models.Q(('role__in', ['author', 'editor', 'approver'])), name='promotions_campaignsignoff_role_known'),
                    models.CheckConstraint(condition=models.Q(('key', django.db.models.functions.text.Concat('subject_id', models.Value(':'), 'user_id', models.Value(':'), 'role', output_field=models.CharField()))), name='promotions_campaignsignoff_key_names_its_row'),
                ],
            },
        ),
        migrations.AddField(
            model_name='campaign',
            name='approval',
            field=models.ForeignKey(blank=True, help_text="The approver's row among those who took part: the database refuses it for an author or an editor.", null=True, on_delete=django.db.models.deletion.RESTRICT, related_name='+', to='promotions.campaignsignoff', to_field='key'),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
