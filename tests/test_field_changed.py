import difflib

from odoo import Command
from odoo.exceptions import ValidationError
from odoo.tests import tagged

from .common import WorkflowAutomationCase


@tagged("post_install", "-at_install")
class TestFieldChanged(WorkflowAutomationCase):
    """The trigger "A field changes": fires when a write changes the value of a chosen field."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.salesman.write({"groups_id": [Command.link(cls.env.ref("sales_team.group_sale_salesman_all_leads").id)]})

    def watch(self, *names, model="crm.lead", actions=None, **values):
        """A switched-on workflow noting "changed" when one of the fields ``names`` changes."""
        fields = self.env["ir.model.fields"].search([("model", "=", model), ("name", "in", names)])
        return self.create_workflow(
            [{
                "kind": "field_changed",
                "changed_field_ids": [Command.set(fields.ids)],
                "actions": actions or [{"kind": "note", "note_body": "changed"}],
                **values,
            }],
            target=model,
        )

    def fired_on(self, workflow):
        return self.env[workflow.target].browse(self.runs(workflow).mapped("res_id"))

    def test_a_change_of_each_field_type_fires(self):
        changes = {
            "name": "Renamed",  # char
            "expected_revenue": 12500.0,  # monetary
            "priority": "3",  # selection
            "user_id": self.owner.id,  # many2one
            "date_deadline": "2030-01-31",  # date
            "tag_ids": [Command.link(self.tag.id)],  # many2many
            "description": "<p>New terms</p>",  # html
        }
        for name, value in changes.items():
            with self.subTest(field=name):
                workflow = self.watch(name)
                lead, other = self.create_leads(2)
                self.drag(lead, {name: value}, self.salesman)
                self.assertEqual(self.fired_on(workflow), lead)
                workflow.active = False

    def test_a_checkbox_of_a_project_fires(self):
        workflow = self.watch("allow_milestones", model="project.project")
        project = self.create_project(allow_milestones=False)
        project.allow_milestones = True
        self.assertEqual(self.fired_on(workflow), project)

    def test_the_same_value_fires_nothing(self):
        workflow = self.watch("priority", "user_id", "tag_ids")
        lead = self.create_leads(priority="2", user_id=self.owner.id, tag_ids=[Command.set(self.tag.ids)])
        self.drag(lead, {"priority": "2", "user_id": self.owner.id, "tag_ids": [Command.set(self.tag.ids)]},
                  self.salesman)
        self.assertFalse(self.runs(workflow))

    def test_only_the_chosen_fields_fire(self):
        workflow = self.watch("priority")
        lead = self.create_leads()
        lead.write({"name": "Renamed", "expected_revenue": 100.0})
        self.assertFalse(self.runs(workflow))

    def test_a_write_of_other_fields_costs_no_extra_query(self):
        leads = self.create_leads(4)

        def rename(lead):
            lead.write({"name": f"{lead.name}!"})

        rename(leads[0])
        baseline = self.count_queries(lambda: rename(leads[1]))
        self.watch("priority", "expected_revenue")
        rename(leads[2])
        with self.assertQueryCount(baseline):
            rename(leads[3])

    def test_a_batch_costs_the_same_statements_whatever_its_size(self):
        """500 leads of which 250 change run the statements of 10 leads of which 5 change: the old
        values are read once for the batch (Odoo sends rows 100 at a time: see statement_shapes)."""
        workflow = self.watch("priority", actions=[{"kind": "add_tags", "tag_ids": [Command.set(self.tag.ids)]}])

        def reprioritize(leads):
            leads.write({"priority": "3"})

        def shapes(size):
            leads = self.create_leads(size)
            leads[: size // 2].write({"priority": "3"})  # they fire now, and will not change again
            return self.statement_shapes(reprioritize, leads)

        shapes(4)  # warm-up
        small, large = shapes(10), shapes(500)
        self.assertEqual(len(small), len(large), "\n".join(difflib.unified_diff(small, large, lineterm="")))
        self.assertEqual(small, large)
        self.assertEqual(len(self.runs(workflow)), 514, "each lead fired once, when its priority changed")

    def test_from_and_to_values(self):
        to_three_stars = self.watch("priority", changed_to_selection_id=self.selection("priority", "3").id)
        from_owner = self.watch("user_id", changed_from_ref=f"res.users,{self.owner.id}")
        lead, other = self.create_leads(2, user_id=self.owner.id)
        lead.write({"priority": "2"})
        other.write({"priority": "3"})
        self.assertEqual(self.fired_on(to_three_stars), other)
        lead.write({"user_id": self.salesman.id})
        self.assertEqual(self.fired_on(from_owner), lead)
        lead.write({"user_id": self.owner.id})
        self.assertEqual(len(self.runs(from_owner)), 1, "from another salesperson: no")

    def test_a_checkbox_to_checked(self):
        workflow = self.watch("allow_milestones", model="project.project", changed_to_boolean="checked")
        on, off = self.create_project(allow_milestones=False), self.create_project(allow_milestones=True)
        (on | off).write({"allow_milestones": not on.allow_milestones})
        self.assertEqual(self.fired_on(workflow), on)

    def test_a_change_made_by_an_action_fires_one_link_deeper(self):
        """A stage workflow sets the priority; the priority workflow fires on that change."""
        self.create_stage_workflow(self.stage_qualified, [{
            "kind": "set_field", "set_field_id": self.model_field("priority").id,
            "set_selection_id": self.selection("priority", "3").id,
        }])
        workflow = self.watch("priority")
        lead = self.create_leads(team=self.team_a)
        self.drag(lead, {"stage_id": self.stage_qualified.id}, self.salesman)
        run = self.runs(workflow)
        self.assertEqual(self.fired_on(workflow), lead)
        self.assertEqual(run.user_id, self.salesman, "the chain keeps the user who started it")

    def test_from_to_needs_one_field_of_its_kind(self):
        with self.assertRaisesRegex(ValidationError, "“From” and “To” apply to one field"):
            self.watch("priority", "user_id", changed_to_selection_id=self.selection("priority", "3").id)
        refusal = "field “Fields to watch”: the field “Created on” cannot be watched"
        with self.assertRaisesRegex(ValidationError, refusal):
            self.watch("create_date")

    def selection(self, field_name, value):
        return self.env["ir.model.fields.selection"].search(
            [("field_id", "=", self.model_field(field_name).id), ("value", "=", value)]
        )
