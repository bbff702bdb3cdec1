from django.apps import AppConfig


class {{ cookiecutter.app_name.title().replace('_', '') }}Config(AppConfig):
    name = "{{ cookiecutter.app_name }}"
