"""The constraints of 0003, in a transaction of their own: on PostgreSQL a table cannot be
altered while the backfill's deferred foreign-key checks are pending."""

import django.db.models.functions.text
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('promotions', '0003_signoffs'),
    ]

    operations = [
        migrations.AddConstraint(
            model_name='campaign',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('approval__isnull', True), ('approved_by__isnull', True)), models.Q(('approval__isnull', False), ('approval_id', django.db.models.functions.text.Concat('id', models.Value(':'), 'approved_by_id', models.Value(':'), models.Value('approver'), output_field=models.CharField())), ('approved_by__isnull', False)), _connector='OR'), name='campaign_approval_is_the_approvers_signoff'),
        ),
        migrations.AddConstraint(
            model_name='code',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('source', 'generated'), _negated=True), models.Q(('max_uses', 1), ('max_uses__isnull', False)), _connector='OR'), name='code_generated_single_use'),
        ),
    ]
