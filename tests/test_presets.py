from odoo.exceptions import ValidationError
from odoo.tests import Form, tagged

from .common import WorkflowAutomationCase

PRESET = "crm_workflow_automation.workflow_automation_preset_%s"


@tagged("post_install", "-at_install")
class TestPresets(WorkflowAutomationCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.presets = cls.env["workflow.automation"].with_context(active_test=False).search(
            [("is_preset", "=", True)]
        )

    def use(self, preset, teams=None):
        """"Use this preset" as the admin does it: the wizard, then the workflow it opens."""
        preset = self.env.ref(PRESET % preset) if isinstance(preset, str) else preset
        action = preset.action_use_preset()
        wizard = Form(self.env[action["res_model"]].with_context(**action["context"]))
        if teams is not None:
            for team in teams:
                wizard.team_ids.add(team)
        result = wizard.save().action_apply()
        return self.env[result["res_model"]].browse(result["res_id"])

    def fill_in(self, workflow):
        """What each preset leaves to the admin: a stage, a date field, a user, a pipeline."""
        for trigger in workflow.trigger_ids:
            if trigger.kind == "stage_reached" and not trigger.stage_id:
                trigger.stage_id = self.stage_proposition
            if trigger.kind == "date" and not trigger.date_field_id:
                trigger.date_field_id = self.env["ir.model.fields"]._get("crm.lead", "date_deadline")
            for action in trigger.action_ids:
                if action.kind == "assign_user" and not action.user_id:
                    action.user_id = self.owner
                if action.kind == "activity" and action.activity_user_mode == "user" and not action.activity_user_id:
                    action.activity_user_id = self.owner
                if action.kind == "copy_lead" and not action.new_team_id:
                    action.new_team_id = self.team_b

    def test_presets_are_shipped_switched_off(self):
        self.assertGreaterEqual(len(self.presets), 9)
        self.assertFalse(any(self.presets.mapped("active")))
        self.assertTrue(all(preset.trigger_ids.action_ids for preset in self.presets))
        self.assertEqual(set(self.presets.mapped("target")), {"crm.lead", "project.project"})

    def test_preset_cannot_be_switched_on(self):
        preset = self.env.ref(PRESET % "won_repeat")
        with self.assertRaisesRegex(ValidationError, "cannot be switched on: use it to make a workflow"):
            preset.active = True

    def test_presets_never_fire(self):
        leads = self.create_leads(2, stage=self.stage_qualified)
        leads.action_set_won()
        self.assertFalse(self.env["workflow.automation.run"].search([("workflow_id", "in", self.presets.ids)]))
        self.assertFalse(self.env["crm.lead"].search([("workflow_origin_id", "in", leads.ids)]))

    def test_use_preset_makes_a_scoped_switched_off_copy(self):
        workflow = self.use("won_repeat", teams=self.team_a)
        preset = self.env.ref(PRESET % "won_repeat")
        self.assertFalse(workflow.active)
        self.assertFalse(workflow.is_preset)
        self.assertEqual(workflow.preset_id, preset)
        self.assertEqual(workflow.name, preset.name)
        self.assertEqual(workflow.team_ids, self.team_a)
        self.assertEqual(workflow.trigger_ids.action_ids.new_name, "Renewal: {{ object.name }}")
        self.assertTrue(preset.trigger_ids.action_ids, "the preset keeps its own actions")

    def test_every_preset_can_be_completed_and_switched_on(self):
        for preset in self.presets:
            with self.subTest(preset=preset.name):
                workflow = self.use(preset)
                self.fill_in(workflow)
                workflow.active = True
                self.assertTrue(workflow.active)

    def test_switching_on_an_incomplete_copy_names_the_missing_value(self):
        workflow = self.use("contract_follow_up", teams=self.team_a)
        workflow.trigger_ids.stage_id = self.stage_proposition
        with self.assertRaisesRegex(
            ValidationError,
            "Workflow “Contract: hand over .*”, action “Assign to a user”, field “User”: this action needs a value",
        ):
            workflow.active = True
        self.assertFalse(workflow.active)

    def test_ordinary_workflow_still_refuses_blanks_at_save(self):
        with self.assertRaisesRegex(ValidationError, "field “User”: this action needs a value"):
            self.create_stage_workflow(self.stage_qualified, [{"kind": "assign_user"}], active=False)

    def test_contract_preset_assigns_follows_up_and_wins(self):
        workflow = self.use("contract_follow_up", teams=self.team_a)
        self.fill_in(workflow)
        workflow.active = True
        lead = self.create_leads(stage=self.stage_qualified)
        lead.stage_id = self.stage_proposition
        self.assertEqual(lead.user_id, self.owner)
        self.assertEqual(lead.activity_ids.summary, "Have the contract for Opportunity 0 signed")
        lead.activity_ids.action_done()
        self.assertTrue(lead.stage_id.is_won)

    def test_lost_part_of_koban_preset_tags_and_notes(self):
        workflow = self.use("won_admin_lost_tag", teams=self.team_a)
        self.fill_in(workflow)
        workflow.active = True
        lead = self.create_leads()
        reason = self.env["crm.lost.reason"].create({"name": "Too expensive"})
        lead.action_set_lost(lost_reason_id=reason.id)
        self.assertIn(self.env.ref("crm_workflow_automation.crm_tag_preset_lost_review"), lead.tag_ids)
        self.assertIn("Lost: Too expensive.", lead.message_ids[0].body)

    def test_big_deal_preset_tells_the_sales_manager_once(self):
        """A salesman raises the revenue of a deal over 50,000: the sales manager gets a to-do,
        once; a raise that stays below, or a second one, gives none."""
        workflow = self.use("big_deal", teams=self.team_a)
        workflow.trigger_ids.action_ids.activity_user_id = self.sales_manager
        workflow.active = True
        big, small = self.create_leads(2, expected_revenue=10000)
        for lead, revenue in ((small, 20000), (big, 20000), (big, 60000), (big, 80000)):
            self.drag(lead, {"expected_revenue": revenue}, self.salesman)
        todo = big.activity_ids
        self.assertEqual((todo.user_id, todo.summary), (self.sales_manager, "Big deal: review Opportunity 0"))
        self.assertFalse(small.activity_ids)

    def test_project_kickoff_preset_applies_the_plan(self):
        workflow = self.use("project_kickoff")
        self.fill_in(workflow)
        workflow.active = True
        project = self.env["project.project"].create({"name": "Rollout"})
        self.assertEqual(project.user_id, self.owner)
        self.assertEqual(
            project.activity_ids.sorted("date_deadline").mapped("summary"),
            ["Kick-off meeting with the customer", "Share the project plan", "First check-in call"],
        )
        self.assertEqual(set(project.activity_ids.user_id.ids), {self.owner.id})

    def test_wizard_offers_only_presets(self):
        workflow = self.create_workflow([{"kind": "create", "actions": [{"kind": "note", "note_body": "x"}]}])
        wizard = self.env["workflow.automation.preset.wizard"].create({"preset_id": workflow.id})
        with self.assertRaisesRegex(ValidationError, "“Test workflow” is not a preset"):
            wizard.action_apply()
