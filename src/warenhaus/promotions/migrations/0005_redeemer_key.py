"""``customer_key`` of usages and redemptions is named ``redeemer_key`` (the deals' household key
is another idea). State only: the column keeps its name, the constraint its columns."""

from django.db import migrations, models


def _redeemer_key():
    return models.CharField(max_length=300, db_column="customer_key")


class Migration(migrations.Migration):
    dependencies = [("promotions", "0004_signoff_constraints")]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.RemoveConstraint(
                    model_name="customerusage", name="usage_unique_customer"
                ),
                migrations.RenameField("customerusage", "customer_key", "redeemer_key"),
                migrations.AlterField("customerusage", "redeemer_key", _redeemer_key()),
                migrations.AddConstraint(
                    model_name="customerusage",
                    constraint=models.UniqueConstraint(
                        fields=("campaign", "redeemer_key"), name="usage_unique_customer"
                    ),
                ),
                migrations.RenameField("redemption", "customer_key", "redeemer_key"),
                migrations.AlterField("redemption", "redeemer_key", _redeemer_key()),
            ],
        )
    ]
