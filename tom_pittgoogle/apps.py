from django.apps import AppConfig


class TomPittGoogleConfig(AppConfig):
    name = "tom_pittgoogle"
    verbose_name = "Pitt-Google alert broker"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
        from .credentials import connect_request_signals

        connect_request_signals()

    def data_services(self) -> list[dict[str, str]]:
        """TOM Toolkit 3's integration point: the DataService that ``tom_dataservices`` offers on its pages."""
        return [{"class": f"{self.name}.dataservices.PittGoogleDataService"}]
