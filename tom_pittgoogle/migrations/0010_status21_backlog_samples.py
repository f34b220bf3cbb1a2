# The ingesters' backlog over the night (tom_pittgoogle.models.BacklogSample), and the heartbeat's latency over the night.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('tom_pittgoogle', '0009_target_index'),
    ]

    operations = [
        migrations.AlterField(
            model_name='ingesterheartbeat',
            name='latency',
            field=models.JSONField(blank=True, default=list, help_text='Per stream over the last hour and over the night: alerts, alerts per minute, p50/p95/p99 of each latency leg.'),
        ),
        migrations.CreateModel(
            name='BacklogSample',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('at', models.DateTimeField()),
                ('backlog', models.IntegerField(help_text='Alerts received and waiting to be stored.')),
                ('heartbeat', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='backlog_samples', to='tom_pittgoogle.ingesterheartbeat')),
            ],
            options={
                'ordering': ['heartbeat', 'at'],
                'indexes': [models.Index(fields=['at'], name='tom_pittgoogle_backlog_at'), models.Index(fields=['heartbeat', 'at'], name='tom_pittgoogle_backlog_run_at')],
            },
        ),
    ]
