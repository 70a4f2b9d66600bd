# States as choices (no stored value changes) and the hold's turn owner named ``who`` as
# everywhere else in deals (the column keeps its name: nothing changes in the database).

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('deals', '0004_hold_replaced_quantity'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RenameField(model_name='hold', old_name='customer_key', new_name='who'),
                migrations.AlterField(
                    model_name='hold',
                    name='who',
                    field=models.CharField(db_column='customer_key', help_text="Whose turn got the hold (the ticket's or wait-list entry's owner).", max_length=300),
                ),
            ],
        ),
        migrations.AlterField(
            model_name='hold',
            name='source',
            field=models.CharField(choices=[('queue', 'queue'), ('waitlist', 'wait list')], default='queue', max_length=10),
        ),
        migrations.AlterField(
            model_name='ticket',
            name='state',
            field=models.CharField(choices=[('waiting', 'waiting'), ('admitted', 'admitted'), ('sold_out', 'sold out'), ('expired', 'expired'), ('left', 'left')], default='waiting', max_length=10),
        ),
    ]
