from odoo import Command
from odoo.tests import Form, new_test_user, tagged

from .common import WorkflowAutomationCase
from .test_tours import WorkflowAutomationTourCase


@tagged("post_install", "-at_install")
class TestFormsFromScratchTours(WorkflowAutomationTourCase):
    """The screens of a workflow as an admin uses them, building a workflow from scratch."""

    def find_workflow(self, name):
        """The workflow the tour made: switched off, as every new workflow."""
        return self.env["workflow.automation"].with_context(active_test=False).search([("name", "=", name)])

    def test_scratch_tour(self):
        """A workflow, its trigger and its actions, all new: every picker of the actions finds the
        records of the target, and the unsaved e-mail says to save before previewing."""
        template = self.env["mail.template"].create({
            "name": "Tour scratch proposal",
            "model_id": self.env["ir.model"]._get_id("crm.lead"),
            "subject": "Our proposal",
        })
        plan = self.env["mail.activity.plan"].create({
            "name": "Tour scratch plan",
            "res_model": "crm.lead",
            "template_ids": [Command.create({
                "activity_type_id": self.env.ref("mail.mail_activity_data_call").id, "summary": "Call",
            })],
        })
        with self.assertNoLogs("odoo.sql_db", "ERROR"):
            self.start_tour(
                "/odoo/action-crm_workflow_automation.workflow_automation_action_crm",
                "crm_workflow_automation_scratch_tour",
                login="admin",
            )
        workflow = self.find_workflow("Tour from scratch")
        created, reached = workflow.trigger_ids
        self.assertEqual((created.kind, reached.kind), ("create", "stage_reached"))
        self.assertEqual(reached.stage_id, self.stage_qualified)
        actions = reached.action_ids
        self.assertEqual(actions.mapped("kind"), ["email", "activity", "webhook"])
        self.assertEqual(actions[0].mail_template_id, template)
        self.assertEqual(actions[1].activity_plan_id, plan)
        self.assertEqual(actions[2].webhook_field_ids.mapped("name"), ["expected_revenue"])

    def test_webhook_tour(self):
        """"Send a webhook" in a saved workflow shows the sample payload instead of an error."""
        workflow = self.start_workflow_form_tour("Tour webhook", "crm_workflow_automation_webhook_tour")
        action = workflow.trigger_ids.action_ids
        self.assertEqual((action.kind, action.webhook_url), ("webhook", "https://hooks.example.com/odoo"))
        self.assertEqual(action.webhook_field_ids.mapped("name"), ["expected_revenue"])

    def test_project_kinds_tour(self):
        """A project workflow offers only the triggers, actions and effects of projects, and
        the e-mail templates of projects."""
        template = self.env["mail.template"].create({
            "name": "Tour project news", "model_id": self.env["ir.model"]._get_id("project.project"),
        })
        self.start_tour(
            "/odoo/action-crm_workflow_automation.workflow_automation_action_project",
            "crm_workflow_automation_project_kinds_tour",
            login="admin",
        )
        workflow = self.find_workflow("Tour project kinds")
        self.assertEqual(workflow.target, "project.project")
        self.assertEqual(workflow.trigger_ids.kind, "project_closed")
        self.assertEqual(workflow.trigger_ids.action_ids.mapped("kind"), ["activity", "email"])
        self.assertEqual(workflow.trigger_ids.action_ids[1].mail_template_id, template)

    def test_refusal_tour(self):
        """Switching on a preset's copy with blanks is refused; the form is off and editable again."""
        preset = self.env.ref("crm_workflow_automation.workflow_automation_preset_contract_follow_up")
        wizard = self.env["workflow.automation.preset.wizard"].create({
            "preset_id": preset.id, "name": "Tour contract", "team_ids": [Command.set(self.sales_team.ids)],
        })
        workflow = self.env["workflow.automation"].browse(wizard.action_apply()["res_id"])
        self.start_tour(
            f"/odoo/action-crm_workflow_automation.workflow_automation_action_crm/{workflow.id}",
            "crm_workflow_automation_refusal_tour",
            login="admin",
        )
        self.assertEqual(workflow.name, "Tour contract, completed", "the admin could edit it after the refusal")
        self.assertFalse(workflow.active)

    def test_followup_done_tour(self):
        """The effect of a follow-up marked done from the chatter shows in the open form."""
        salesman = new_test_user(self.env, login="cwa_tour_followup_sales", groups="sales_team.group_sale_salesman")
        self.create_qualified_workflow("Tour follow-up", [{
            "kind": "activity",
            "activity_type_id": self.env.ref("mail.mail_activity_data_todo").id,
            "activity_summary": "Have the contract signed",
            "followup_effect": "mark_won",
        }])
        lead = self.env["crm.lead"].create({
            "name": "Tour follow-up deal", "type": "opportunity", "team_id": self.sales_team.id,
            "user_id": salesman.id, "stage_id": self.stage_new.id, "partner_id": self.customer.id,
        })
        lead.stage_id = self.stage_qualified
        self.assertEqual(lead.activity_ids.summary, "Have the contract signed")
        self.start_tour(
            f"/odoo/crm/{lead.id}", "crm_workflow_automation_followup_done_tour", login=salesman.login,
        )
        self.assertTrue(lead.stage_id.is_won, "the follow-up's effect marked the deal won")

    def test_field_changed_tour(self):
        """An admin builds "the priority changes to Very High" in the form; it then fires."""
        workflow = self.start_workflow_form_tour("Tour field changed", "crm_workflow_automation_field_changed_tour")
        trigger = workflow.trigger_ids
        self.assertEqual((trigger.kind, trigger.stage_id), ("field_changed", self.stage_qualified.browse()))
        self.assertEqual(trigger.changed_field_ids, self.env["ir.model.fields"]._get("crm.lead", "priority"))
        self.assertEqual(trigger.changed_to_selection_id.value, "3")
        self.assertEqual(trigger.display_name, "Changes: Priority")
        trigger.action_ids = [Command.create({"kind": "note", "note_body": "Very high"})]
        workflow.active = True
        lead = self.env["crm.lead"].create({
            "name": "Tour hot deal", "type": "opportunity", "team_id": self.sales_team.id, "priority": "1",
        })
        lead.priority = "3"
        runs = self.env["workflow.automation.run"].search([("workflow_id", "=", workflow.id)])
        self.assertEqual((runs.res_id, runs.state), (lead.id, "done"))


@tagged("post_install", "-at_install")
class TestTestWizardForm(WorkflowAutomationCase):
    """The "Test this workflow" wizard as its form computes it."""

    def test_default_stage_is_the_pipeline_first_stage(self):
        """A pipeline whose first stage is its own: the wizard proposes that stage, without a
        condition on an unsaved record dropped from the search."""
        team = self.env["crm.team"].create({"name": "Installation"})
        survey = self.env["crm.stage"].create({"name": "Site survey", "team_id": team.id, "sequence": 0})
        workflow = self.create_stage_workflow(survey, [{"kind": "note", "note_body": "Survey"}], teams=team)
        with self.assertNoLogs("odoo.models", "WARNING"):
            wizard = Form(self.env["workflow.automation.test.wizard"].with_context(default_workflow_id=workflow.id))
        self.assertEqual(wizard.team_id, team)
        self.assertEqual(wizard.stage_id, survey)
