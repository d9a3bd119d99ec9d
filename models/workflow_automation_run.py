import logging
import threading
import time
from collections import defaultdict
from datetime import timedelta

from markupsafe import Markup
from psycopg2 import errorcodes

from odoo import _, api, fields, models
from odoo.exceptions import UserError
from odoo.osv import expression
from odoo.service.model import PG_CONCURRENCY_EXCEPTIONS_TO_RETRY
from odoo.tools import SQL, config, format_datetime

from ..services.webhook_transport import WebhookError, WebhookRefused, display_url
from .workflow_automation import TARGET_MODELS
from .workflow_automation_action import QUEUED_KINDS

_logger = logging.getLogger(__name__)

# Due runs taken, executed and committed together by the queue's cron (webhooks aside).
QUEUE_BATCH_SIZE = 200
# How long the runs that need no attention are kept (Settings > CRM > Workflow runs)
RETENTION_PARAMETER = "crm_workflow_automation.run_retention_days"
RETENTION_DAYS_DEFAULT = 365
# Runs purged once older than the retention; a failed run only once dismissed
PURGED_STATES = ("done", "skipped", "cancelled")
# The cron's time limit when Odoo's configuration sets none, in seconds (Odoo's default)
DEFAULT_CRON_TIME_LIMIT = 120
# The wait before a webhook's second attempt; it doubles for each further one
WEBHOOK_RETRY_DELAY = timedelta(minutes=1)


