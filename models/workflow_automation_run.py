import logging
import threading
from collections import defaultdict

from markupsafe import Markup
from psycopg2 import errorcodes

from odoo import _, api, fields, models
from odoo.exceptions import UserError
from odoo.service.model import PG_CONCURRENCY_EXCEPTIONS_TO_RETRY
from odoo.tools import SQL, format_datetime

from .workflow_automation import TARGET_MODELS
from .workflow_automation_action import QUEUED_KINDS

_logger = logging.getLogger(__name__)

# Due runs taken, executed and committed together by the queue's cron.
QUEUE_BATCH_SIZE = 200
# Of which at most this many webhooks: they wait on the network, and a batch held past the
# cron's time limit would be rolled back, its requests sent again by the next try.
OUTBOUND_BATCH_SIZE = 20


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
    followup_effect = fields.Boolean(
        string="Follow-up completed",
        help="The run of a follow-up's “When completed” effect, not of the action itself.",
    )
    message = fields.Text(help="The error of a failed run, or why a run was skipped.")
    is_test = fields.Boolean(string="Test", help="Run on a test record.")

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
    def _prepare_followup_effect_vals(self, action, record, user, stage_ref, state, message):
        """A run of the effect of a completed follow-up; a retry re-checks the stage."""
        return dict(
            self._prepare_vals(action, record, user, state, message), followup_effect=True, stage_ref=stage_ref
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
            lines = defaultdict(list)
            for run in runs:
                lines[run.res_id].append(_(
                    "Scheduled by the workflow “%(workflow)s”: %(action)s, on %(date)s.",
                    workflow=run.workflow_id.name,
                    action=run.action_id.display_name,
                    date=format_datetime(self.env, run.date_due, dt_format="short"),
                ))
            bodies = {res_id: Markup("<p>%s</p>") % Markup("<br/>").join(texts) for res_id, texts in lines.items()}
            self.env[model].browse(list(bodies)).sudo()._message_log_batch(bodies)

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
        """Execute the due runs by batches, committing each; then sleep until the next one.

        Rows are taken with ``FOR UPDATE SKIP LOCKED``: processes sharing the queue never take
        the same run, and a batch whose process dies is rolled back and taken again. A batch
        that meets a concurrent update is not failed either: it is rolled back and left due,
        and the cron, woken again, takes it on a fresh snapshot.
        """
        auto_commit = not getattr(threading.current_thread(), "testing", False)
        while runs := self._lock_due_runs(QUEUE_BATCH_SIZE):
            runs = runs._limit_outbound()
            try:
                runs._execute_scheduled()
            except PG_CONCURRENCY_EXCEPTIONS_TO_RETRY as error:
                self.env.cr.rollback()
                _logger.info("Workflow queue: %s, %s runs left due", errorcodes.lookup(error.pgcode), len(runs))
                break
            self.env["ir.cron"]._notify_progress(done=len(runs), remaining=self._count_due_runs())
            if not auto_commit:
                break
            # One transaction per batch, by design: a process that dies loses only its batch.
            self.env.cr.commit()  # pylint: disable=invalid-commit
        self.search([("state", "=", "scheduled")], order="date_due", limit=1)._wake_queue()

    def _limit_outbound(self):
        """These runs but the webhooks beyond OUTBOUND_BATCH_SIZE, left due for the next batch."""
        outbound = self.filtered(lambda run: run.action_id.kind in QUEUED_KINDS)
        return self - outbound[OUTBOUND_BATCH_SIZE:]

    @api.model
    def _due_runs_sql(self, select):
        return SQL(
            "SELECT %s FROM workflow_automation_run WHERE state = 'scheduled' AND date_due <= %s",
            select,
            fields.Datetime.now(),
        )

    @api.model
    def _lock_due_runs(self, limit):
        self.flush_model(["state", "date_due"])
        self.env.cr.execute(SQL(
            "%s ORDER BY date_due, id LIMIT %s FOR UPDATE SKIP LOCKED", self._due_runs_sql(SQL("id")), limit
        ))
        return self.browse(row[0] for row in self.env.cr.fetchall())

    @api.model
    def _count_due_runs(self):
        self.flush_model(["state", "date_due"])
        self.env.cr.execute(self._due_runs_sql(SQL("count(*)")))
        return self.env.cr.fetchone()[0]

    def _execute_scheduled(self):
        """Execute these runs now, each action once for all its records and triggering user."""
        records = self._existing_records()
        skipped = defaultdict(list)
        batches = defaultdict(list)
        for run in self:
            reason = run._skip_reason(records.get((run.res_model, run.res_id)))
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

    @api.model
    def _followup_skip_reason(self, action, record, stage_ref):
        """Why the effect of ``action``, a completed follow-up, must not run on ``record``, or None."""
        if not action.workflow_id.active:
            return _("The workflow was switched off.")
        if action._followup_effect() == "none":
            return _("The follow-up no longer has an effect when completed.")
        if record.stage_id.id != stage_ref:
            return _("The record left the stage it was in when the follow-up was added.")
        return None

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

    def action_cancel(self):
        self._check_state(("scheduled",), _("Cancel"))
        self.write({"state": "cancelled", "message": _("Cancelled by %s.", self.env.user.name)})

    def action_run_now(self):
        self._check_state(("scheduled",), _("Run now"))
        self._execute_scheduled()

    def action_retry(self):
        self._check_state(("failed",), _("Retry"))
        self._execute_scheduled()

    def action_open_record(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "res_model": self.res_model,
            "res_id": self.res_id,
            "view_mode": "form",
        }
