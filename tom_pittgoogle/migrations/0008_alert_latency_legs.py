# The three legs of each alert's latency (tom_pittgoogle.core.latency).

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('tom_pittgoogle', '0007_heartbeat_subscription_filters'),
    ]

    operations = [
        migrations.AddField(
            model_name='alert',
            name='published_at',
            field=models.DateTimeField(blank=True, help_text='When Pitt-Google published its message on Pub/Sub (none for BigQuery rows).', null=True),
        ),
        migrations.AddField(
            model_name='alert',
            name='committed_at',
            field=models.DateTimeField(blank=True, help_text='When the transaction that stored it from Pub/Sub committed.', null=True),
        ),
        migrations.AddField(
            model_name='alert',
            name='exposure_to_survey',
            field=models.FloatField(blank=True, help_text="Seconds from the exposure to the survey's publication (Kafka timestamp).", null=True),
        ),
        migrations.AddField(
            model_name='alert',
            name='survey_to_broker',
            field=models.FloatField(blank=True, help_text="Seconds from the survey's publication to Pitt-Google's Pub/Sub publication.", null=True),
        ),
        migrations.AddField(
            model_name='alert',
            name='broker_to_tom',
            field=models.FloatField(blank=True, help_text="Seconds from Pitt-Google's Pub/Sub publication to the commit in this TOM.", null=True),
        ),
        migrations.AddField(
            model_name='ingesterheartbeat',
            name='latency',
            field=models.JSONField(blank=True, default=list, help_text='Per stream over the last hour: alerts, alerts per minute, p50/p95/p99 of each latency leg.'),
        ),
        migrations.AddIndex(
            model_name='alert',
            index=models.Index(fields=['committed_at'], name='tom_pittgoogle_alert_committed'),
        ),
    ]
