from odoo import _, api, fields, models
from odoo.exceptions import UserError

from .workflow_automation_action import CREATING_KINDS

# What a repeat lead takes from the original: its customer
REPEAT_CUSTOMER_FIELDS = ("partner_id", "partner_name", "contact_name", "email_from", "phone")


class WorkflowAutomationAction(models.Model):
    """The actions that create records from the records: a linked project, a copy into
    another pipeline, a repeat lead or opportunity."""

    _inherit = "workflow.automation.action"

    new_name = fields.Char(
        string="Name of the new record",
        compute="_compute_new_name",
        store=True,
        readonly=False,
        help="Placeholders such as {{ object.name }} or {{ object.partner_id.name }} are taken from the "
        "original record.",
    )
    new_lead_type = fields.Selection(
        [("lead", "Lead"), ("opportunity", "Opportunity")], string="Create a", default="opportunity", required=True
    )
    new_team_id = fields.Many2one(
        "crm.team",
        string="Pipeline",
        ondelete="restrict",
        help="The pipeline of the new record; for a repeat, leave empty for the original's pipeline.",
    )
    new_stage_id = fields.Many2one(
        "crm.stage",
        string="Stage of the new record",
        ondelete="restrict",
        help="A stage of that pipeline or shared by all pipelines; leave empty for the pipeline's first stage.",
    )
    new_user_mode = fields.Selection(
        [("same", "Same owner"), ("user", "Chosen user")],
        string="Owner",
        default="same",
        required=True,
        help="Same owner: the original's salesperson (the project manager of a linked project).",
    )
    new_user_id = fields.Many2one("res.users", string="Chosen owner", ondelete="restrict")
    project_template_id = fields.Many2one(
        "project.project",
        string="Project to copy",
        ondelete="restrict",
        help="The new project is a copy of this one, with its tasks (it may be archived). "
        "Leave empty for an empty project.",
    )

    @api.model
    def _default_name_templates(self):
        return {
            "create_project": "{{ object.name }}",
            "copy_lead": _("%s (copy)", "{{ object.name }}"),
            "repeat_lead": "{{ object.name }}",
        }

    @api.depends("kind")
    def _compute_new_name(self):
        """The kind's default template, unless the admin wrote another one."""
        defaults = self._default_name_templates()
        for action in self:
            if not action.new_name or action.new_name in defaults.values():
                action.new_name = defaults.get(action.kind, False)

    # ------------------------------------------------------------------
    # Validation
    # ------------------------------------------------------------------

    @api.constrains(
        "kind", "trigger_id", "new_name", "new_team_id", "new_stage_id", "new_user_mode", "new_user_id",
        "project_template_id",
    )
    def _check_new_records(self):
        for action in self.filtered(lambda a: a.kind in CREATING_KINDS):
            action._require("new_name", _("this action needs a value here."))
            if action.new_user_mode == "user":
                action._require("new_user_id", _("choose the owner of the new records."))
            if action.kind == "create_project":
                action._check_same_company("project_template_id")
            else:
                action._check_new_stage()

    def _check_new_stage(self):
        """The new record's pipeline is the workflow's company's; its stage is of that pipeline or shared."""
        self._check_same_company("new_team_id")
        error = self.env[self.target]._workflow_stage_scope_error(self.new_stage_id, self.new_team_id)
        if error:
            self._raise_invalid("new_stage_id", error)

    def _check_same_company(self, field_name):
        """Records are created in the workflow's company: what they are made from must fit it."""
        company = self[field_name].company_id
        if company and company != self.workflow_id.company_id:
            self._raise_invalid(field_name, _(
                "“%(record)s” belongs to the company “%(company)s”, not to the workflow's.",
                record=self[field_name].display_name,
                company=company.name,
            ))

    # ------------------------------------------------------------------
    # Execution
    # ------------------------------------------------------------------

    def _render_names(self, records):
        """``{record id: name of its new record}`` from the name template."""
        names = self._render("new_name", records, self._record_langs(records))
        for record in records:
            if not names[record.id].strip():
                raise UserError(_("The name template gives an empty name for “%s”.", record.display_name))
        return names

    def _new_owner(self, record):
        if self.new_user_mode == "user":
            return self.new_user_id
        return record.user_id.filtered("active")

    def _company_vals(self, record):
        """New records belong to the original's company (or let Odoo choose when it has none)."""
        return {"company_id": record.company_id.id} if record.company_id else {}

    def _execute_create_project(self, records):
        names = self._render_names(records)
        vals_list = [
            {
                "name": names[lead.id],
                "partner_id": lead.partner_id.id,
                "user_id": self._new_owner(lead).id,
                "workflow_lead_id": lead.id,
                **self._company_vals(lead),
                **({"stage_id": self.project_stage_id.id} if self.project_stage_id else {}),
            }
            for lead in records
        ]
        Project = self.env["project.project"]
        if not self.project_template_id:
            Project.create(vals_list)
            return
        # Odoo copies a project (and its tasks) with one set of values: one copy per lead.
        # Project workflows fire once the copies are complete, for all of them at once.
        with Project._workflow_deferred():
            for vals in vals_list:
                self.project_template_id.copy(vals)

    def _execute_copy_lead(self, records):
        """``copy()`` with per-record names and links, in one create for the batch."""
        names = self._render_names(records)
        shared = {"team_id": self.new_team_id.id, "active": True, "lost_reason_id": False}
        if self.new_stage_id:
            shared["stage_id"] = self.new_stage_id.id
        vals_list = records.with_context(active_test=False).copy_data(shared)
        self.env["crm.lead"].create([
            dict(
                vals,
                name=names[lead.id],
                user_id=self._new_owner(lead).id,
                workflow_origin_id=lead.id,
                **self._company_vals(lead),
            )
            for lead, vals in zip(records, vals_list, strict=True)
        ])

    def _execute_repeat_lead(self, records):
        names = self._render_names(records)
        self.env["crm.lead"].create([
            {
                **lead._convert_to_write({name: lead[name] for name in REPEAT_CUSTOMER_FIELDS}),
                "name": names[lead.id],
                "type": self.new_lead_type,
                "team_id": (self.new_team_id or lead.team_id).id,
                "user_id": self._new_owner(lead).id,
                "workflow_origin_id": lead.id,
                **self._company_vals(lead),
                **({"stage_id": self.new_stage_id.id} if self.new_stage_id else {}),
            }
            for lead in records
        ])
