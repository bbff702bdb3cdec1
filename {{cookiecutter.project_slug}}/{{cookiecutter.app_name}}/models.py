"""Your models. https://docs.djangoproject.com/en/{{ cookiecutter.django_version }}/topics/db/models/"""
