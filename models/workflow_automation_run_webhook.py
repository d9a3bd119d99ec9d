"""Webhooks sent by the queue: one request per run, never replayed (the transport is
``services/webhook_transport.py``)."""

import logging
from datetime import timedelta

from odoo import _, fields, models
from odoo.tools import format_datetime

from ..services.webhook_transport import WebhookError, WebhookRefused, display_url

_logger = logging.getLogger(__name__)

# The wait before a webhook's second attempt; it doubles for each further one
WEBHOOK_RETRY_DELAY = timedelta(minutes=1)


class WorkflowAutomationRun(models.Model):
    _inherit = "workflow.automation.run"

    def _deliver_webhooks(self, action, records):
        """Send the webhook of each run; return ``{run id: what came of it}``: done, failed, or
        due again later. Test records are not sent (DESIGN.md principle 9)."""
        held = records.filtered("workflow_test_id")
        notes = self._record_not_sent(action, held) if held else {}
        return {
            run.id: {"state": "done", "message": notes[run.res_id]} if run.res_id in notes
            else run._send_webhook(action, records.browse(run.res_id))
            for run in self
        }

    def _send_webhook(self, action, record):
        """POST this run's webhook; return the run's new values."""
        attempt = self.attempt_count + 1
        url = display_url(action.webhook_url)
        try:
            answer = action._post_webhook(record, {"Idempotency-Key": self._idempotency_key()})
        except WebhookRefused as error:
            return self._webhook_not_sent_vals(url, self.env._(error.problem))
        except WebhookError as error:
            return dict(self._webhook_failure_vals(action, url, attempt, error), attempt_count=attempt)
        except Exception as error:  # noqa: BLE001 - a field of the document that fails to compute: this run only
            _logger.warning("Webhook of action %s failed on %s: %s", action.id, record, error)
            return self._webhook_not_sent_vals(url, str(error) or error.__class__.__name__)
        if attempt > 1:
            answer = _("%(answer)s (attempt %(attempt)s)", answer=answer, attempt=attempt)
        return {"state": "done", "message": answer, "attempt_count": attempt}

    def _webhook_failure_vals(self, action, url, attempt, error):
        """Failed, or, if it may pass later and retries are left, due again after a growing
        delay (1 minute, then 2, 4, ...): the queue never waits for an endpoint to recover."""
        problem = self.env._(error.problem)
        if not error.retryable or attempt > action.webhook_retries:
            return {"state": "failed", "message": _(
                "The webhook to %(url)s failed after %(count)s attempt(s): %(problem)s.",
                url=url, count=attempt, problem=problem,
            )}
        date_due = fields.Datetime.now() + WEBHOOK_RETRY_DELAY * 2 ** (attempt - 1)
        return {"state": "scheduled", "date_due": date_due, "message": _(
            "The webhook to %(url)s failed at attempt %(attempt)s of %(attempts)s (%(problem)s): next "
            "attempt on %(date)s.",
            url=url, attempt=attempt, attempts=action.webhook_retries + 1, problem=problem,
            date=format_datetime(self.env, date_due, dt_format="short"),
        )}

    def _webhook_not_sent_vals(self, url, problem):
        return {"state": "failed", "message": _("The webhook to %(url)s was not sent: %(problem)s.", url=url,
                                                problem=problem)}

    def _idempotency_key(self):
        """The same for every attempt of this run, unique across databases: a receiver that
        got it before drops the request."""
        return f"{self.env['ir.config_parameter'].sudo().get_param('database.uuid')}-{self.id}"
