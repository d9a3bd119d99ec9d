from odoo import Command
from odoo.exceptions import ValidationError
from odoo.tests import tagged

from .common import WorkflowAutomationCase


@tagged("post_install", "-at_install")
class TestActions(WorkflowAutomationCase):
    def test_assign_user(self):
        workflow, lead = self.fire({"kind": "assign_user", "user_id": self.owner.id})
        self.assertEqual(lead.user_id, self.owner)
        self.assertEqual(self.runs(workflow).state, "done")

    def assigned_notifications(self, lead):
        return self.env["mail.message"].search([
            ("model", "=", "crm.lead"), ("res_id", "=", lead.id),
            ("message_type", "=", "user_notification"), ("partner_ids", "in", self.owner.partner_id.ids),
        ])

    def test_assign_user_notifies_the_new_owner_only_when_asked(self):
        _workflow, silent = self.fire({"kind": "assign_user", "user_id": self.owner.id})
        self.assertFalse(self.assigned_notifications(silent))
        self.assertIn(self.owner.partner_id, silent.message_partner_ids, "the new owner follows the lead")
        self.env.registry.clear_cache()
        lead = self.create_leads()
        self.env["workflow.automation"].search([]).write({"active": False})
        self.fire({"kind": "assign_user", "user_id": self.owner.id, "notify_assignee": True}, leads=lead)
        self.assertEqual(len(self.assigned_notifications(lead)), 1)

    def test_assign_user_keeps_each_leads_team(self):
        self.team_b.member_ids = self.owner
        lead_in_a, lead_in_b = self.create_leads(team=self.team_a) | self.create_leads(team=self.team_b)
        self.fire({"kind": "assign_user", "user_id": self.owner.id}, leads=lead_in_a | lead_in_b,
                  teams=self.team_a | self.team_b)
        self.assertEqual(lead_in_a.team_id, self.team_a, "kept, although the owner is not a member of it")
        self.assertEqual(lead_in_b.team_id, self.team_b)
        self.assertEqual((lead_in_a | lead_in_b).user_id, self.owner)

    def test_assign_team(self):
        _workflow, lead = self.fire({"kind": "assign_team", "team_id": self.team_b.id})
        self.assertEqual(lead.team_id, self.team_b)

    def test_schedule_activity_for_owner_with_placeholders(self):
        _workflow, lead = self.fire({
            "kind": "activity",
            "activity_type_id": self.activity_call.id,
            "activity_summary": "Call {{ object.partner_id.name }}",
            "activity_note": "About {{ object.name }}",
            "activity_deadline": 2,
            "activity_deadline_unit": "weeks",
        })
        activity = lead.activity_ids
        self.assertEqual(activity.summary, "Call Acme Corp")
        self.assertIn("About Opportunity 0", activity.note)
        self.assertEqual(activity.user_id, self.salesman, "the record owner")
        self.assertEqual((activity.date_deadline - activity.create_date.date()).days, 14)

    def test_schedule_activity_for_chosen_user(self):
        _workflow, lead = self.fire({
            "kind": "activity",
            "activity_type_id": self.activity_call.id,
            "activity_user_mode": "user",
            "activity_user_id": self.owner.id,
        })
        self.assertEqual(lead.activity_ids.user_id, self.owner)

    def test_activity_without_owner_goes_to_the_triggering_user(self):
        lead = self.create_leads(user_id=False)
        self.fire({"kind": "activity", "activity_type_id": self.activity_call.id}, leads=lead)
        self.assertEqual(lead.activity_ids.user_id, self.salesman)

    def test_post_note(self):
        _workflow, lead = self.fire({"kind": "note", "note_body": "{{ object.name }} is qualified"})
        note = lead.message_ids[0]
        self.assertIn("Opportunity 0 is qualified", note.body)
        self.assertEqual(note.subtype_id, self.env.ref("mail.mt_note"))

    def test_add_and_remove_tags(self):
        other_tag = self.env["crm.tag"].create({"name": "Workflow test other tag"})
        lead = self.create_leads(tag_ids=[Command.set(other_tag.ids)])
        self.fire(
            {"kind": "add_tags", "tag_ids": [Command.set(self.tag.ids)]},
            {"kind": "remove_tags", "tag_ids": [Command.set(other_tag.ids)]},
            leads=lead,
        )
        self.assertEqual(lead.tag_ids, self.tag)

    def test_move_to_stage(self):
        _workflow, lead = self.fire({"kind": "set_stage", "stage_id": self.stage_proposition.id})
        self.assertEqual(lead.stage_id, self.stage_proposition)

    def test_mark_won(self):
        _workflow, lead = self.fire({"kind": "mark_won"})
        self.assertEqual(lead.stage_id, self.stage_won)
        self.assertEqual(lead.probability, 100)

    def test_mark_lost_with_reason(self):
        reason = self.env["crm.lost.reason"].create({"name": "No budget"})
        _workflow, lead = self.fire({"kind": "mark_lost", "lost_reason_id": reason.id})
        self.assertFalse(lead.active)
        self.assertEqual(lead.lost_reason_id, reason)

    # ------------------------------------------------------------------
    # Failure paths: refused at save, or failing this run only
    # ------------------------------------------------------------------

    def test_missing_parameters_are_refused_naming_the_field(self):
        for kind, field_label in [
            ("assign_user", "User"),
            ("assign_team", "Sales team"),
            ("activity", "Activity Type"),
            ("email", "E-mail template"),
            ("note", "Note text"),
            ("add_tags", "Tags"),
            ("remove_tags", "Tags"),
            ("set_stage", "Stage"),
            ("webhook", "URL"),
        ]:
            with self.subTest(kind=kind), self.assertRaisesRegex(
                ValidationError, f"Workflow “Broken”, action .*, field “{field_label}”: this action needs a value"
            ):
                self.create_workflow(
                    [{"kind": "create", "actions": [{"kind": kind}]}], name="Broken", active=False
                )

    def test_action_of_opportunities_refused_for_projects(self):
        with self.assertRaisesRegex(ValidationError, "not available for this target"):
            self.create_workflow(
                [{"kind": "create", "actions": [{"kind": "mark_won"}]}], target="project.project", active=False
            )

    def test_negative_activity_deadline_refused(self):
        with self.assertRaisesRegex(ValidationError, "cannot be negative"):
            self.create_workflow(
                [{"kind": "create", "actions": [
                    {"kind": "activity", "activity_type_id": self.activity_call.id, "activity_deadline": -1}
                ]}],
                active=False,
            )

    def test_invalid_sender_address_refused(self):
        with self.assertRaisesRegex(ValidationError, "Sender address"):
            self.create_workflow(
                [{"kind": "create", "actions": [{
                    "kind": "email", "mail_template_id": self.create_template().id,
                    "email_from_mode": "fixed", "email_from": "not an address",
                }]}],
                active=False,
            )

    def test_template_of_another_model_refused(self):
        template = self.create_template(model_id=self.env["ir.model"]._get_id("res.partner"))
        with self.assertRaisesRegex(ValidationError, "made for another model"):
            self.create_workflow(
                [{"kind": "create", "actions": [{"kind": "email", "mail_template_id": template.id}]}], active=False
            )

    def test_move_to_stage_of_another_pipeline_refused(self):
        stage_b = self.env["crm.stage"].create({"name": "B only", "team_id": self.team_b.id})
        with self.assertRaisesRegex(ValidationError, "belongs to the pipeline “Pipeline B”"):
            self.create_stage_workflow(self.stage_qualified, [{"kind": "set_stage", "stage_id": stage_b.id}])

    def test_activity_rendering_error_fails_that_run_only(self):
        workflow, lead = self.fire({
            "kind": "activity",
            "activity_type_id": self.activity_call.id,
            "activity_summary": "{{ object.name + 1 }}",
        })
        self.assertEqual(self.runs(workflow).state, "failed")
        self.assertFalse(lead.activity_ids)
        self.assertEqual(lead.stage_id, self.stage_qualified)
