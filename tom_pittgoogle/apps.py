from django.apps import AppConfig


class TomPittGoogleConfig(AppConfig):
    name = "tom_pittgoogle"
    verbose_name = "Pitt-Google alert broker"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.core.signals import request_finished, request_started

        from tom_pittgoogle import (
            checks,  # noqa: F401  (registers the system checks)
            conf,
        )

        # Which code serves a web request (short timeouts, HTML messages) and which a command: with or without
        # this app's middleware.
        request_started.connect(conf.request_started, dispatch_uid="tom_pittgoogle.conf.request_started")
        request_finished.connect(conf.request_finished, dispatch_uid="tom_pittgoogle.conf.request_finished")

        # The positional index of the TOM's Targets follows every save and delete of a Target.
        from tom_targets.base_models import BaseTarget

        from tom_pittgoogle.core.matching import connect_index

        connect_index(BaseTarget)

    def data_services(self) -> list[dict[str, str]]:
        """TOM Toolkit 3's integration point: the DataService that ``tom_dataservices`` offers on its pages."""
        return [{"class": f"{self.name}.adapters.dataservices.PittGoogleDataService"}]
