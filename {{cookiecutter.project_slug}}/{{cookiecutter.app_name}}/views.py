"""Your views: add their URLs to the project's urls.py. (/health/ is the task queue
app's: taskqueue/views.py.)"""
