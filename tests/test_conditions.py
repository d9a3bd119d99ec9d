from odoo import Command
from odoo.exceptions import ValidationError
from odoo.tests import tagged

from ..models.workflow_automation_mixin import FIRED_KEY
from .common import WorkflowAutomationCase, messages_containing


@tagged("post_install", "-at_install", "is_query_count")
class TestWhoMayTrigger(WorkflowAutomationCase):
    """A workflow fired only by the changes of chosen users and groups (Pipedrive)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.group_manager = cls.env.ref("sales_team.group_sale_manager")
        cls.group_all_leads = cls.env.ref("sales_team.group_sale_salesman_all_leads")

    def restricted_workflow(self, users=(), groups=()):
        return self.create_stage_workflow(
            self.stage_qualified,
            [{"kind": "add_tags", "tag_ids": [Command.set(self.tag.ids)]}],
            triggered_by="chosen",
            trigger_user_ids=[Command.set([user.id for user in users])],
            trigger_group_ids=[Command.set([group.id for group in groups])],
        )

    def qualify_as(self, user):
        # owned: a salesperson restricted to own leads may write it
        return self.qualify(self.create_leads(user_id=user.id), user)

    def test_only_chosen_users_and_groups_fire(self):
        workflow = self.restricted_workflow(users=self.owner, groups=self.group_manager)
        self.assertFalse(self.qualify_as(self.salesman).tag_ids, "neither listed nor in the group")
        self.assertEqual(self.qualify_as(self.owner).tag_ids, self.tag, "a listed user")
        self.assertEqual(self.qualify_as(self.sales_manager).tag_ids, self.tag, "a member of the group")
        self.assertEqual(self.runs(workflow).user_id, self.owner | self.sales_manager)

    def test_a_group_implied_by_the_user_groups_counts(self):
        self.restricted_workflow(groups=self.group_all_leads)  # implied by Sales / Administrator
        self.assertEqual(self.qualify_as(self.sales_manager).tag_ids, self.tag)
        self.assertFalse(self.qualify_as(self.salesman).tag_ids)

    def test_everyone_by_default(self):
        workflow = self.create_stage_workflow(
            self.stage_qualified, [{"kind": "add_tags", "tag_ids": [Command.set(self.tag.ids)]}]
        )
        self.assertEqual(workflow.triggered_by, "everyone")
        self.assertEqual(self.qualify_as(self.salesman).tag_ids, self.tag)

    def test_chosen_without_anybody_is_refused(self):
        with self.assertRaisesRegex(
            ValidationError, "Workflow “Nobody”, field “Users”: choose at least one user or group"
        ):
            self.create_workflow([], name="Nobody", triggered_by="chosen")

    def test_write_of_a_user_who_does_not_fire_adds_no_query(self):
        self.assert_no_extra_query(
            lambda lead: self.qualify_afresh(lead, self.salesman),
            lambda: self.restricted_workflow(users=self.owner, groups=self.group_manager),
            self.create_leads(4),
        )


@tagged("post_install", "-at_install")
class TestFirstTimeOnly(WorkflowAutomationCase):
    """"Only the first time for each record" (Zoho): the runs are the memory."""

    def first_time_workflow(self, frequency="first_time"):
        return self.create_workflow(
            [{
                "kind": "stage_reached",
                "stage_id": self.stage_qualified.id,
                "frequency": frequency,
                "actions": [{"kind": "note", "note_body": "Welcome"}],
            }],
            team_ids=[Command.set(self.team_a.ids)],
        )

    def new_transaction(self):
        """As between two kanban drags: a (trigger, record) pair fires once per transaction."""
        self.env.cr.postcommit.data.pop(FIRED_KEY, None)

    def bounce(self, leads):
        """Qualified, back to New, Qualified again."""
        for stage in (self.stage_qualified, self.stage_new, self.stage_qualified):
            leads.write({"stage_id": stage.id})
            self.new_transaction()

    def test_fires_only_the_first_time_for_each_record(self):
        workflow = self.first_time_workflow()
        old, new = self.create_leads(2)
        self.bounce(old)
        self.assertEqual(len(self.runs(workflow)), 1)
        (old | new).write({"stage_id": self.stage_qualified.id})  # old is already Qualified: new only
        self.new_transaction()
        self.bounce(old | new)
        runs = self.runs(workflow)
        self.assertEqual(sorted(runs.mapped("res_id")), sorted((old | new).ids), "one run each, no skipped run")
        self.assertEqual(len(messages_containing(old, "Welcome")), 1)

    def test_every_time_by_default(self):
        workflow = self.first_time_workflow(frequency="every_time")
        self.bounce(self.create_leads())
        self.assertEqual(len(self.runs(workflow)), 2)

    def test_first_time_only_costs_the_same_queries_for_10_and_500_leads(self):
        self.assert_batch_independent_queries(
            [{"kind": "add_tags", "tag_ids": [self.tag.id]}], frequency="first_time"
        )


@tagged("post_install", "-at_install")
class TestImports(WorkflowAutomationCase):
    """Records created or updated by Odoo's import fire only the workflows that opted in."""

    def import_csv(self, header, rows):
        content = "\n".join([",".join(header), *(",".join(row) for row in rows)])
        wizard = self.env["base_import.import"].create({
            "res_model": "crm.lead", "file": content.encode(), "file_name": "leads.csv", "file_type": "text/csv",
        })
        result = wizard.execute_import(
            header, header, {"has_headers": True, "separator": ",", "quoting": '"', "encoding": "utf-8"}
        )
        self.assertFalse(result["messages"], result["messages"])
        return self.env["crm.lead"].browse(result["ids"])

    def import_new_leads(self):
        rows = [(f"Imported {index}", "opportunity", "Pipeline A", "Qualified") for index in range(100)]
        return self.import_csv(["name", "type", "team_id", "stage_id"], rows)

    def workflow(self, **values):
        return self.create_workflow(
            [
                {"kind": "create", "actions": [{"kind": "add_tags", "tag_ids": [Command.set(self.tag.ids)]}]},
                {"kind": "stage_reached", "stage_id": self.stage_proposition.id,
                 "actions": [{"kind": "note", "note_body": "Proposal"}]},
            ],
            team_ids=[Command.set(self.team_a.ids)],
            **values,
        )

    def move_by_import(self, leads):
        return self.import_csv([".id", "stage_id"], [(str(lead.id), "Proposition") for lead in leads])

    def test_imported_records_do_not_fire(self):
        workflow = self.workflow()
        leads = self.import_new_leads()
        self.assertEqual(len(leads), 100)
        self.assertEqual((leads.team_id, leads.stage_id), (self.team_a, self.stage_qualified))
        self.move_by_import(leads)
        self.assertEqual(leads.stage_id, self.stage_proposition)
        self.assertFalse(self.runs(workflow))
        self.assertFalse(leads.tag_ids)
        leads[0].write({"stage_id": self.stage_qualified.id})
        leads[0].write({"stage_id": self.stage_proposition.id})
        self.assertEqual(len(self.runs(workflow)), 1, "a change by hand fires as usual")

    def test_imported_records_fire_when_the_workflow_opts_in(self):
        workflow = self.workflow(run_on_import=True)
        leads = self.import_new_leads()
        self.assertEqual(leads.tag_ids, self.tag)
        self.move_by_import(leads)
        self.assertEqual(len(self.runs(workflow, "done")), 200)
        self.assertTrue(all(messages_containing(lead, "Proposal") for lead in leads))
