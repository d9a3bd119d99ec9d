from odoo import _, api, fields, models
from odoo.exceptions import ValidationError


class WorkflowAutomationPresetWizard(models.TransientModel):
    """"Use this preset": a switched-off workflow of your own, scoped where you choose."""

    _name = "workflow.automation.preset.wizard"
    _description = "Use a Workflow Preset"

    preset_id = fields.Many2one(
        "workflow.automation", required=True, ondelete="cascade", domain=[("is_preset", "=", True)]
    )
    description = fields.Text(related="preset_id.description")
    target = fields.Selection(related="preset_id.target")
    scope_field = fields.Char(related="preset_id.scope_field")
    name = fields.Char(compute="_compute_name", store=True, readonly=False, required=True, precompute=True)
    team_ids = fields.Many2many(
        "crm.team", string="Pipelines", help="The pipelines whose opportunities fire the workflow; empty for all."
    )
    project_ids = fields.Many2many(
        "project.project", string="Projects", help="The projects that fire the workflow; empty for all."
    )

    @api.depends("preset_id")
    def _compute_name(self):
        for wizard in self:
            wizard.name = wizard.preset_id.name

    def action_apply(self):
        """Copy the preset, switched off, and open the copy for the admin to complete."""
        self.ensure_one()
        if not self.preset_id.is_preset:
            raise ValidationError(_("“%s” is not a preset.", self.preset_id.name))
        workflow = self.preset_id.copy({
            "name": self.name,
            "preset_id": self.preset_id.id,
            "team_ids": [fields.Command.set(self.team_ids.ids)],
            "project_ids": [fields.Command.set(self.project_ids.ids)],
        })
        return {
            "type": "ir.actions.act_window",
            "name": _("Workflow"),
            "res_model": "workflow.automation",
            "res_id": workflow.id,
            "view_mode": "form",
            "target": "current",
        }
