from odoo import _, api, fields, models
from odoo.exceptions import UserError

OUTCOME_EVENTS = ("won", "lost", "restored")


class CrmLead(models.Model):
    _name = "crm.lead"
    # The mixin first, so that its hook wraps the whole of crm.lead's create and write.
    _inherit = ["workflow.automation.mixin", "crm.lead"]
    _workflow_scope_field = "team_id"
    _workflow_stage_scope_field = "team_id"

    workflow_origin_id = fields.Many2one(
        "crm.lead",
        string="Created from",
        ondelete="set null",
        index="btree_not_null",
        copy=False,
        readonly=True,
        help="The lead or opportunity a workflow copied or repeated into this one.",
    )
    workflow_copy_ids = fields.One2many("crm.lead", "workflow_origin_id", string="Copies and repeats")
    workflow_copy_count = fields.Integer(compute="_compute_workflow_copy_count", string="Copies count")
    workflow_project_ids = fields.One2many(
        "project.project", "workflow_lead_id", string="Linked projects", groups="project.group_project_user"
    )
    workflow_project_count = fields.Integer(
        compute="_compute_workflow_project_count", string="Linked projects count", groups="project.group_project_user"
    )

    @api.depends("workflow_copy_ids")
    def _compute_workflow_copy_count(self):
        counts = dict(self.with_context(active_test=False)._read_group(
            [("workflow_origin_id", "in", self.ids)], ["workflow_origin_id"], ["__count"]
        ))
        for lead in self:
            lead.workflow_copy_count = counts.get(lead, 0)

    @api.depends("workflow_project_ids")
    def _compute_workflow_project_count(self):
        counts = dict(self.env["project.project"]._read_group(
            [("workflow_lead_id", "in", self.ids)], ["workflow_lead_id"], ["__count"]
        ))
        for lead in self:
            lead.workflow_project_count = counts.get(lead, 0)

    def action_open_workflow_copies(self):
        self.ensure_one()
        copies = self.with_context(active_test=False).search([("workflow_origin_id", "=", self.id)])
        return copies._workflow_action_open(_("Created from %s", self.name))

    def action_open_workflow_projects(self):
        self.ensure_one()
        return self.workflow_project_ids._workflow_action_open(_("Projects of %s", self.name))

    @api.model
    def _workflow_test_record_vals(self):
        return {"type": "opportunity"}

    def _workflow_event_fields(self):
        outcome_fields = {"stage_id", "active", "probability"}
        return dict(super()._workflow_event_fields(), **dict.fromkeys(OUTCOME_EVENTS, outcome_fields))

    def _workflow_outcome(self):
        """won, lost (archived at 0%, as Odoo's "Lost" filter), archived or open."""
        self.ensure_one()
        if not self.active:
            return "lost" if not self.probability else "archived"
        return "won" if self.stage_id.is_won else "open"

    def _workflow_snapshot(self, events):
        snapshot = super()._workflow_snapshot(events)
        if not set(events).isdisjoint(OUTCOME_EVENTS):
            for record in self.sudo():
                snapshot[record.id]["outcome"] = record._workflow_outcome()
        return snapshot

    def _workflow_changed(self, event, before):
        if event not in OUTCOME_EVENTS:
            return super()._workflow_changed(event, before)
        if event == "restored":
            # unarchived, or reopened: a lost or won deal back in the open pipeline
            return self.sudo().filtered(
                lambda r: before[r.id]["outcome"] != "open" and r._workflow_outcome() == "open"
            )
        return self.sudo().filtered(
            lambda r: before[r.id]["outcome"] != event and r._workflow_outcome() == event
        )

    def _workflow_assign_user_vals(self, values):
        """Assign the user of ``values`` and keep the lead's pipeline, in one write per pipeline.

        Odoo's salesperson field moves a lead to the new salesperson's default team when he
        is not a member of its own: the lead would leave the workflow's pipeline and the
        *My Pipeline* of its team. A lead without a team gets one as Odoo gives it.
        """
        return [
            (leads, {**values, **({"team_id": team_id} if team_id else {})})
            for team_id, leads in self._workflow_grouped_by("team_id").items()
        ]

    def _workflow_set_stage_vals(self, values):
        """Refuse a stage of another pipeline: the lead's pipeline may have changed since
        the workflow was saved."""
        stage = self.env["crm.stage"].browse(values["stage_id"])
        for team_id in set(self._workflow_cache_values("team_id")):
            error = self._workflow_stage_scope_error(stage, self.env["crm.team"].browse(team_id))
            if error:
                raise UserError(error)
        return [(self, values)]

    # Marking won, lost or restoring is several writes: fire once they are all done.

    def action_set_won(self):
        with self._workflow_deferred():
            return super().action_set_won()

    def action_set_lost(self, **additional_values):
        with self._workflow_deferred():
            return super().action_set_lost(**additional_values)

    def toggle_active(self):
        with self._workflow_deferred():
            return super().toggle_active()

    @api.model
    def mail_allowed_qweb_expressions(self):
        """Placeholders any user may write in a template of opportunities (Odoo's list, plus why
        one was lost): plain field paths, rendered without evaluating code."""
        return (*super().mail_allowed_qweb_expressions(), "object.lost_reason_id.name")
