from datetime import datetime, timedelta

from freezegun import freeze_time

from odoo import Command
from odoo.exceptions import AccessError, UserError
from odoo.tests import new_test_user, tagged

from ..models.workflow_automation_action import OUTBOUND_KINDS
from .common import WorkflowAutomationCase, messages_containing


@tagged("post_install", "-at_install")
class TestTestMode(WorkflowAutomationCase):
    """Capsule's "Test this automation": test records, on which switched-off workflows fire."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.template = cls.create_template()

    def draft(self, actions, stage=None, teams=None, name="Draft"):
        """A switched-off workflow firing when an opportunity reaches ``stage`` (Qualified)."""
        return self.create_stage_workflow(
            stage or self.stage_qualified, actions, teams=teams, name=name, active=False
        )

    @staticmethod
    def note(text="fired"):
        return {"kind": "note", "note_body": text}

    # ------------------------------------------------------------------
    # The wizard
    # ------------------------------------------------------------------

    def test_wizard_proposes_the_workflow_pipeline_and_its_first_stage(self):
        wizard = self.open_test_wizard(self.draft([self.note()], teams=self.team_b))
        self.assertEqual(wizard.allowed_team_ids, self.team_b)
        self.assertEqual(wizard.team_id, self.team_b)
        self.assertEqual(wizard.stage_id, self.stage_new)

    def test_wizard_offers_only_the_stages_of_the_chosen_pipeline(self):
        stage_a = self.env["crm.stage"].create({"name": "A only", "team_id": self.team_a.id, "sequence": 0})
        wizard = self.open_test_wizard(self.draft([self.note()], teams=self.team_a | self.team_b))
        wizard.team_id = self.team_a
        self.assertEqual(wizard.stage_id, stage_a)
        wizard.team_id = self.team_b
        self.assertEqual(wizard.stage_id, self.stage_new, "a stage of pipeline A is replaced")
        self.assertNotIn(stage_a, self.env["crm.stage"].search(
            ["|", ("team_id", "=", False), ("team_id", "=", wizard.team_id.id)]
        ), "the field's domain leaves it out")

    def test_wizard_creates_a_flagged_opportunity_in_the_chosen_stage_and_opens_it(self):
        workflow = self.draft([self.note()])
        action = self.open_test_wizard(
            workflow, stage_id=self.stage_proposition.id, name="Trial deal", partner_id=self.partner.id
        ).action_create_test_record()
        self.assertEqual((action["res_model"], action["views"]), ("crm.lead", [(False, "form")]))
        lead = self.env["crm.lead"].browse(action["res_id"])
        self.assertEqual(lead.workflow_test_id, workflow)
        self.assertEqual(
            (lead.name, lead.type, lead.team_id, lead.stage_id, lead.partner_id, lead.user_id),
            ("Trial deal", "opportunity", self.team_a, self.stage_proposition, self.partner, self.env.user),
        )
        unnamed = self.create_test_record(workflow)
        self.assertEqual(unnamed.name, "Test: Draft")
        self.assertEqual(
            self.env["crm.lead"].search([("workflow_test_id", "!=", False)]), lead | unnamed,
            "the search filter “Test records” finds them",
        )

    def test_wizard_refuses_a_pipeline_or_stage_the_workflow_would_not_see(self):
        workflow = self.draft([self.note()], teams=self.team_a)
        stage_b = self.env["crm.stage"].create({"name": "B only", "team_id": self.team_b.id})
        with self.assertRaisesRegex(
            UserError, "Testing the workflow “Draft”, field “Stage”: the stage “B only” belongs to the pipeline"
        ):
            self.create_test_record(workflow, stage_id=stage_b.id)
        with self.assertRaisesRegex(
            UserError, "field “Pipeline”: the pipeline “Pipeline B” is not in the workflow's pipelines"
        ):
            self.create_test_record(workflow, team_id=self.team_b.id, stage_id=self.stage_new.id)
        self.assertFalse(self.env["crm.lead"].search([("workflow_test_id", "=", workflow.id)]))

    # ------------------------------------------------------------------
    # Which workflows fire on test records
    # ------------------------------------------------------------------

    def test_switched_off_workflow_fires_on_its_own_test_records_only(self):
        workflow = self.draft([self.note()])
        other_draft = self.draft([self.note("other draft")], name="Other draft")
        test_lead = self.create_test_record(workflow)
        other_test_lead = self.create_test_record(other_draft)
        ordinary = self.create_leads()
        self.qualify(test_lead | other_test_lead | ordinary)

        run = self.runs(workflow)
        self.assertEqual((run.res_id, run.state, run.is_test), (test_lead.id, "done", True))
        self.assertEqual(len(messages_containing(test_lead, "fired")), 1)
        self.assertEqual(self.runs(other_draft).res_id, other_test_lead.id)
        self.assertFalse(messages_containing(ordinary, "fired"), "a switched-off workflow ignores ordinary records")

    def test_test_record_fires_switched_on_workflows_like_any_record(self):
        live = self.create_stage_workflow(self.stage_qualified, [self.note("live")], name="Live")
        test_lead = self.create_test_record(self.draft([self.note()]))
        ordinary = self.create_leads()
        self.qualify(test_lead | ordinary)
        runs = self.runs(live)
        self.assertEqual(set(runs.mapped("res_id")), {test_lead.id, ordinary.id})
        self.assertEqual(runs.filtered("is_test").res_id, test_lead.id)

    def test_creating_a_test_record_fires_creation_and_stage_triggers(self):
        workflow = self.create_workflow(
            [
                {"kind": "create", "actions": [self.note("created")]},
                {"kind": "stage_reached", "stage_id": self.stage_proposition.id, "actions": [self.note("reached")]},
            ],
            active=False,
            team_ids=[Command.set(self.team_a.ids)],
        )
        lead = self.create_test_record(workflow, stage_id=self.stage_proposition.id)
        self.assertEqual(len(self.runs(workflow, "done")), 2)
        self.assertTrue(messages_containing(lead, "created") and messages_containing(lead, "reached"))

    def test_switching_a_tested_workflow_on_makes_it_fire_on_every_record(self):
        workflow = self.draft([self.note()])
        test_lead = self.create_test_record(workflow)
        workflow.active = True
        ordinary = self.create_leads()
        self.qualify(test_lead | ordinary)
        self.assertEqual(set(self.runs(workflow).mapped("res_id")), {test_lead.id, ordinary.id})

    def test_test_project_fires_its_workflow_whatever_projects_it_lists(self):
        todo, doing = self.env["project.project.stage"].create([
            {"name": "To do", "sequence": 1}, {"name": "Doing", "sequence": 2},
        ])
        listed = self.env["project.project"].create({"name": "Listed project", "stage_id": todo.id})
        workflow = self.create_workflow(
            [{"kind": "stage_reached", "project_stage_id": doing.id, "actions": [self.note()]}],
            target="project.project",
            project_ids=[Command.set(listed.ids)],
            active=False,
        )
        project = self.create_test_record(workflow, project_stage_id=todo.id, name="Trial project")
        self.assertEqual(
            (project._name, project.name, project.stage_id, project.workflow_test_id),
            ("project.project", "Trial project", todo, workflow),
        )
        (project | listed).write({"stage_id": doing.id})
        self.assertEqual(self.runs(workflow).res_id, project.id)

    # ------------------------------------------------------------------
    # Effects that leave the database are recorded, not sent
    # ------------------------------------------------------------------

    def sent_emails(self, lead):
        return lead.message_ids.filtered(lambda message: (message.subject or "").startswith("Your project"))

    def test_email_to_a_test_record_is_recorded_not_sent(self):
        self.assertEqual({"email", "webhook"}, OUTBOUND_KINDS, "the rule covers webhooks too, and no kind to come")
        email = {"kind": "email", "mail_template_id": self.template.id}
        draft = self.draft([email], name="Mail draft")
        live = self.create_stage_workflow(self.stage_qualified, [email], name="Mail live")
        test_lead = self.create_test_record(draft, name="Trial", partner_id=self.partner.id)
        ordinary = self.create_leads()
        self.qualify(test_lead | ordinary)

        self.assertFalse(self.sent_emails(test_lead))
        self.assertFalse(self.env["mail.mail"].search([("model", "=", "crm.lead"), ("res_id", "=", test_lead.id)]))
        self.assertEqual(len(self.sent_emails(ordinary)), 1, "an ordinary record of the same write gets its e-mail")
        test_runs = self.runs(draft) | self.runs(live).filtered("is_test")
        self.assertEqual(test_runs.mapped("state"), ["done", "done"])
        self.assertEqual(set(test_runs.mapped("message")), {"test: not sent"})
        self.assertFalse(self.runs(live).filtered(lambda run: not run.is_test).message)
        logs = messages_containing(test_lead, "not sent")
        self.assertEqual(len(logs), 2, "one line per workflow in the record's chatter")
        self.assertIn("Test record, not sent: the e-mail “Your project Trial” (workflow “Mail draft”).",
                      " ".join(logs.mapped("body")))
        self.assertFalse(logs.notified_partner_ids, "the log notifies nobody")

    def test_template_error_fails_the_test_run_as_it_would_fail_a_real_one(self):
        template = self.create_template(subject="{{ object.name / 0 }}")
        workflow = self.draft([{"kind": "email", "mail_template_id": template.id}])
        self.qualify(self.create_test_record(workflow))
        run = self.runs(workflow)
        self.assertEqual(run.state, "failed")
        self.assertTrue(run.message.startswith("Template “Follow-up”: "), run.message)

    # ------------------------------------------------------------------
    # Delayed actions and date triggers
    # ------------------------------------------------------------------

    def test_queue_runs_delayed_actions_of_a_switched_off_workflow_on_its_test_records(self):
        workflow = self.draft([
            {"kind": "note", "note_body": "later", "delay": 1, "delay_unit": "hours"},
            {"kind": "email", "mail_template_id": self.template.id, "delay": 1, "delay_unit": "hours"},
        ])
        test_lead = self.create_test_record(workflow)
        self.qualify(test_lead)
        runs = self.runs(workflow)
        self.assertEqual(runs.mapped("state"), ["scheduled", "scheduled"])
        self.run_queue(at=runs[0].date_due + timedelta(minutes=1))
        self.assertEqual(runs.mapped("state"), ["done", "done"])
        self.assertEqual(len(messages_containing(test_lead, "later")), 1)
        self.assertFalse(self.sent_emails(test_lead))
        self.assertEqual(runs.filtered(lambda run: run.action_kind == "email").message, "test: not sent")

    def test_date_scan_leaves_switched_off_workflows_out(self):
        self.company.partner_id.tz = "UTC"
        deadline = self.env["ir.model.fields"]._get("crm.lead", "date_deadline")

        def date_workflow(name, active):
            return self.create_workflow(
                [{"kind": "date", "date_field_id": deadline.id, "date_offset": 0, "date_hour": 9,
                  "actions": [self.note(name)]}],
                name=name, active=active, team_ids=[Command.set(self.team_a.ids)],
            )

        with freeze_time("2026-03-01 08:00"):
            draft, live = date_workflow("draft", False), date_workflow("live", True)
            test_lead = self.create_test_record(draft)
            test_lead.date_deadline = datetime(2026, 3, 2).date()
        self.scan_at("2026-03-01 08:00")
        self.scan_at("2026-03-02 10:00")
        self.assertFalse(self.runs(draft), "switched off: its test records are not scanned")
        self.assertEqual(self.runs(live).res_id, test_lead.id, "a switched-on workflow scans test records too")

    # ------------------------------------------------------------------
    # Removing test records
    # ------------------------------------------------------------------

    def test_removing_test_records_takes_their_activities_messages_and_runs(self):
        workflow = self.draft([{"kind": "activity", "activity_type_id": self.activity_call.id}, self.note()])
        live = self.create_stage_workflow(self.stage_qualified, [self.note("live")], name="Live")
        test_leads = self.create_test_record(workflow) | self.create_test_record(workflow)
        ordinary = self.create_leads()
        self.qualify(test_leads | ordinary)
        test_leads[1].action_set_lost()
        activities, messages = test_leads.activity_ids, test_leads.with_context(active_test=False).message_ids
        self.assertTrue(activities and messages)
        self.assertEqual(workflow.test_record_count, 2)

        workflow.action_remove_test_records()

        self.assertFalse(test_leads.exists(), "the lost (archived) one too")
        self.assertFalse(activities.exists())
        self.assertFalse(messages.exists())
        self.assertFalse(self.runs(workflow))
        self.assertEqual(self.runs(live).res_id, ordinary.id, "the runs of other records stay")
        self.assertEqual(len(messages_containing(ordinary, "live")), 1)
        self.assertIn("2 test record(s) removed, with their runs.", workflow.message_ids[0].body)
        workflow.invalidate_recordset(["test_record_count"])
        self.assertEqual(workflow.test_record_count, 0)

    def test_removal_the_user_may_not_do_is_refused_not_skipped(self):
        workflow = self.draft([self.note()])
        test_lead = self.create_test_record(workflow)  # the salesperson is the creator, not the manager below
        self.qualify(test_lead)
        manager = new_test_user(
            self.env, login="wa_own_leads_manager",
            groups="crm_workflow_automation.group_workflow_automation_manager,sales_team.group_sale_salesman",
        )
        with self.assertRaises(AccessError):
            workflow.with_user(manager).action_remove_test_records()
        self.assertTrue(test_lead.exists())
        self.assertTrue(self.runs(workflow))

    def test_deleting_a_workflow_deletes_its_test_records(self):
        workflow = self.draft([self.note()])
        test_lead = self.create_test_record(workflow)
        other_test_lead = self.create_test_record(self.draft([self.note()], name="Other"))
        ordinary = self.create_leads()
        workflow.unlink()
        self.assertFalse(test_lead.exists())
        self.assertTrue(other_test_lead.exists() and ordinary.exists())
