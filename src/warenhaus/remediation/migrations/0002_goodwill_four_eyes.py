"""Goodwill jobs are executed by someone other than who prepared them, held by the database;
the goodwill campaigns made so far get their author (the job's preparer) among their sign-offs."""

from django.conf import settings
from django.db import migrations, models


def preparers_as_authors(apps, schema_editor):
    Job = apps.get_model("remediation", "Job")
    Campaign = apps.get_model("promotions", "Campaign")
    Signoff = apps.get_model("promotions", "CampaignSignoff")
    for job in Job.objects.filter(goodwill_campaign__isnull=False, created_by__isnull=False).order_by("pk").iterator():
        c = job.goodwill_campaign_id
        Signoff.objects.bulk_create([Signoff(subject_id=c, user_id=job.created_by_id, role="author", key=f"{c}:{job.created_by_id}:author")], ignore_conflicts=True)
        Campaign.objects.filter(pk=c, created_by__isnull=True).update(created_by_id=job.created_by_id)


class Migration(migrations.Migration):

    dependencies = [
        ('promotions', '0004_signoff_constraints'),
        ('remediation', '0001_initial'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddConstraint(
            model_name='job',
            constraint=models.CheckConstraint(condition=models.Q(('goodwill_campaign__isnull', True), models.Q(('executed_by__isnull', False), models.Q(('executed_by', models.F('created_by')), _negated=True)), _connector='OR'), name='remediation_goodwill_four_eyes'),
        ),
        migrations.RunPython(preparers_as_authors, migrations.RunPython.noop),
    ]
