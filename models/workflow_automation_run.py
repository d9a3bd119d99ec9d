import logging
from collections import defaultdict
from datetime import timedelta

from markupsafe import Markup

from odoo import _, api, fields, models, tools
from odoo.exceptions import UserError
from odoo.osv import expression
from odoo.tools import SQL, format_datetime

from .workflow_automation import TARGET_MODELS

_logger = logging.getLogger(__name__)

# How long the runs that need no attention are kept (Settings > CRM > Workflow runs)
RETENTION_PARAMETER = "crm_workflow_automation.run_retention_days"
RETENTION_DAYS_DEFAULT = 365
# Runs purged once older than the retention; a failed run only once dismissed
PURGED_STATES = ("done", "skipped", "cancelled")


class WorkflowAutomationRun(models.Model):
    """One action executed (or not) on one record: the audit trail of the engine."""

    _name = "workflow.automation.run"
    _description = "Workflow Automation Run"
    _order = "id desc"
    # A run says when (``date``) and for whom (its firing's ``user_id``): Odoo's four log columns
    # would only make each of the many rows a change writes wider, with two more foreign keys to check.
    _log_access = False
    _rec_name = "record_name"

    # What the runs of one trigger fired for one user share: written and checked once for them all
    firing_id = fields.Many2one("workflow.automation.firing", required=True, ondelete="cascade", index=True)
    workflow_id = fields.Many2one(related="firing_id.workflow_id")
    trigger_id = fields.Many2one(related="firing_id.trigger_id")
    company_id = fields.Many2one(related="firing_id.company_id")
    user_id = fields.Many2one(related="firing_id.user_id")
    # Runs outlive a deleted action, as they outlive a deleted workflow: the audit trail stays.
    action_id = fields.Many2one("workflow.automation.action", ondelete="set null", index=True)
    # Kept with the run, so that the usage report groups by it after the action changed or went.
    action_kind = fields.Selection(selection="_selection_action_kind", string="Action kind", readonly=True)
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
    )
    date = fields.Datetime(default=fields.Datetime.now, required=True, index=True)
    date_due = fields.Datetime(string="Due", help="When a scheduled run is due.")
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

    def init(self):
        # Partial indexes: most runs are done at once, and need neither. The queue looks for the
        # due scheduled runs; a date trigger runs an action once per record and occurrence.
        tools.create_index(
            self.env.cr, "workflow_automation_run_due_index", self._table, ["date_due"], where="state = 'scheduled'"
        )
        self.env.cr.execute(SQL(
            """CREATE UNIQUE INDEX IF NOT EXISTS workflow_automation_run_action_occurrence_index
               ON workflow_automation_run (action_id, res_id, occurrence) WHERE occurrence IS NOT NULL"""
        ))

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

    @api.model
    def _firing_fields(self):
        """The fields that runs show from their firing, which they share."""
        return [name for name, field in self._fields.items() if (field.related or "").startswith("firing_id.")]

    @api.model_create_multi
    def create(self, vals_list):
        """Runs given the workflow, trigger, company and user they share: one firing keeps them."""
        names = self._firing_fields()
        Firing = self.env["workflow.automation.firing"].sudo()
        firings = {}
        run_vals_list = []
        for vals in vals_list:
            run_vals = {name: value for name, value in vals.items() if name not in names}
            if not run_vals.get("firing_id"):
                firing = tuple((name, vals.get(name, False)) for name in names)
                if firing not in firings:
                    firings[firing] = Firing.create(dict(firing)).id
                run_vals["firing_id"] = firings[firing]
            run_vals_list.append(run_vals)
        runs = super().create(run_vals_list)
        runs._announce()
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
        return self._skip_reason_on(record)

    def _skip_reason_on(self, record):
        """Why this run must not execute on ``record``, which exists, or None (a feature's runs
        may have reasons of their own)."""
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
