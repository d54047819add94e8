"""The Celery application. Tasks are discovered in each app's ``tasks.py``."""
import logging
import os

from celery import Celery
from celery.signals import beat_init, celeryd_after_setup

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("lexique")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

logger = logging.getLogger("lexique.broker")


@celeryd_after_setup.connect
def consume_this_installations_queues(sender, instance, **kwargs):
    """``celery worker -Q default`` / ``-Q training`` consume this installation's queues, whatever their prefix.

    The prefix may be derived from the database (config.broker.choose_queue_prefix): the commands in the README
    keep naming the queues ``default`` and ``training``.
    """
    from django.conf import settings

    from config.broker import installation_queue_name, log_broker_choice

    queues = instance.app.amqp.queues
    for name in list(queues.consume_from or {}):
        actual = installation_queue_name(name, settings.QUEUE_PREFIX)
        if actual != name:
            queues.select_add(queues[actual])  # declared as Celery declares a missing queue (own exchange)
            queues.deselect(name)
    log_broker_choice()
    logger.info("Worker %s consumes %s", sender, ", ".join(sorted(queues.consume_from or queues)))


@beat_init.connect
def log_the_broker_at_beat_start(sender, **kwargs):
    from config.broker import log_broker_choice

    log_broker_choice()
