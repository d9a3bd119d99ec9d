from odoo import models


class CrmTeam(models.Model):
    _inherit = "crm.team"

    def unlink(self):
        # before the deletion, which empties the pipelines of the workflows (empty: all pipelines)
        self.env["workflow.automation"]._switch_off_losing_scope(self)
        return super().unlink()
