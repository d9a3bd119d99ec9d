from odoo import _, api, fields, models
from odoo.tools.safe_eval import datetime, dateutil, safe_eval, time

from .workflow_automation import TriggerSpec

# kind -> the targets it is offered for
TRIGGER_KINDS = {
    "create": ("crm.lead", "project.project"),
    "stage_reached": ("crm.lead", "project.project"),
    "stage_changed": ("crm.lead", "project.project"),
    "won": ("crm.lead",),
    "lost": ("crm.lead",),
    "restored": ("crm.lead",),
    "project_closed": ("project.project",),
}
STAGE_KINDS = ("stage_reached", "stage_changed")


class WorkflowAutomationTrigger(models.Model):
    _name = "workflow.automation.trigger"
    _inherit = ["workflow.automation.component"]
    _description = "Workflow Automation Trigger"
    _order = "workflow_sequence, workflow_id, sequence, id"

    workflow_id = fields.Many2one("workflow.automation", required=True, ondelete="cascade", index=True)
    workflow_sequence = fields.Integer(related="workflow_id.sequence", store=True, string="Workflow sequence")
    target = fields.Selection(related="workflow_id.target")
    company_id = fields.Many2one(related="workflow_id.company_id", store=True)
    sequence = fields.Integer(default=10)
    kind = fields.Selection(
        [
            ("create", "Record created"),
            ("stage_reached", "Stage reached"),
            ("stage_changed", "Stage goes from … to …"),
            ("won", "Opportunity won"),
            ("lost", "Opportunity lost"),
            ("restored", "Opportunity restored"),
            ("project_closed", "Project closed"),
        ],
        string="When",
        required=True,
        default="stage_reached",
    )
    # Opportunities move through crm.stage, projects through project.project.stage.
    from_stage_id = fields.Many2one(
        "crm.stage", string="From stage", ondelete="restrict", help="Leave empty for any stage."
    )
    stage_id = fields.Many2one("crm.stage", string="To stage", ondelete="restrict")
    from_project_stage_id = fields.Many2one(
        "project.project.stage", string="From project stage", ondelete="restrict",
        help="Leave empty for any stage.",
    )
    project_stage_id = fields.Many2one("project.project.stage", string="To project stage", ondelete="restrict")
    filter_domain = fields.Char(
        string="Condition",
        default="[]",
        help="Only records matching this domain fire the trigger.",
    )
    action_ids = fields.One2many("workflow.automation.action", "trigger_id", string="Actions", copy=True)

    @api.depends("kind", "stage_id", "from_stage_id", "project_stage_id", "from_project_stage_id")
    def _compute_display_name(self):
        kinds = dict(self._fields["kind"]._description_selection(self.env))
        for trigger in self:
            from_stage, to_stage = trigger._get_stages()
            if trigger.kind == "stage_changed":
                trigger.display_name = _(
                    "Stage goes from %(from)s to %(to)s",
                    **{"from": from_stage.name or _("any stage"), "to": to_stage.name or _("any stage")},
                )
            elif trigger.kind == "stage_reached":
                trigger.display_name = _("Stage reached: %s", to_stage.name or "?")
            else:
                trigger.display_name = kinds.get(trigger.kind, "")

    def _get_stages(self):
        """Return (from stage, to stage) in the stage model of the workflow's target."""
        self.ensure_one()
        if self.workflow_id.target == "project.project":
            return self.from_project_stage_id, self.project_stage_id
        return self.from_stage_id, self.stage_id

    def _get_spec(self, rank):
        """The trigger as the engine's index holds it; ``rank`` orders triggers across events."""
        self.ensure_one()
        workflow = self.workflow_id
        from_stage, to_stage = self._get_stages()
        scope = workflow.team_ids if workflow.target == "crm.lead" else workflow.project_ids
        return TriggerSpec(
            id=self.id,
            rank=rank,
            workflow_id=workflow.id,
            company_id=workflow.company_id.id,
            scope_ids=frozenset(scope.ids) or None,
            from_stage_id=from_stage.id if self.kind == "stage_changed" else False,
            to_stage_id=to_stage.id if self.kind in STAGE_KINDS else False,
        )

    # ------------------------------------------------------------------
    # Validation: refused at save, naming the workflow and the field
    # ------------------------------------------------------------------

    @api.constrains("kind", "workflow_id")
    def _check_kind(self):
        for trigger in self:
            if trigger.workflow_id.target not in TRIGGER_KINDS[trigger.kind]:
                trigger._raise_invalid("kind", _("this trigger is not available for this target."))

    @api.constrains("kind", "stage_id", "from_stage_id", "project_stage_id", "from_project_stage_id")
    def _check_stages(self):
        for trigger in self.filtered(lambda t: t.kind in STAGE_KINDS):
            from_stage, to_stage = trigger._get_stages()
            to_field = "project_stage_id" if trigger.target == "project.project" else "stage_id"
            if trigger.kind == "stage_reached" and not to_stage:
                trigger._raise_invalid(to_field, _("choose the stage that fires the trigger."))
            if trigger.kind == "stage_changed" and from_stage and from_stage == to_stage:
                trigger._raise_invalid(to_field, _("the two stages must differ."))
            if trigger.target == "crm.lead":
                trigger._check_stage_in_scope("from_stage_id")
                trigger._check_stage_in_scope("stage_id")

    @api.constrains("filter_domain", "workflow_id")
    def _check_filter_domain(self):
        for trigger in self:
            try:
                trigger._get_condition_domain()
            except Exception as error:  # noqa: BLE001 - any parse or field error is a user error
                trigger._raise_invalid(
                    "filter_domain", _("the condition is not a valid domain (%s).", error)
                )

    # ------------------------------------------------------------------
    # Firing
    # ------------------------------------------------------------------

    def _get_condition_domain(self):
        """Parse the condition and check it against the target model (raises if invalid)."""
        self.ensure_one()
        domain = safe_eval(self.filter_domain or "[]", self._get_eval_context())
        if not isinstance(domain, (list, tuple)):
            raise ValueError(_("a domain is a list of conditions"))
        self.env[self.workflow_id.target]._search(domain)  # validates field names, runs no query
        return domain

    def _get_eval_context(self):
        return {
            "datetime": datetime,
            "dateutil": dateutil,
            "time": time,
            "uid": self.env.uid,
            "user": self.env.user,
            "context_today": lambda: fields.Date.context_today(self),
        }

    def _filter_condition(self, records):
        """Return the records matching the condition, in one query for the whole batch."""
        if not self.filter_domain or self.filter_domain.strip() == "[]":
            return records
        domain = self._get_condition_domain()
        return records.with_context(active_test=False).search([("id", "in", records.ids), *domain])

    def _execute(self, records, user):
        """Run the actions in order on ``records``; return the values of their runs.

        A record on which an action failed is left out of the following actions.
        """
        self.ensure_one()
        Run = self.env["workflow.automation.run"]
        run_vals = []
        failed = records.browse()
        for action in self.action_ids:
            action_run_vals, errors = self._run_action(action, records, user)
            run_vals += action_run_vals
            run_vals += [
                Run._prepare_vals(action, record, user, "skipped", _("An earlier action of this trigger failed."))
                for record in failed
            ]
            newly_failed = records.browse(list(errors))
            records -= newly_failed
            failed |= newly_failed
        return run_vals

    def _run_action(self, action, records, user):
        """Execute ``action`` now, or schedule it when it has a delay.

        Return the values of its runs and ``{record id: error}`` for the records it failed on.
        """
        Run = self.env["workflow.automation.run"]
        if action.delay:
            due = action._due_date(fields.Datetime.now())
            check_stage = self.kind in STAGE_KINDS and action.require_same_stage
            return [Run._prepare_scheduled_vals(action, record, user, due, check_stage) for record in records], {}
        errors = action._execute_safely(records) if records else {}
        return [
            Run._prepare_vals(action, record, user, "failed" if record.id in errors else "done", errors.get(record.id))
            for record in records
        ], errors

    def _prepare_stopped_run_vals(self, records, user, depth):
        """Runs saying why a chain of workflows triggering each other was cut."""
        self.ensure_one()
        message = _("Stopped: workflows triggered each other %s times in a row.", depth)
        Run = self.env["workflow.automation.run"]
        return [
            Run._prepare_vals(action, record, user, "skipped", message)
            for action in self.action_ids
            for record in records
        ]
