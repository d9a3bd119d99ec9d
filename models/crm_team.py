from odoo import models


class CrmTeam(models.Model):
    _inherit = "crm.team"

    def unlink(self):
        # before the deletion, which empties the pipelines of the workflows (empty: all pipelines)
        self.env["workflow.automation"]._switch_off_losing_scope(self)
        return super().unlink()

    def action_open_workflow_board(self):
        """The pipeline's Automations board; from a kanban column, only that stage's column."""
        self.ensure_one()
        return self.env["workflow.automation"]._board_action("crm.lead", self, self.env.context.get("board_stage_id"))
