from django.apps import AppConfig


class FleetConfig(AppConfig):
    name = "console.fleet"
    label = "fleet"
    verbose_name = "Fleet"

    def ready(self) -> None:
        from . import checks  # noqa: F401 - registers the deploy checks
