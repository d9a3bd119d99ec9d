from odoo import Command
from odoo.tests import new_test_user, tagged

from .test_tours import WorkflowAutomationTourCase


@tagged("post_install", "-at_install")
class TestExportTour(WorkflowAutomationTourCase):
    """In Chromium, a delegated workflow manager exports a workflow from its form and imports
    the downloaded file through the wizard."""

    def test_export_tour(self):
        manager = new_test_user(
            self.env, login="cwa_tour_export", name="Export Manager",
            groups="sales_team.group_sale_manager,crm_workflow_automation.group_workflow_automation_manager",
        )
        workflow = self.env["workflow.automation"].create({
            "name": "Tour export",
            "target": "crm.lead",
            "team_ids": [Command.set(self.sales_team.ids)],
            "trigger_ids": [Command.create({
                "kind": "stage_reached",
                "stage_id": self.stage_qualified.id,
                "action_ids": [Command.create({"kind": "note", "note_body": "Qualified by the tour"})],
            })],
        })
        self.start_tour(
            f"/odoo/action-crm_workflow_automation.workflow_automation_action_crm/{workflow.id}",
            "crm_workflow_automation_export_tour",
            login=manager.login,
        )
        imported = self.env["workflow.automation"].with_context(active_test=False).search([
            ("name", "=", "Tour export"), ("id", "!=", workflow.id),
        ])
        self.assertEqual(len(imported), 1)
        self.assertTrue(imported.is_imported)
        self.assertFalse(imported.active)
        self.assertFalse(imported.team_ids, "the pipeline of this database is left to fill in")
        self.assertEqual(imported.trigger_ids.stage_id, self.stage_qualified)
        self.assertEqual(imported.trigger_ids.action_ids.note_body, "Qualified by the tour")
        self.assertEqual(imported.create_uid, manager)
