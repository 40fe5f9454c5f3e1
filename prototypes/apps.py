from django.apps import AppConfig


class PrototypesConfig(AppConfig):
    name = "prototypes"
