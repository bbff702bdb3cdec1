"""The task queue: django-q2 wired for this project, and what the template adds to it.

This app is the template's, not yours: bring its updates in with `cruft update`
rather than editing it (README.md says where things are). Your code lives in your
own app: tasks.py, schedules.py, models, views.
"""
