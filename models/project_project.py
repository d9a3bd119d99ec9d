from odoo import models


class ProjectProject(models.Model):
    _name = "project.project"
    # The mixin first, so that its hook wraps the whole of project.project's create and write.
    _inherit = ["workflow.automation.mixin", "project.project"]

    def _workflow_event_fields(self):
        return dict(super()._workflow_event_fields(), project_closed={"stage_id"})

    def _workflow_snapshot(self, events):
        snapshot = super()._workflow_snapshot(events)
        if "project_closed" in events:
            for record in self.sudo():
                snapshot[record.id]["closed"] = record.stage_id.fold
        return snapshot

    def _workflow_changed(self, event, before):
        if event != "project_closed":
            return super()._workflow_changed(event, before)
        return self.sudo().filtered(lambda r: r.stage_id.fold and not before[r.id]["closed"])
