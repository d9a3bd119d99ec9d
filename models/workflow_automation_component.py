from odoo import api, models


class WorkflowAutomationComponent(models.AbstractModel):
    """Triggers and actions: locked while their workflow is on, and indexed by the engine."""

    _name = "workflow.automation.component"
    _description = "Workflow Automation Component"

    @api.model_create_multi
    def create(self, vals_list):
        components = super().create(vals_list)
        components.workflow_id._check_editable()
        self.env.registry.clear_cache()
        return components

    def write(self, vals):
        self.workflow_id._check_editable()
        result = super().write(vals)
        self.env.registry.clear_cache()
        return result

    @api.ondelete(at_uninstall=False)
    def _unlink_except_workflow_on(self):
        self.workflow_id._check_editable()

    def unlink(self):
        result = super().unlink()
        self.env.registry.clear_cache()
        return result
