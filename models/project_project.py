from odoo import _, api, fields, models
from odoo.exceptions import UserError


class ProjectProject(models.Model):
    _name = "project.project"
    # The mixin first, so that its hook wraps the whole of project.project's create and write.
    _inherit = ["workflow.automation.mixin", "project.project"]

    workflow_lead_id = fields.Many2one(
        "crm.lead",
        string="Opportunity",
        ondelete="set null",
        index="btree_not_null",
        copy=False,
        groups="sales_team.group_sale_salesman",
        help="The opportunity a workflow created this project for.",
    )

    @api.ondelete(at_uninstall=False)
    def _unlink_except_workflow_template(self):
        """A workflow copying this project would fail on every run: say which one."""
        action = self.env["workflow.automation.action"].sudo().search(
            [("project_template_id", "in", self.ids)], limit=1
        )
        if action:
            raise UserError(_(
                "The project “%(project)s” is copied by the workflow “%(workflow)s” (action “%(action)s”): "
                "choose another project there, or archive this one instead of deleting it.",
                project=action.project_template_id.display_name,
                workflow=action.workflow_id.display_name,
                action=action.display_name,
            ))

    def unlink(self):
        # before the deletion, which empties the projects of the workflows (empty: all projects)
        self.env["workflow.automation"]._switch_off_losing_scope(self)
        return super().unlink()

    def action_open_workflow_lead(self):
        self.ensure_one()
        return self.workflow_lead_id._workflow_action_open(self.workflow_lead_id.name)
    # A project is closed in a folded stage, as Odoo's own stage help says: the "project
    # closed" trigger fires on arriving there, the "close the project" effect moves it there.

    def _workflow_is_closed(self):
        self.ensure_one()
        return self.stage_id.fold

    def _workflow_event_fields(self):
        return dict(super()._workflow_event_fields(), project_closed={"stage_id"})

    def _workflow_snapshot(self, events):
        snapshot = super()._workflow_snapshot(events)
        if "project_closed" in events:
            for record in self.sudo():
                snapshot[record.id]["closed"] = record._workflow_is_closed()
        return snapshot

    def _workflow_changed(self, event, before):
        if event != "project_closed":
            return super()._workflow_changed(event, before)
        return self.sudo().filtered(lambda r: r._workflow_is_closed() and not before[r.id]["closed"])

    def _workflow_close(self):
        """Move the open projects to the first folded stage of their company (or shared)."""
        for company, projects in self.filtered(lambda p: not p._workflow_is_closed()).grouped("company_id").items():
            stage = self.env["project.project.stage"].search(
                [("fold", "=", True), ("company_id", "in", [False, company.id])], limit=1
            )
            if not stage:
                raise UserError(_("There is no folded project stage to close the project “%s” in.",
                                  projects[0].display_name))
            projects.write({"stage_id": stage.id})
