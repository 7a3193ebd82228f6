"""The service layer both doors stand on: the API (api/) and the queue worker (workers/).

Settings, the model as the settings describe it, one recognition and its refusals, the result schema, jobs
(in this process, or through Redis to queue workers in `service.queue`). Nothing here speaks HTTP or runs
a Celery worker: a refusal carries a status code and a readable detail, and the API maps it to an answer.
"""
