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

    def target_detail_tabs(self) -> list[dict[str, str]]:
        """TOM Toolkit's Target page: a "Pitt-Google" tab listing the alerts attached to the Target."""
        return [{"label": "Pitt-Google", "partial": f"{self.name}/partials/target_alerts_tab.html",
                 "context": f"{self.name}.templatetags.pittgoogle_targets.target_alerts_tab"}]

    def target_detail_buttons(self) -> list[dict[str, str]]:
        """TOM Toolkit's Target page: a button that fetches the Target's Pitt-Google history now."""
        return [{"partial": f"{self.name}/partials/target_history_button.html",
                 "context": f"{self.name}.templatetags.pittgoogle_targets.history_button"}]