class WorkflowAutomationRun(models.Model):
    """One action executed (or not) on one record: the audit trail of the engine."""

    _name = "workflow.automation.run"
    _description = "Workflow Automation Run"
    _order = "id desc"
    _rec_name = "record_name"

    # Runs outlive a deleted workflow: the audit trail stays, its scheduled runs are cancelled.
    workflow_id = fields.Many2one("workflow.automation", ondelete="set null", index=True)
    trigger_id = fields.Many2one("workflow.automation.trigger", ondelete="set null", index=True)
    action_id = fields.Many2one("workflow.automation.action", ondelete="set null", index=True)
    # Kept with the run, so that the usage report groups by it after the action changed or went.
    action_kind = fields.Selection(selection="_selection_action_kind", string="Action kind", readonly=True)
    company_id = fields.Many2one("res.company", required=True, index=True)
    res_model = fields.Selection(TARGET_MODELS, string="Record type", required=True)
    res_id = fields.Many2oneReference(string="Record ID", model_field="res_model", required=True, index=True)
    record_name = fields.Char(string="Record")
    record_ref = fields.Reference(
        selection=TARGET_MODELS, string="Open record", compute="_compute_record_ref"
    )
    state = fields.Selection(
        [
            ("scheduled", "Scheduled"),
            ("done", "Done"),
            ("failed", "Failed"),
            ("skipped", "Skipped"),
            ("cancelled", "Cancelled"),
        ],
        required=True,
        index=True,
    )
    user_id = fields.Many2one("res.users", string="Triggered by", ondelete="set null")
    date = fields.Datetime(default=fields.Datetime.now, required=True, index=True)
    date_due = fields.Datetime(string="Due", index=True, help="When a scheduled run is due.")
    occurrence = fields.Date(help="For a date trigger: the occurrence this run belongs to.")
    stage_ref = fields.Integer(
        string="Stage when scheduled",
        help="Set when the run must be skipped if the record left this stage before it is due.",
    )
    # A webhook's answer (which may carry a token) and errors naming its URL: for managers only.
    message = fields.Text(
        help="The error of a failed run, or why a run was skipped.",
        groups="crm_workflow_automation.group_workflow_automation_manager",
    )
    outcome = fields.Text(
        compute="_compute_outcome",
        help="Why the run failed or was skipped. Shown to those who are not workflow managers: a "
        "webhook's details (its answer, its address) are left out.",
    )
    attempt_count = fields.Integer(string="Attempts", readonly=True, help="How many times a webhook was sent.")
    is_test = fields.Boolean(string="Test", help="Run on a test record.")
    dismissed = fields.Boolean(
        readonly=True, copy=False,
        help="A failed run seen and dealt with: it is deleted with the other runs once older than the retention.",
    )
    # What the record rule of runs checks: the run is visible to those who may read its record.
    record_readable = fields.Boolean(
        string="Record readable", compute="_compute_record_readable", search="_search_record_readable"
    )

    _sql_constraints = [
        (
            "occurrence_uniq",
            "UNIQUE(trigger_id, action_id, res_id, occurrence)",
            "A date trigger runs an action once per record and occurrence.",
        ),
    ]

    @api.depends("res_model", "res_id")
    def _compute_record_ref(self):
        for run in self:
            run.record_ref = f"{run.res_model},{run.res_id}" if run.res_model and run.res_id else False

    @api.depends("message", "action_kind")
    def _compute_outcome(self):
        for run, messages in zip(self, self.sudo(), strict=True):
            run.outcome = messages.message if run.action_kind != "webhook" else False

    @api.depends_context("uid")
    @api.depends("res_model", "res_id")
    def _compute_record_readable(self):
        readable = set()
        for model, runs in self.grouped("res_model").items():
            records = self.env(su=False)[model].with_context(active_test=False).browse(runs.mapped("res_id"))
            readable.update((model, record_id) for record_id in records.exists()._filtered_access("read").ids)
        for run in self:
            run.record_readable = (run.res_model, run.res_id) in readable

    def _search_record_readable(self, operator, value):
        """The runs whose record the current user may read, as one subquery per model.

        Called by the record rule, in a superuser environment: the records are searched
        with the rights of the user himself.
        """
        if operator not in ("=", "!=") or not isinstance(value, bool):
            raise NotImplementedError(f"Searching runs on record_readable {operator} {value!r}")
        env = self.env(su=False)
        domain = expression.OR([
            [("res_model", "=", model), ("res_id", "in", env[model].with_context(active_test=False)._search([]))]
            for model, _label in TARGET_MODELS
            if model in env and env[model].has_access("read")
        ])
        return domain if (operator == "=") == value else ["!", *domain]

    @api.model
    def _selection_action_kind(self):
        return self.env["workflow.automation.action"]._fields["kind"]._description_selection(self.env)

    @api.model
    def _prepare_vals(self, action, record, user, state, message=None):
        return {
            "workflow_id": action.workflow_id.id,
            "trigger_id": action.trigger_id.id,
            "action_id": action.id,
            "action_kind": action.kind,
            "is_test": bool(record.workflow_test_id),
            "company_id": action.trigger_id.company_id.id,
            "res_model": record._name,
            "res_id": record.id,
            "record_name": record.display_name,
            "state": state,
            "user_id": user.id,
            "message": message,
        }

    @api.model
    def _prepare_scheduled_vals(self, action, record, user, date_due, check_stage):
        return dict(
            self._prepare_vals(action, record, user, "scheduled"),
            date_due=date_due,
            stage_ref=record.stage_id.id if check_stage else 0,
        )

    @api.model
    def _fired_before(self, records, trigger_ids):
        """``{(trigger id, record id)}`` of these triggers that have a run on these records.

        The runs are the engine's memory of what fired: "only the first time" triggers
        look here, in one query for the whole batch.
        """
        runs = self.sudo().search_fetch(
            [("trigger_id", "in", list(trigger_ids)), ("res_model", "=", records._name), ("res_id", "in", records.ids)],
            ["trigger_id", "res_id"],
        )
        return {(run.trigger_id.id, run.res_id) for run in runs}

    @api.model_create_multi
    def create(self, vals_list):
        runs = super().create(vals_list)
        scheduled = runs.filtered(lambda run: run.state == "scheduled")
        scheduled.filtered("action_id.delay")._log_on_records()  # not what is only sent in the background
        scheduled._wake_queue()
        runs._notify_failures()
        return runs

    def _notify_failures(self):
        """Tell the followers of each workflow that some of these runs failed.

        Failures on test records are left out: whoever tests sees them in the runs.
        """
        failed = self.filtered(lambda run: run.state == "failed" and not run.is_test and run.workflow_id)
        for workflow, runs in failed.grouped("workflow_id").items():
            workflow._notify_failure(runs)

    def _log_on_records(self):
        """Say in each record's chatter what is pending, in one batch of messages per model."""
        for model, runs in self.grouped("res_model").items():
            records = self.env[model].sudo().browse(runs.mapped("res_id"))
            langs = self.env["workflow.automation.action"]._record_langs(records)
            lines = defaultdict(list)
            for run in runs:
                env = run.with_context(lang=langs[run.res_id]).env
                lines[run.res_id].append(env._(
                    "Scheduled by the workflow “%(workflow)s”: %(action)s, on %(date)s.",
                    workflow=run.workflow_id.with_env(env).name,
                    action=run.action_id.with_env(env).display_name,
                    date=format_datetime(env, run.date_due, dt_format="short"),
                ))
            bodies = {res_id: Markup("<p>%s</p>") % Markup("<br/>").join(texts) for res_id, texts in lines.items()}
            records.browse(list(bodies))._message_log_batch(bodies)

    # ------------------------------------------------------------------
    # The queue of delayed actions (DESIGN.md principle 6)
    # ------------------------------------------------------------------

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

    def _execute_scheduled(self):
        """Execute these runs now, each action once for all its records and triggering user."""
        records = self._existing_records()
        skipped = defaultdict(list)
        batches = defaultdict(list)
        for run in self:
            # written for who reads the runs, whoever runs the queue
            reason = run.with_context(lang=run.workflow_id._readers_lang())._skip_reason(
                records.get((run.res_model, run.res_id))
            )
            if reason:
                skipped[reason].append(run.id)
            else:
                batches[run.action_id, run.user_id, run.followup_effect].append(run.id)
        now = fields.Datetime.now()
        for reason, run_ids in skipped.items():
            self.browse(run_ids).write({"state": "skipped", "message": reason, "date": now})
        for (action, user, followup_effect), run_ids in batches.items():
            self.browse(run_ids)._execute_batch(action.sudo(), user, followup_effect)

    def _existing_records(self):
        """``{(model, id): record}`` for the runs' records that still exist, read together."""
        records = {}
        for model, runs in self.grouped("res_model").items():
            for record in self.env[model].sudo().browse(runs.mapped("res_id")).exists():
                records[model, record.id] = record
        return records

    def _execute_batch(self, action, user, followup_effect):
        records = action.trigger_id._actors(
            self.env[self[0].res_model].with_user(user or self.env.user).browse(self.mapped("res_id")), 1
        )
        kind = action.followup_effect if followup_effect else action.kind
        if kind in QUEUED_KINDS:
            self._deliver_webhooks(action.with_env(records.env), records)
            return
        errors, notes = action.with_env(records.env)._execute_safely(records, kind)
        now = fields.Datetime.now()
        plain = self.filtered(lambda run: run.res_id not in errors and run.res_id not in notes)
        plain.write({"state": "done", "message": False, "date": now})
        for run in self - plain:
            failed = run.res_id in errors
            run.write({
                "state": "failed" if failed else "done",
                "message": errors[run.res_id] if failed else notes[run.res_id],
                "date": now,
            })
        (self - plain)._notify_failures()

    # ------------------------------------------------------------------
    # Webhooks: one request per run, never replayed
    # ------------------------------------------------------------------

    def _deliver_webhooks(self, action, records):
        """Send the webhook of each run, and record what came of it: done, failed, or due
        again later. Test records are not sent (DESIGN.md principle 9)."""
        held = records.filtered("workflow_test_id")
        notes = action._record_not_sent(held) if held else {}
        for run in self:
            if run.res_id in notes:
                vals = {"state": "done", "message": notes[run.res_id]}
            else:
                vals = run._send_webhook(action, records.browse(run.res_id))
            run.write({**vals, "date": fields.Datetime.now()})
        self.filtered(lambda run: run.state == "failed")._notify_failures()
        self.filtered(lambda run: run.state == "scheduled")._wake_queue()

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

    def _skip_reason(self, record):
        """Why this scheduled run must not execute on ``record`` (empty if deleted), or None."""
        self.ensure_one()
        if not self.action_id:
            return _("The action was deleted.")
        # a switched-off workflow still runs on its own test records
        if not self.workflow_id.active and not (record and record.workflow_test_id == self.workflow_id):
            return _("The workflow was switched off.")
        if not record:
            return _("The record no longer exists.")
        if self.followup_effect:
            return self._followup_skip_reason(self.action_id, record, self.stage_ref)
        if self.stage_ref and record.stage_id.id != self.stage_ref:
            return _("The record left the stage it was in when this action was scheduled.")
        return None

    # ------------------------------------------------------------------
    # Retention
    # ------------------------------------------------------------------

    @api.autovacuum
    def _gc_old_runs(self):
        """Delete the runs older than the retention that need no attention: done, skipped,
        cancelled, and failed ones once dismissed. Scheduled runs are the queue: never purged."""
        days = int(self.env["ir.config_parameter"].sudo().get_param(RETENTION_PARAMETER) or RETENTION_DAYS_DEFAULT)
        domain = [
            ("date", "<", fields.Datetime.now() - timedelta(days=days)),
            "|", ("state", "in", PURGED_STATES), "&", ("state", "=", "failed"), ("dismissed", "=", True),
        ]
        runs = self.sudo().search(domain, limit=models.GC_UNLINK_LIMIT)
        if len(runs) >= models.GC_UNLINK_LIMIT:
            self.env.ref("base.autovacuum_job")._trigger()
        runs.unlink()

    # ------------------------------------------------------------------
    # Buttons
    # ------------------------------------------------------------------

    def _check_state(self, states, action_name):
        wrong = self.filtered(lambda run: run.state not in states)
        if wrong:
            raise UserError(_(
                "“%(action)s” is not possible for the run “%(run)s” in state %(state)s.",
                action=action_name,
                run=wrong[0].display_name,
                state=dict(self._fields["state"]._description_selection(self.env))[wrong[0].state],
            ))

    # Access first: a refused button changes nothing and sends nothing (a webhook is not
    # taken back); writing runs is for the workflow managers.

    def action_cancel(self):
        self.check_access("write")
        self._check_state(("scheduled",), _("Cancel"))
        self.write({"state": "cancelled", "message": _("Cancelled by %s.", self.env.user.name)})
        return True

    def action_run_now(self):
        self.check_access("write")
        self._check_state(("scheduled",), _("Run now"))
        self._execute_scheduled()
        return True

    def action_retry(self):
        self.check_access("write")
        self._check_state(("failed",), _("Retry"))
        self._execute_scheduled()
        return self._failed_again_notification() or True

    def _failed_again_notification(self):
        """A notification saying that these retried runs failed again (the form then shows why)."""
        failed = self.filtered(lambda run: run.state == "failed")
        if not failed:
            return None
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "type": "danger",
                "title": _("Failed again"),
                "message": _(
                    "%(count)s of %(total)s run(s) failed again; on “%(record)s”: %(error)s",
                    count=len(failed), total=len(self), record=failed[0].record_name, error=failed[0].message,
                ),
                "next": {"type": "ir.actions.client", "tag": "soft_reload"},
            },
        }

    def action_dismiss(self):
        """A failed run seen and dealt with: it may now be purged with the others."""
        self.check_access("write")
        self._check_state(("failed",), _("Dismiss"))
        self.dismissed = True
        return True

    def action_open_record(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "res_model": self.res_model,
            "res_id": self.res_id,
            "view_mode": "form",
        }
