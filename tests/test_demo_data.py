from odoo.tests import TransactionCase, tagged

DEMO = "crm_workflow_automation.%s"


@tagged("post_install", "-at_install")
class TestDemoData(TransactionCase):
    """The demo database shows workflows that have already acted (README's `make demo`)."""

    def test_demo_workflows_are_on_and_have_run(self):
        for name in ("proposition", "hardware_contract", "hardware_installation", "project_kickoff"):
            with self.subTest(workflow=name):
                workflow = self.env.ref(DEMO % f"workflow_automation_demo_{name}")
                self.assertTrue(workflow.active)
        for name in ("hardware_contract", "hardware_installation", "project_kickoff"):
            with self.subTest(workflow=name):
                workflow = self.env.ref(DEMO % f"workflow_automation_demo_{name}")
                self.assertEqual(set(workflow.run_ids.mapped("state")), {"done"})

    def test_demo_records_show_the_effects(self):
        contract = self.env.ref(DEMO % "crm_lead_demo_hardware_printers")
        self.assertEqual(contract.user_id, self.env.ref(DEMO % "res_users_demo_contract_manager"))
        self.assertEqual(contract.team_id, self.env.ref(DEMO % "crm_team_demo_hardware"))
        self.assertEqual(contract.activity_ids.summary, "Have the contract for Printer fleet renewal signed")

        won = self.env.ref(DEMO % "crm_lead_demo_hardware_laptops")
        copy = self.env["crm.lead"].search([("workflow_origin_id", "=", won.id)])
        self.assertEqual(copy.name, "Laptops for the sales team: installation")
        self.assertEqual(copy.stage_id, self.env.ref(DEMO % "crm_stage_demo_installation_schedule"))

        project = self.env.ref(DEMO % "project_project_demo_rollout")
        self.assertEqual(project.user_id, self.env.ref("base.user_demo"))
        self.assertEqual(len(project.activity_ids), 3)

    def test_presets_shipped_with_the_demo_stay_off(self):
        presets = self.env["workflow.automation"].with_context(active_test=False).search([("is_preset", "=", True)])
        self.assertTrue(presets)
        self.assertFalse(any(presets.mapped("active")))

    def test_demo_workflows_leave_other_records_alone(self):
        """Odoo's own tests run on a demo database: a record outside the demo scope (a new
        project, an opportunity of the stock Sales pipeline) is untouched by the demo workflows."""
        self.env.ref(DEMO % "workflow_automation_demo_lost").active = True  # off, until someone tries it
        demo_user = self.env.ref("base.user_demo")
        project = self.env["project.project"].create({"name": "Not a demo project"})
        self.assertFalse(project.user_id == demo_user)
        self.assertNotIn(demo_user.partner_id, project.message_partner_ids)
        self.assertFalse(project.activity_ids)

        lead = self.env["crm.lead"].create({
            "name": "Not a demo deal", "type": "opportunity",
            "team_id": self.env.ref("sales_team.team_sales_department").id,
        })
        lead.stage_id = self.env.ref("crm.stage_lead3")
        lead.action_set_lost()
        self.assertFalse(lead.activity_ids)
        self.assertFalse(lead.tag_ids)

        runs = self.env["workflow.automation.run"].search([
            "|", "&", ("res_model", "=", "project.project"), ("res_id", "=", project.id),
            "&", ("res_model", "=", "crm.lead"), ("res_id", "=", lead.id),
        ])
        self.assertFalse(runs)
