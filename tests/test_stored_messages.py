"""Messages stored in the database are an English source string and its parameters, rendered in the reader's
language (config.stored_messages): job logs and errors, the audit log's automatic reasons, report labels."""
import json

import pytest
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext_noop

from config.stored_messages import english, message, render, render_all, render_log, stored
from jobs import runner
from jobs.models import Job

pytestmark = pytest.mark.django_db


def test_a_stored_message_is_rendered_in_the_readers_language():
    text = stored(gettext_noop("Revision %(revision)s: %(passages)s passages."), revision=3, passages=120)
    assert json.loads(text) == {"msgid": "Revision %(revision)s: %(passages)s passages.", "params": {"revision": 3, "passages": 120}}
    with translation.override("fr"):
        assert render(text) == "Révision 3 : 120 passages."
    with translation.override("en"):
        assert render(text) == "Revision 3: 120 passages."
    assert english(text) == "Revision 3: 120 passages."


def test_parameters_may_be_messages_lazy_labels_or_lists():
    reason = stored(gettext_noop("Worker %(worker)s restarted during the job."), worker="celery@a")
    text = stored(gettext_noop("%(reason)s Restarted."), reason=reason)
    status = stored(gettext_noop("Message received again while the job is %(status)s: ignored."), status=Job.Status.RUNNING.label)
    listed = stored(gettext_noop("Decision: %(reasons)s"), reasons=[message(gettext_noop("Similarity tests finished.")), "ok"])
    with translation.override("fr"):
        assert render(text) == "Le worker celery@a a redémarré pendant la tâche. Relancée."
        assert render(status) == "Message reçu de nouveau alors que la tâche est en cours : ignoré."
        assert render(listed) == "Décision : Tests de similarité terminés. ok"
    with translation.override("en"):
        assert render(text) == "Worker celery@a restarted during the job. Restarted."
        assert render(status) == "Message received again while the job is running: ignored."


def test_other_text_is_shown_as_it_is():
    assert render("ValueError: boom") == "ValueError: boom"
    assert render('{"msgid": broken') == '{"msgid": broken'
    assert render(None) == ""
    document = {"labels": [stored(gettext_noop("%(term)s (definition)"), term="CAF"), "free"], "n": 3}
    with translation.override("fr"):
        assert render_all(document) == {"labels": ["CAF (définition)", "free"], "n": 3}


def test_a_jobs_log_and_error_are_rendered_for_each_reader():
    job = runner.job_create(kind="index_build")
    runner.job_claim(job=job, worker="celery@a")
    runner.job_log(job=job, message=stored(gettext_noop("%(entries)s entries, %(passages)s passages to encode."), entries=2, passages=5))
    runner.job_log(job=job, message="free text\non two lines")
    runner.job_fail(job=job, error=stored(gettext_noop("Queue unavailable: %(error)s"), error="broker down"))
    job.refresh_from_db()
    assert "Queue unavailable" in job.error and "file d'attente" not in job.error.lower()  # stored: no language
    with translation.override("fr"):
        assert job.error_text == "File d'attente indisponible : broker down"
        log = job.log_text
        assert "] 2 entrées, 5 passages à encoder.\n" in log and "free text\non two lines" in log
        assert "Échec : File d'attente indisponible : broker down" in log
    with translation.override("en"):
        assert job.error_text == "Queue unavailable: broker down"
        assert "] 2 entries, 5 passages to encode.\n" in job.log_text
    assert render_log(job.log).count("\n") == job.log.count("\n")


def test_the_jobs_page_shows_a_stored_error_in_the_readers_language(maintainer_client, settings):
    job = runner.job_create(kind="index_build")
    runner.job_fail(job=job, error=stored(gettext_noop("Queue unavailable: %(error)s"), error="broker down"))
    url = reverse("jobs:job-list")
    assert "File d&#x27;attente indisponible : broker down" in maintainer_client.get(url).content.decode()
    maintainer_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    assert "Queue unavailable: broker down" in maintainer_client.get(url).content.decode()
