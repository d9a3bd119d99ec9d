from odoo import Command
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import new_test_user, tagged

from .common import WorkflowAutomationCase


@tagged("post_install", "-at_install")
class TestWorkflow(WorkflowAutomationCase):
    def stage_workflow(self, **values):
        return self.create_stage_workflow(
            self.stage_qualified, [{"kind": "assign_user", "user_id": self.owner.id}], **values
        )

    # Switched-on workflows are locked

    def test_switched_on_workflow_cannot_be_edited(self):
        workflow = self.stage_workflow()
        message = "switched on: switch it off first"
        with self.assertRaisesRegex(UserError, message):
            workflow.name = "Renamed"
        with self.assertRaisesRegex(UserError, message):
            workflow.trigger_ids.stage_id = self.stage_proposition
        with self.assertRaisesRegex(UserError, message):
            workflow.trigger_ids.action_ids.user_id = self.salesman
        with self.assertRaisesRegex(UserError, message):
            workflow.trigger_ids.action_ids.unlink()
        with self.assertRaisesRegex(UserError, message):
            workflow.unlink()

    def test_switched_on_workflow_can_be_switched_off_then_edited(self):
        workflow = self.stage_workflow()
        workflow.sequence = 3
        workflow.message_post(body="still possible")
        workflow.active = False
        workflow.name = "Renamed"
        workflow.trigger_ids.stage_id = self.stage_proposition
        workflow.unlink()
        self.assertFalse(workflow.exists())

    def test_copy_is_switched_off(self):
        workflow = self.stage_workflow()
        copy = workflow.copy()
        self.assertFalse(copy.active)
        self.assertEqual(copy.trigger_ids.action_ids.user_id, self.owner)

    # Bad input is refused at save, naming the workflow and the field

    def test_invalid_domain_refused(self):
        for domain in ("[('no_such_field', '=', 1)]", "[('name', '=',", "42"):
            with self.subTest(domain=domain), self.assertRaisesRegex(
                ValidationError, "Workflow “Bad condition”, field “Condition”: the condition is not a valid domain"
            ):
                self.create_workflow(
                    [{"kind": "create", "filter_domain": domain}], name="Bad condition", active=False
                )

    def test_trigger_stage_of_another_pipeline_refused(self):
        stage_b = self.env["crm.stage"].create({"name": "B only", "team_id": self.team_b.id})
        with self.assertRaisesRegex(
            ValidationError, "Workflow “Scoped”, field “To stage”: the stage “B only” belongs to the pipeline"
        ):
            self.create_stage_workflow(stage_b, [], teams=self.team_a, name="Scoped")

    def test_stage_reached_needs_a_stage(self):
        with self.assertRaisesRegex(ValidationError, "To stage"):
            self.create_workflow([{"kind": "stage_reached"}], active=False)

    def test_trigger_of_opportunities_refused_for_projects(self):
        with self.assertRaisesRegex(ValidationError, "not available for this target"):
            self.create_workflow([{"kind": "won"}], target="project.project", active=False)

    # Rights

    def test_sales_user_cannot_manage_workflows_but_fires_them(self):
        Workflow = self.env["workflow.automation"].with_user(self.salesman)
        with self.assertRaises(AccessError):
            Workflow.create({"name": "Mine", "target": "crm.lead"})
        workflow = self.stage_workflow()
        with self.assertRaises(AccessError):
            workflow.with_user(self.salesman).write({"active": False})
        with self.assertRaises(AccessError):
            workflow.trigger_ids.with_user(self.salesman).unlink()
        lead = self.create_leads()
        lead.with_user(self.salesman).write({"stage_id": self.stage_qualified.id})
        self.assertEqual(lead.user_id, self.owner)

    def test_project_user_cannot_manage_workflows(self):
        project_user = new_test_user(self.env, login="wa_project_user", groups="project.group_project_user")
        with self.assertRaises(AccessError):
            self.env["workflow.automation"].with_user(project_user).create(
                {"name": "Mine", "target": "project.project"}
            )

    def test_administrator_is_workflow_manager(self):
        admin = new_test_user(self.env, login="wa_admin", groups="base.group_system")
        self.assertTrue(admin.has_group("crm_workflow_automation.group_workflow_automation_manager"))
        workflow = self.env["workflow.automation"].with_user(admin).create({"name": "Admin's", "target": "crm.lead"})
        self.assertFalse(workflow.active, "a new workflow starts switched off")

    # Multi-company

    def test_workflow_never_acts_on_another_company(self):
        their_team = self.create_foreign_team()
        workflow = self.stage_workflow(teams=self.env["crm.team"])
        ours = self.create_leads(company_id=self.company.id)
        theirs = self.create_leads(company_id=their_team.company_id.id, user_id=False, team=their_team)
        (ours | theirs).write({"stage_id": self.stage_qualified.id})
        self.assertEqual(self.runs(workflow).res_id, ours.id)
        self.assertNotEqual(theirs.user_id, self.owner)

    def test_record_rules_hide_other_companies_workflows_and_runs(self):
        their_team = self.create_foreign_team()
        workflow = self.stage_workflow(company_id=their_team.company_id.id, teams=self.env["crm.team"])
        lead = self.create_leads(company_id=their_team.company_id.id, user_id=False, team=their_team)
        lead.write({"stage_id": self.stage_qualified.id})
        self.assertEqual(len(self.runs(workflow)), 1)
        manager = new_test_user(
            self.env, login="wa_manager", company_id=self.company.id, company_ids=[Command.set(self.company.ids)],
            groups="crm_workflow_automation.group_workflow_automation_manager,sales_team.group_sale_manager",
        )
        self.assertFalse(self.env["workflow.automation"].with_user(manager).search([("id", "=", workflow.id)]))
        self.assertFalse(self.env["workflow.automation.run"].with_user(manager).search(
            [("workflow_id", "=", workflow.id)]
        ))
