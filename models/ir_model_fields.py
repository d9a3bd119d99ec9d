from odoo import _, models
from odoo.exceptions import UserError

from odoo.addons.base.models.ir_model import MODULE_UNINSTALL_FLAG


class IrModelFields(models.Model):
    _inherit = "ir.model.fields"

    def unlink(self):
        # Checked before Odoo drops the column and reloads the registry, which come before any
        # @api.ondelete method. An uninstall removes its own fields, with the triggers that use them.
        if not self.env.context.get(MODULE_UNINSTALL_FLAG):
            self._check_unused_by_workflows()
        return super().unlink()

    def _check_unused_by_workflows(self):
        """Deleting a field would silently delete the triggers and actions that use it: refuse it,
        naming the workflow."""
        Trigger = self.env["workflow.automation.trigger"].sudo()
        Action = self.env["workflow.automation.action"].sudo()
        for field in self:
            component = Trigger.search([("date_field_id", "=", field.id)], limit=1) or Action.search(
                ["|", ("set_field_id", "=", field.id), ("webhook_field_ids", "in", field.ids)], limit=1
            )
            if component:
                raise UserError(_(
                    "The field “%(field)s” is used by the workflow “%(workflow)s”, in “%(component)s”: "
                    "change or delete that first.",
                    field=field.field_description,
                    workflow=component.workflow_id.display_name,
                    component=component.display_name,
                ))
