from django.apps import AppConfig


class TomPittGoogleConfig(AppConfig):
    name = "tom_pittgoogle"
    verbose_name = "Pitt-Google alert broker"
    default_auto_field = "django.db.models.BigAutoField"
