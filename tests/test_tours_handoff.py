from odoo.tests import new_test_user, tagged

from .common import load_french
from .test_tours import WorkflowAutomationTourCase


@tagged("post_install", "-at_install")
class TestHandoffTour(WorkflowAutomationTourCase):
    """In Chromium, a French salesperson with *own documents* rights drags her opportunity into
    a stage whose workflow hands it to someone else: the drag lands, without an error."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        load_french(cls.env)
        cls.salesperson = new_test_user(
            cls.env, login="cwa_tour_handoff", name="Handoff Salesperson", lang="fr_FR",
            groups="sales_team.group_sale_salesman",
        )
        cls.owner = new_test_user(
            cls.env, login="cwa_tour_handoff_owner", name="Handoff Owner", groups="sales_team.group_sale_salesman"
        )
        cls.sales_team.member_ids |= cls.salesperson
        cls.lead = cls.env["crm.lead"].create({
            "name": "Hand-off opportunity",
            "type": "opportunity",
            "partner_id": cls.customer.id,
            "team_id": cls.sales_team.id,
            "user_id": cls.salesperson.id,
            "stage_id": cls.stage_new.id,
        })
        cls.workflow = cls.create_qualified_workflow(
            "Hand-off workflow", [{"kind": "assign_user", "user_id": cls.owner.id}]
        )

    def test_handoff_tour(self):
        self.start_tour(
            "/odoo/action-crm.crm_lead_action_pipeline", "crm_workflow_automation_handoff_tour",
            login=self.salesperson.login,
        )
        self.env.invalidate_all()
        self.assertEqual(self.lead.stage_id, self.stage_qualified, "the drag is saved")
        self.assertEqual(self.lead.user_id, self.owner, "the workflow handed the opportunity over")
        self.assertEqual(self.lead.team_id, self.sales_team, "in its pipeline")
        runs = self.env["workflow.automation.run"].search([("workflow_id", "=", self.workflow.id)])
        self.assertEqual(runs.mapped("state"), ["done"])
        self.assertEqual(runs.user_id, self.salesperson, "the run names who dragged")
