import re
from datetime import timedelta

from dateutil.relativedelta import relativedelta
from freezegun import freeze_time

from odoo import Command, fields
from odoo.exceptions import UserError, ValidationError
from odoo.tests import Form, tagged

from odoo.addons.crm_workflow_automation.models.workflow_automation_mixin import DEPTH_CONTEXT_KEY, MAX_DEPTH

from .common import WorkflowAutomationCase


@tagged("post_install", "-at_install")
class TestCreateLinkedProject(WorkflowAutomationCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.project_stage = cls.env.ref("project.project_project_stage_1")
        cls.project_tag = cls.env["project.tags"].create({"name": "From a deal"})
        cls.template = cls.env["project.project"].create({
            "name": "Onboarding template",
            "tasks": [Command.create({"name": "Kick-off"}), Command.create({"name": "Training"})],
        })

    def project_action(self, **values):
        return {"kind": "create_project", **values}

    def test_linked_project_from_the_opportunity(self):
        workflow, lead = self.fire(self.project_action(
            new_name="Project {{ object.partner_id.name }}", project_stage_id=self.project_stage.id,
        ))
        project = lead.workflow_project_ids
        self.assertEqual(project.name, "Project Acme Corp")
        self.assertEqual(project.partner_id, self.partner)
        self.assertEqual(project.user_id, self.salesman, "the salesperson manages the project")
        self.assertEqual(project.stage_id, self.project_stage)
        self.assertEqual(project.company_id, lead.company_id)
        self.assertEqual(project.workflow_lead_id, lead)
        self.assertFalse(project.tasks, "no template: an empty project")
        self.assertEqual(self.runs(workflow).state, "done")
        self.assertEqual(lead.workflow_project_count, 1)
        self.assertEqual(lead.action_open_workflow_projects()["res_id"], project.id)
        self.assertEqual(project.action_open_workflow_lead()["res_id"], lead.id)

    def test_default_name_is_the_opportunity_name(self):
        _workflow, lead = self.fire(self.project_action())
        self.assertEqual(lead.workflow_project_ids.name, "Opportunity 0")

    def test_projects_of_a_batch_are_created_in_one_insert(self):
        leads, queries = self.fire_on_batch(self.project_action())
        self.assertEqual(len(leads.workflow_project_ids), 3)
        self.assertEqual(self.count_statements(queries, r'INSERT INTO "project_project"'), 1)

    def test_template_is_copied_with_its_tasks_for_a_chosen_manager(self):
        self.template.action_archive()  # templates are often archived: still copied, tasks active
        _workflow, lead = self.fire(self.project_action(
            project_template_id=self.template.id, new_user_mode="user", new_user_id=self.owner.id,
        ))
        project = lead.workflow_project_ids
        self.assertEqual(project.name, "Opportunity 0")
        self.assertTrue(project.active)
        self.assertEqual(sorted(project.tasks.mapped("name")), ["Kick-off", "Training"])
        self.assertTrue(all(project.tasks.mapped("active")))
        self.assertEqual(project.user_id, self.owner)
        self.assertEqual(project.partner_id, self.partner)
        self.assertEqual(len(self.template.with_context(active_test=False).tasks), 2, "the template is untouched")

    def test_deleting_a_template_project_is_refused_naming_the_workflow(self):
        self.create_stage_workflow(
            self.stage_qualified, [self.project_action(project_template_id=self.template.id)], name="Onboard"
        )
        with self.assertRaisesRegex(UserError, "copied by the workflow “Onboard”.*archive this one"):
            self.template.unlink()

    def test_template_of_another_company_refused(self):
        other_company = self.env["res.company"].create({"name": "Other Co"})
        foreign = self.env["project.project"].create({"name": "Foreign", "company_id": other_company.id})
        with self.assertRaisesRegex(
            ValidationError, "field “Project to copy”: “Foreign” belongs to the company “Other Co”"
        ):
            self.create_stage_workflow(self.stage_qualified, [self.project_action(project_template_id=foreign.id)])

    def test_project_workflows_fire_on_the_new_project(self):
        project_workflow = self.create_project_workflow(
            [{"kind": "add_tags", "project_tag_ids": [Command.set(self.project_tag.ids)]}]
        )
        _workflow, lead = self.fire(self.project_action())
        project = lead.workflow_project_ids
        self.assertEqual(project.tag_ids, self.project_tag)
        run = self.runs(project_workflow)
        self.assertEqual((run.state, run.res_id, run.user_id), ("done", project.id, self.salesman))

    def test_project_workflows_fire_once_the_template_copies_are_complete(self):
        project_workflow = self.create_workflow(
            [{"kind": "create", "filter_domain": "[('tasks', '!=', False)]",
              "actions": [{"kind": "add_tags", "project_tag_ids": [Command.set(self.project_tag.ids)]}]}],
            target="project.project",
        )
        self.create_stage_workflow(self.stage_qualified, [self.project_action(project_template_id=self.template.id)])
        leads = self.create_leads(2)
        leads.write({"stage_id": self.stage_qualified.id})
        projects = leads.workflow_project_ids
        self.assertEqual(len(projects), 2)
        self.assertEqual(projects.tag_ids, self.project_tag, "the condition saw the copied tasks")
        self.assertEqual(self.runs(project_workflow).mapped("state"), ["done", "done"])

    def test_chain_depth_carries_over_to_the_project(self):
        project_workflow = self.create_project_workflow(
            [{"kind": "add_tags", "project_tag_ids": [Command.set(self.project_tag.ids)]}]
        )
        self.create_stage_workflow(self.stage_qualified, [self.project_action()])
        lead = self.create_leads()
        # the lead's workflow runs at the last allowed link: the project's would be one too many
        lead.with_context(**{DEPTH_CONTEXT_KEY: MAX_DEPTH - 1}).write({"stage_id": self.stage_qualified.id})
        project = lead.workflow_project_ids
        self.assertTrue(project)
        self.assertFalse(project.tag_ids)
        run = self.runs(project_workflow)
        self.assertEqual(run.state, "skipped")
        self.assertIn("triggered each other", run.message)

    def test_name_template_error_fails_the_run_and_keeps_the_write(self):
        workflow, lead = self.fire(self.project_action(new_name="{{ object.name / 0 }}"))
        run = self.runs(workflow)
        self.assertEqual(run.state, "failed")
        self.assertFalse(lead.workflow_project_ids)
        self.assertFalse(self.env["project.project"].search([("workflow_lead_id", "=", lead.id)]))
        self.assertEqual(lead.stage_id, self.stage_qualified, "the user's write is kept")

    def test_empty_rendered_name_fails_that_record_only(self):
        named, anonymous = self.create_leads(2)
        anonymous.partner_id = False
        workflow, _leads = self.fire(
            self.project_action(new_name="{{ object.partner_id.name or '' }}"), leads=named | anonymous
        )
        self.assertEqual(named.workflow_project_ids.name, "Acme Corp")
        self.assertFalse(anonymous.workflow_project_ids)
        failed = self.runs(workflow, "failed")
        self.assertEqual(failed.res_id, anonymous.id)
        self.assertIn("empty name", failed.message)

    def test_name_template_is_required(self):
        with self.assertRaisesRegex(ValidationError, "field “Name of the new record”: this action needs a value"):
            self.create_stage_workflow(self.stage_qualified, [self.project_action(new_name="")])


@tagged("post_install", "-at_install")
class TestCopyAndRepeat(WorkflowAutomationCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.stage_b = cls.env["crm.stage"].create({"name": "B: onboarding", "team_id": cls.team_b.id})
        cls.stage_a = cls.env["crm.stage"].create({"name": "A: only", "team_id": cls.team_a.id})

    def copy_action(self, **values):
        return {"kind": "copy_lead", "new_team_id": self.team_b.id, "new_stage_id": self.stage_b.id, **values}

    def test_copy_carries_the_fields_over_and_links_back(self):
        lead = self.create_leads(
            expected_revenue=1200, priority="2", description="<p>Big deal</p>", tag_ids=[Command.set(self.tag.ids)],
        )
        workflow, _lead = self.fire(self.copy_action(), leads=lead)
        copy = lead.workflow_copy_ids
        self.assertEqual(copy.name, "Opportunity 0 (copy)")
        self.assertEqual((copy.team_id, copy.stage_id), (self.team_b, self.stage_b))
        self.assertEqual(copy.workflow_origin_id, lead)
        self.assertEqual(copy.user_id, self.salesman, "the same owner")
        self.assertEqual(copy.partner_id, self.partner)
        self.assertEqual(copy.company_id, lead.company_id)
        self.assertEqual((copy.expected_revenue, copy.priority, copy.tag_ids), (1200, "2", self.tag))
        self.assertIn("Big deal", copy.description)
        self.assertEqual((lead.team_id, lead.stage_id), (self.team_a, self.stage_qualified), "the original stays")
        self.assertEqual(self.runs(workflow).state, "done")
        self.assertEqual(lead.workflow_copy_count, 1)
        self.assertEqual(lead.action_open_workflow_copies()["res_id"], copy.id)

    def test_copy_of_a_lost_opportunity_is_open_for_a_chosen_owner(self):
        reason = self.env["crm.lost.reason"].create({"name": "Too early"})
        self.create_workflow(
            [{"kind": "lost", "actions": [self.copy_action(
                new_stage_id=False, new_user_mode="user", new_user_id=self.owner.id, new_name="Retry {{ object.name }}"
            )]}],
            team_ids=[Command.set(self.team_a.ids)],
        )
        lead = self.create_leads()
        lead.action_set_lost(lost_reason_id=reason.id)
        copy = self.env["crm.lead"].search([("workflow_origin_id", "=", lead.id)])
        self.assertEqual(copy.name, "Retry Opportunity 0")
        self.assertTrue(copy.active)
        self.assertFalse(copy.lost_reason_id)
        self.assertEqual(copy.user_id, self.owner)
        self.assertEqual(copy.stage_id, self.stage_new, "no stage chosen: the pipeline's first stage")

    def test_copies_of_a_batch_are_created_in_one_insert(self):
        leads, queries = self.fire_on_batch(self.copy_action())
        self.assertEqual(len(leads.workflow_copy_ids), 3)
        self.assertEqual(self.count_statements(queries, r'INSERT INTO "crm_lead"'), 1)

    def test_stage_of_another_pipeline_refused(self):
        with self.assertRaisesRegex(
            ValidationError,
            "Workflow “Copy”, action “Copy into another pipeline”, field “Stage of the new record”: "
            "the stage “A: only” belongs to the pipeline “Pipeline A”",
        ):
            self.create_stage_workflow(self.stage_qualified, [self.copy_action(new_stage_id=self.stage_a.id)],
                                       name="Copy")

    def test_shared_stage_accepted(self):
        workflow, lead = self.fire(self.copy_action(new_stage_id=self.stage_proposition.id))
        self.assertEqual(lead.workflow_copy_ids.stage_id, self.stage_proposition)
        self.assertEqual(self.runs(workflow).state, "done")

    def test_copy_needs_a_pipeline_of_the_workflow_company(self):
        with self.assertRaisesRegex(ValidationError, "field “Pipeline”: this action needs a value"):
            self.create_stage_workflow(self.stage_qualified, [self.copy_action(new_team_id=False, new_stage_id=False)])
        with self.assertRaisesRegex(ValidationError, "field “Pipeline”: “Foreign” belongs to the company"):
            self.create_stage_workflow(
                self.stage_qualified, [self.copy_action(new_team_id=self.create_foreign_team().id, new_stage_id=False)]
            )

    def test_chosen_owner_is_required(self):
        with self.assertRaisesRegex(ValidationError, "field “Chosen owner”: choose the owner"):
            self.create_stage_workflow(self.stage_qualified, [self.copy_action(new_user_mode="user")])

    def test_repeat_lead_six_months_later_by_the_queue(self):
        workflow = self.create_workflow(
            [{"kind": "won", "actions": [{
                "kind": "repeat_lead", "new_lead_type": "lead", "new_name": "Renewal: {{ object.name }}",
                "new_team_id": self.team_b.id, "new_stage_id": self.stage_b.id, "delay": 6, "delay_unit": "months",
            }]}],
            team_ids=[Command.set(self.team_a.ids)],
        )
        lead = self.create_leads(expected_revenue=900, tag_ids=[Command.set(self.tag.ids)])
        start = fields.Datetime.now()
        lead.action_set_won()
        run = self.runs(workflow)
        self.assertEqual(run.state, "scheduled")
        self.assertAlmostEqual(run.date_due, start + relativedelta(months=6), delta=timedelta(minutes=1))
        Repeat = self.env["crm.lead"].with_context(active_test=False)
        self.run_queue(at=run.date_due - timedelta(days=1))
        self.assertFalse(Repeat.search([("workflow_origin_id", "=", lead.id)]), "not due yet")
        self.run_queue(at=run.date_due + timedelta(minutes=1))
        self.assertEqual(run.state, "done")
        repeat = Repeat.search([("workflow_origin_id", "=", lead.id)])
        self.assertEqual(repeat.name, "Renewal: Opportunity 0")
        self.assertEqual(repeat.type, "lead")
        self.assertEqual((repeat.team_id, repeat.stage_id), (self.team_b, self.stage_b))
        self.assertEqual((repeat.partner_id, repeat.user_id), (self.partner, self.salesman))
        self.assertEqual(repeat.email_from, self.partner.email)
        self.assertEqual(repeat.company_id, lead.company_id)
        self.assertFalse(repeat.tag_ids, "only the customer is carried over")
        self.assertFalse(repeat.expected_revenue)
        self.assertEqual(lead.workflow_copy_ids, repeat)

    def test_repeat_in_the_same_pipeline_for_a_chosen_owner(self):
        _workflow, lead = self.fire({
            "kind": "repeat_lead", "new_user_mode": "user", "new_user_id": self.owner.id,
        })
        repeat = lead.workflow_copy_ids
        self.assertEqual((repeat.name, repeat.type), ("Opportunity 0", "opportunity"))
        self.assertEqual((repeat.team_id, repeat.user_id, repeat.partner_id), (self.team_a, self.owner, self.partner))
        self.assertEqual(repeat.stage_id, self.stage_new, "the pipeline's first stage")

    def test_repeat_without_pipeline_needs_a_shared_stage(self):
        with self.assertRaisesRegex(ValidationError, "the stage “B: onboarding” belongs to the pipeline “Pipeline B”"):
            self.create_stage_workflow(
                self.stage_qualified, [{"kind": "repeat_lead", "new_stage_id": self.stage_b.id}]
            )


@tagged("post_install", "-at_install")
class TestAddFollowers(WorkflowAutomationCase):
    def follower_counts(self, record):
        """``{partner: how many follower rows}`` of ``record``."""
        followers = self.env["mail.followers"].search([("res_model", "=", record._name), ("res_id", "=", record.id)])
        return {partner: len(followers.filtered(lambda f, p=partner: f.partner_id == p))
                for partner in followers.partner_id}

    def test_followers_are_added_once(self):
        leads = self.create_leads(2)
        leads[0].message_subscribe(partner_ids=self.partner.ids)
        self.create_stage_workflow(self.stage_qualified, [{
            "kind": "add_followers",
            "follower_user_ids": [Command.set((self.owner | self.salesman).ids)],
            "follower_partner_ids": [Command.set((self.partner | self.owner.partner_id).ids)],
        }])
        self.create_stage_workflow(self.stage_proposition, [{
            "kind": "add_followers", "follower_partner_ids": [Command.set(self.partner.ids)],
        }])
        leads.write({"stage_id": self.stage_qualified.id})
        leads.write({"stage_id": self.stage_proposition.id})
        for lead in leads:
            counts = self.follower_counts(lead)
            self.assertTrue({self.partner, self.owner.partner_id, self.salesman.partner_id} <= set(counts))
            self.assertEqual(set(counts.values()), {1}, "no partner follows twice")

    def test_followers_of_projects(self):
        project_workflow = self.create_project_workflow([
            {"kind": "add_followers", "follower_user_ids": [Command.set(self.owner.ids)]},
        ])
        project = self.env["project.project"].create({"name": "Followed"})
        self.assertIn(self.owner.partner_id, project.message_partner_ids)
        self.assertEqual(self.runs(project_workflow).state, "done")

    def test_followers_are_required(self):
        with self.assertRaisesRegex(
            ValidationError, "action “Add followers”, field “Users to add as followers”: choose users or contacts"
        ):
            self.create_stage_workflow(self.stage_qualified, [{"kind": "add_followers"}])


@tagged("post_install", "-at_install")
class TestSetField(WorkflowAutomationCase):
    def set_field(self, name, model="crm.lead", **values):
        return {"kind": "set_field", "set_field_id": self.model_field(name, model).id, **values}

    def selection(self, field_name, value):
        return self.env["ir.model.fields.selection"].search([
            ("field_id", "=", self.model_field(field_name).id), ("value", "=", value),
        ])

    def create_custom_field(self, name, ttype, label):
        """A field of a type that crm.lead lacks, added as an admin would (Settings > Technical)."""
        return self.env["ir.model.fields"].create({
            "model_id": self.env["ir.model"]._get_id("crm.lead"), "name": name, "ttype": ttype,
            "field_description": label,
        })

    def assert_refused(self, action, message):
        with self.assertRaisesRegex(
            ValidationError, f"Workflow “Set”, action “Set a field to a value”, field “{message}"
        ):
            self.create_stage_workflow(self.stage_qualified, [action], name="Set")

    @freeze_time("2025-03-10 08:00:00")
    def test_values_of_each_type(self):
        self.create_custom_field("x_notes", "text", "Notes")
        cases = [
            (self.set_field("referred", set_value="A workflow"), "referred", "A workflow"),
            (self.set_field("x_notes", set_value="Line 1\nLine 2"), "x_notes", "Line 1\nLine 2"),
            (self.set_field("description", set_value="<p>Hello</p>"), "description", "<p>Hello</p>"),
            (self.set_field("color", set_value=" 7 "), "color", 7),
            (self.set_field("probability", set_value="12.5"), "probability", 12.5),
            (self.set_field("expected_revenue", set_value="-1500.25"), "expected_revenue", -1500.25),
            (self.set_field("iap_enrich_done", set_value_boolean=True), "iap_enrich_done", True),
            (self.set_field("date_deadline", set_value_days=30), "date_deadline", fields.Date.to_date("2025-04-09")),
            (self.set_field("date_deadline", set_value_days=-2), "date_deadline", fields.Date.to_date("2025-03-08")),
            (self.set_field("date_closed", set_value_days=1), "date_closed",
             fields.Datetime.to_datetime("2025-03-11 08:00:00")),
            (self.set_field("priority", set_selection_id=self.selection("priority", "3").id), "priority", "3"),
            (self.set_field("user_id", set_value_res_id=self.owner.id), "user_id", self.owner),
            (self.set_field("partner_id", set_value_res_id=0), "partner_id", self.env["res.partner"]),
        ]
        for action, field_name, expected in cases:
            with self.subTest(field=field_name, expected=expected):
                self.env["workflow.automation"].search([]).write({"active": False})
                workflow, lead = self.fire(action)
                self.assertEqual(self.runs(workflow).state, "done", self.runs(workflow).message)
                self.assertEqual(lead[field_name], expected)

    def test_value_of_a_project_field(self):
        project_workflow = self.create_project_workflow([
            self.set_field("allow_milestones", "project.project", set_value_boolean=True),
            self.set_field("date", "project.project", set_value_days=7),
        ])
        today = fields.Date.context_today(self.env.user)
        # Odoo keeps a project's dates as a range: both or none
        project = self.env["project.project"].create({"name": "Dated", "date_start": today, "date": today})
        self.assertTrue(project.allow_milestones)
        self.assertEqual(project.date, today + timedelta(days=7))
        self.assertEqual(self.runs(project_workflow).mapped("state"), ["done", "done"])

    def test_one_write_for_the_batch(self):
        leads, queries = self.fire_on_batch(self.set_field("color", set_value="4"), count=5)
        self.assertEqual(leads.mapped("color"), [4] * 5)
        self.assertEqual(self.count_statements(queries, r'UPDATE "crm_lead"\s+SET [^;]*"color" ='), 1)

    def test_fields_that_cannot_be_set_are_refused(self):
        binary = self.create_custom_field("x_contract", "binary", "Contract file")
        cases = [
            (self.model_field("name", "res.partner"), "the field “Name” is not a field of the workflow's records"),
            (self.model_field("id"), "the field “ID” is maintained by Odoo itself"),
            (self.model_field("create_date"), "the field “Created on” is maintained by Odoo itself"),
            (self.model_field("activity_summary"), "the field “Next Activity Summary” is not stored"),
            (self.model_field("lang_code"), "the field “Locale Code” is not stored"),
            (self.model_field("date_last_stage_update"), "the field “Last Stage Update” is computed"),
            (self.model_field("activity_ids"), r"the field “Activities” is of a type \(one2many\)"),
            (self.model_field("tag_ids"), r"the field “Tags” is of a type \(many2many\)"),
            (binary, r"the field “Contract file” is of a type \(binary\)"),
        ]
        for field, message in cases:
            with self.subTest(field=field.name):
                self.assert_refused({"kind": "set_field", "set_field_id": field.id}, f"Field to set”: {message}")

    def test_values_that_do_not_fit_are_refused(self):
        deleted_partner = self.env["res.partner"].create({"name": "Gone"})
        deleted_partner.unlink()
        cases = [
            (self.set_field("color", set_value="3.5"), "Value”: “3.5” is not a whole number (field “Color Index”)"),
            (self.set_field("probability", set_value="abc"), "Value”: “abc” is not a number"),
            (self.set_field("expected_revenue", set_value="nan"), "Value”: “nan” is not a number"),
            (self.set_field("priority", set_selection_id=self.selection("type", "lead").id),
             "Choice”: “Lead” is not a choice of the field “Priority”"),
            (self.set_field("partner_id", set_value_res_id=deleted_partner.id),
             "Record”: the record chosen for the field “Customer” no longer exists"),
            (self.set_field("name", set_value=""), "Value”: the field “Opportunity” is required"),
            (self.set_field("type"), "Choice”: the field “Type” is required"),
        ]
        for action, message in cases:
            with self.subTest(message=message):
                self.assert_refused(action, re.escape(message))

    def test_record_deleted_after_saving_fails_that_run_only(self):
        partner = self.env["res.partner"].create({"name": "Temporary"})
        workflow = self.create_stage_workflow(
            self.stage_qualified, [self.set_field("partner_id", set_value_res_id=partner.id)]
        )
        partner.unlink()
        lead = self.create_leads()
        lead.write({"stage_id": self.stage_qualified.id})
        run = self.runs(workflow)
        self.assertEqual(run.state, "failed")
        self.assertIn("no longer exists", run.message)
        self.assertEqual((lead.stage_id, lead.partner_id), (self.stage_qualified, self.partner))

    def test_constraint_at_run_time_fails_that_run_only(self):
        foreign = self.create_foreign_team()
        workflow, lead = self.fire(self.set_field("team_id", set_value_res_id=foreign.id))
        run = self.runs(workflow)
        self.assertEqual(run.state, "failed")
        self.assertEqual((lead.stage_id, lead.team_id), (self.stage_qualified, self.team_a))

    def test_the_form_offers_the_settable_fields_and_their_values(self):
        workflow = self.create_stage_workflow(self.stage_qualified, [{"kind": "note", "note_body": "x"}], active=False)
        form = Form(workflow.trigger_ids, view="crm_workflow_automation.workflow_automation_trigger_view_form")
        with form.action_ids.new() as action:
            action.kind = "set_field"
            allowed = action.set_field_allowed_ids
            self.assertIn(self.model_field("user_id"), allowed)
            self.assertIn(self.model_field("date_closed"), allowed)
            self.assertNotIn(self.model_field("date_last_stage_update"), allowed)
            self.assertNotIn(self.model_field("tag_ids"), allowed)
            action.set_field_id = self.model_field("user_id")
            self.assertEqual(action.set_field_comodel_id.model, "res.users")
            action.set_value_ref = f"res.users,{self.owner.id}"
        form.save()
        self.assertEqual(workflow.trigger_ids.action_ids[-1].set_value_res_id, self.owner.id)
