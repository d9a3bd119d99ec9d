from odoo import api, fields, models

from .workflow_automation import TARGET_MODELS


class WorkflowAutomationRun(models.Model):
    """One action executed (or not) on one record: the audit trail of the engine."""

    _name = "workflow.automation.run"
    _description = "Workflow Automation Run"
    _order = "id desc"
    _rec_name = "record_name"

    workflow_id = fields.Many2one("workflow.automation", required=True, ondelete="cascade", index=True)
    trigger_id = fields.Many2one("workflow.automation.trigger", ondelete="cascade", index=True)
    action_id = fields.Many2one("workflow.automation.action", ondelete="cascade", index=True)
    action_kind = fields.Selection(related="action_id.kind", string="Action kind")
    company_id = fields.Many2one("res.company", required=True, index=True)
    res_model = fields.Selection(TARGET_MODELS, string="Record type", required=True)
    res_id = fields.Many2oneReference(string="Record ID", model_field="res_model", required=True, index=True)
    record_name = fields.Char(string="Record")
    record_ref = fields.Reference(
        selection=TARGET_MODELS, string="Open record", compute="_compute_record_ref"
    )
    state = fields.Selection(
        [("done", "Done"), ("failed", "Failed"), ("skipped", "Skipped")],
        required=True,
        index=True,
    )
    user_id = fields.Many2one("res.users", string="Triggered by", ondelete="set null")
    date = fields.Datetime(default=fields.Datetime.now, required=True, index=True)
    message = fields.Text(help="The error of a failed run, or why a run was skipped.")

    @api.depends("res_model", "res_id")
    def _compute_record_ref(self):
        for run in self:
            run.record_ref = f"{run.res_model},{run.res_id}" if run.res_model and run.res_id else False

    @api.model
    def _prepare_vals(self, action, record, user, state, message=None):
        return {
            "workflow_id": action.workflow_id.id,
            "trigger_id": action.trigger_id.id,
            "action_id": action.id,
            "company_id": action.trigger_id.company_id.id,
            "res_model": record._name,
            "res_id": record.id,
            "record_name": record.display_name,
            "state": state,
            "user_id": user.id,
            "message": message,
        }

    def action_open_record(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "res_model": self.res_model,
            "res_id": self.res_id,
            "view_mode": "form",
        }
