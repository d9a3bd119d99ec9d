from odoo import _, api, fields, models
from odoo.exceptions import UserError

from ..models.workflow_automation_kinds import SCOPE, STAGE


class WorkflowAutomationTestWizard(models.TransientModel):
    """"Test this workflow": a test opportunity (or project) in a chosen stage, opened at once.

    A switched-off workflow fires on its own test records, and on nothing else; nothing
    that would leave the database (e-mails, webhooks) is sent for a test record.
    """

    _name = "workflow.automation.test.wizard"
    _description = "Test a Workflow Automation"

    workflow_id = fields.Many2one("workflow.automation", required=True, readonly=True, ondelete="cascade")
    target = fields.Selection(related="workflow_id.target")
    allowed_team_ids = fields.Many2many("crm.team", compute="_compute_allowed_team_ids")
    # The scope and the stage of the test record: the fields of their roles for the target
    team_id = fields.Many2one(
        "crm.team",
        string="Pipeline",
        compute="_compute_team_id",
        store=True,
        readonly=False,
        domain="[('id', 'in', allowed_team_ids)]",
        workflow_role=SCOPE,
        help="One of the workflow's pipelines.",
    )
    stage_id = fields.Many2one(
        "crm.stage",
        compute="_compute_stage_id",
        store=True,
        readonly=False,
        domain="['|', ('team_id', '=', False), ('team_id', '=', team_id)]",
        workflow_role=STAGE,
        help="The test opportunity is created in this stage of the pipeline.",
    )
    project_stage_id = fields.Many2one(
        "project.project.stage",
        string="Project stage",
        compute="_compute_project_stage_id",
        store=True,
        readonly=False,
        domain="[('company_id', 'in', [company_id, False])]",
        workflow_role=STAGE,
        help="The test project is created in this stage (by default, the first one).",
    )
    scope_field = fields.Char(string="Scope field", compute="_compute_role_fields")
    stage_field = fields.Char(string="Stage field", compute="_compute_role_fields")
    company_id = fields.Many2one(related="workflow_id.company_id")
    name = fields.Char(help="Leave empty for “Test: <workflow name>”.")
    partner_id = fields.Many2one(
        "res.partner",
        string="Customer",
        help="Optional. E-mails and webhooks are recorded on the test record, never sent.",
    )

    def _valid_field_parameter(self, field, name):
        return name == "workflow_role" or super()._valid_field_parameter(field, name)

    @api.depends("target")
    def _compute_role_fields(self):
        for wizard in self:
            if not wizard.target:
                wizard.scope_field = wizard.stage_field = False
                continue
            Target = self.env[wizard.target]
            wizard.scope_field = Target._workflow_field_of(wizard, SCOPE)
            wizard.stage_field = Target._workflow_field_of(wizard, STAGE)

    @api.depends("workflow_id")
    def _compute_allowed_team_ids(self):
        for wizard in self:
            wizard.allowed_team_ids = wizard.workflow_id.team_ids or self.env["crm.team"].search(
                [("company_id", "in", [wizard.company_id.id, False])]
            )

    @api.depends("workflow_id")
    def _compute_team_id(self):
        for wizard in self:
            teams = wizard.allowed_team_ids
            default = self.env["crm.team"]._get_default_team_id()
            wizard.team_id = default if default in teams else teams[:1]

    @api.depends("team_id")
    def _compute_stage_id(self):
        """The pipeline's first stage, as for a new opportunity in it (the form holds copies of
        the pipelines: their real ids are those of ``_origin``)."""
        for wizard in self:
            team = wizard.team_id._origin
            if not wizard.stage_id or wizard.stage_id.team_id not in (team, self.env["crm.team"]):
                wizard.stage_id = self.env["crm.lead"]._stage_find(team_id=team.id)

    @api.depends("workflow_id")
    def _compute_project_stage_id(self):
        # projects have stages only for users of the "Project Stages" setting
        with_stages = self.env.user.has_group("project.group_project_stages")
        for wizard in self:
            wizard.project_stage_id = with_stages and self.env["project.project.stage"].search(
                [("company_id", "in", [wizard.company_id.id, False])], limit=1
            )

    def _check_choices(self):
        """Refuse a pipeline or stage the workflow would never see, naming the field."""
        self.ensure_one()
        if not self.scope_field:  # the test record is its own scope (a project)
            return
        if not self.team_id:
            self._raise_invalid("team_id", _("choose a pipeline."))
        if self.team_id not in self.allowed_team_ids:
            self._raise_invalid(
                "team_id", _("the pipeline “%s” is not in the workflow's pipelines.", self.team_id.name)
            )
        if not self[self.stage_field]:
            self._raise_invalid(self.stage_field, _("choose a stage of the pipeline."))
        error = self.env[self.target]._workflow_stage_scope_error(self[self.stage_field], self.team_id)
        if error:
            self._raise_invalid(self.stage_field, error)

    def _raise_invalid(self, field_name, message):
        raise UserError(_(
            "Testing the workflow “%(workflow)s”, field “%(field)s”: %(message)s",
            workflow=self.workflow_id.display_name,
            field=self._fields[field_name]._description_string(self.env),
            message=message,
        ))

    def _create_test_record(self):
        """Create the record with the user's rights, but the test flag, which no user may
        set (see the mixin): the record is created as superuser between the checks of the
        user's right to create it and of the record rules on it."""
        Model = self.env[self.target].with_company(self.company_id)
        Model.check_access("create")
        record = Model.sudo().create(self._prepare_record_vals())
        record.with_env(Model.env).check_access("create")
        return record.with_env(Model.env)

    def _prepare_record_vals(self):
        vals = {
            "name": self.name or _("Test: %s", self.workflow_id.name),
            "partner_id": self.partner_id.id,
            "user_id": self.env.uid,
            "workflow_test_id": self.workflow_id.id,
        }
        Target = self.env[self.target]
        if self.scope_field:
            vals[Target._workflow_scope_field] = self[self.scope_field].id
        if self[self.stage_field]:
            vals[Target._workflow_stage_field] = self[self.stage_field].id
        return dict(Target._workflow_test_record_vals(), **vals)

    def action_create_test_record(self):
        """Create the test record in the workflow's company, for a manager of the workflow; open it."""
        self.ensure_one()
        self.workflow_id.check_access("write")
        self._check_choices()
        record = self._create_test_record()
        return {
            "type": "ir.actions.act_window",
            "res_model": record._name,
            "res_id": record.id,
            "views": [(False, "form")],
            "target": "current",
        }
