"""The queue of delayed actions (DESIGN.md principle 6): one cron takes the due runs."""

import logging
import threading
import time

from psycopg2 import errorcodes

from odoo import api, fields, models
from odoo.service.model import PG_CONCURRENCY_EXCEPTIONS_TO_RETRY
from odoo.tools import SQL, config

from .workflow_automation_action import QUEUED_KINDS

_logger = logging.getLogger(__name__)

# Due runs taken, executed and committed together by the queue's cron (webhooks aside).
QUEUE_BATCH_SIZE = 200
# The cron's time limit when Odoo's configuration sets none, in seconds (Odoo's default)
DEFAULT_CRON_TIME_LIMIT = 120


class WorkflowAutomationRun(models.Model):
    _inherit = "workflow.automation.run"

    def _wake_queue(self):
        """Have the queue's cron run when the first of these scheduled runs is due."""
        if self:
            cron = self.env.ref("crm_workflow_automation.workflow_automation_run_cron")
            cron.sudo()._trigger(at=min(self.mapped("date_due")))

    @api.model
    def _cron_execute_due_runs(self):
        """Execute the due runs within the time budget of a call; then sleep until the next one.

        Rows are taken with ``FOR UPDATE SKIP LOCKED``: processes sharing the queue never take
        the same run, and a batch whose process dies is rolled back and taken again. A batch
        that meets a concurrent update is not failed either: it is rolled back and left due,
        and the cron, woken again, takes it on a fresh snapshot. Local actions go by batches;
        webhooks one by one, each committed with its outcome before the next is sent, so that
        a process that dies never sends a delivered request again.
        """
        auto_commit = not getattr(threading.current_thread(), "testing", False)
        deadline = time.monotonic() + self._time_budget()
        done = 0
        while time.monotonic() < deadline and (runs := self._lock_due_runs(QUEUE_BATCH_SIZE)):
            try:
                runs._execute_scheduled()
            except PG_CONCURRENCY_EXCEPTIONS_TO_RETRY as error:
                self.env.cr.rollback()
                _logger.info("Workflow queue: %s, %s runs left due", errorcodes.lookup(error.pgcode), len(runs))
                break
            done += len(runs)
            if not auto_commit:
                break
            # One transaction per batch, by design: a process that dies loses only its batch.
            self.env.cr.commit()  # pylint: disable=invalid-commit
        while (run := self._lock_due_runs(1, outbound=True)) and (not done or run._webhook_fits(deadline)):
            run._execute_scheduled()
            done += 1
            if auto_commit:
                self.env.cr.commit()  # pylint: disable=invalid-commit
        # What is left goes to a new call of the cron (woken below when due): reported as
        # remaining, Odoo would call this method again at once, under the same time limit.
        self.env["ir.cron"]._notify_progress(done=done, remaining=0)
        self.search([("state", "=", "scheduled")], order="date_due", limit=1)._wake_queue()

    @api.model
    def _time_budget(self):
        """Seconds a call of the queue's cron may take: half of the cron's time limit, Odoo's
        ``limit_time_real_cron`` (``limit_time_real`` when it is -1; 120 when there is none)."""
        limit = config["limit_time_real_cron"]
        if limit is None or limit < 0:
            limit = config["limit_time_real"]
        return (limit if limit and limit > 0 else DEFAULT_CRON_TIME_LIMIT) / 2

    def _webhook_fits(self, deadline):
        """Whether this webhook ends before ``deadline`` in the worst case (no answer: the
        timeout to connect, then to answer)."""
        return time.monotonic() + 2 * self.action_id.webhook_timeout <= deadline

    @api.model
    def _lock_due_runs(self, limit, outbound=False):
        """Take up to ``limit`` due runs: of the local actions, or (``outbound``) webhooks."""
        self.flush_model(["state", "date_due", "action_kind"])
        kinds = SQL(
            "action_kind IN %s" if outbound else "(action_kind IS NULL OR action_kind NOT IN %s)", QUEUED_KINDS
        )
        self.env.cr.execute(SQL(
            """SELECT id FROM workflow_automation_run WHERE state = 'scheduled' AND date_due <= %s AND %s
               ORDER BY date_due, id LIMIT %s FOR UPDATE SKIP LOCKED""",
            fields.Datetime.now(), kinds, limit,
        ))
        return self.browse(row[0] for row in self.env.cr.fetchall())
