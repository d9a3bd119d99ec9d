from odoo import _, api, fields, models
from odoo.exceptions import ValidationError

from .workflow_automation_run import RETENTION_DAYS_DEFAULT, RETENTION_PARAMETER


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    workflow_automation_run_retention_days = fields.Integer(
        string="Keep workflow runs for (days)",
        config_parameter=RETENTION_PARAMETER,
        default=RETENTION_DAYS_DEFAULT,
        help="Done, skipped and cancelled runs older than this are deleted once a day, as are dismissed "
        "failed runs; failed runs are kept until they are dismissed. Empty: 365 days.",
    )

    @api.constrains("workflow_automation_run_retention_days")
    def _check_workflow_automation_run_retention_days(self):
        if any(settings.workflow_automation_run_retention_days < 0 for settings in self):
            raise ValidationError(_("Keep the workflow runs for at least one day (empty: 365 days)."))
