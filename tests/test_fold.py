import re

from odoo import Command

from .common import WorkflowAutomationCase


class TestFoldedDrag(WorkflowAutomationCase):
    """An own-documents salesman drags his opportunity to Qualified, where a workflow writes
    the record at once: his move and the action are one write (DESIGN.md principle 3), and
    a failure of the action still spares his move (principle 4)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.dragger = cls.new_salesman("wa_fold_dragger", name="Fay Folder")
        cls.lead = cls.create_leads(user_id=cls.dragger.id)
        cls.probability = cls.model_field("probability")

    def drag_to_qualified(self):
        with self.capture_queries() as queries:
            self.drag(self.lead, {"stage_id": self.stage_qualified.id}, self.dragger)
            self.env.flush_all()
        return queries

    def test_the_move_and_the_action_are_one_update(self):
        workflow = self.create_stage_workflow(
            self.stage_qualified, [{"kind": "set_field", "set_field_id": self.probability.id, "set_value": "55"}]
        )
        queries = self.drag_to_qualified()
        self.assertEqual((self.lead.stage_id, self.lead.probability), (self.stage_qualified, 55))
        self.assertEqual(self.runs(workflow).mapped("state"), ["done"])
        self.assertEqual(self.count_statements(queries, r'UPDATE "crm_lead"\s+SET [^;]*"stage_id" ='), 1)
        self.assertEqual(self.count_statements(queries, r'UPDATE "crm_lead"\s+SET [^;]*"probability" ='), 1)
        self.assertEqual(self.count_statements(queries, r"ROLLBACK TO SAVEPOINT"), 0, "nothing replayed")

    def test_the_actions_of_two_workflows_are_one_update(self):
        first = self.create_stage_workflow(
            self.stage_qualified, [{"kind": "set_field", "set_field_id": self.probability.id, "set_value": "55"}],
            name="Probability",
        )
        second = self.create_stage_workflow(self.stage_qualified, [{"kind": "add_tags", "tag_ids": [self.tag.id]}],
                                            name="Tag")
        queries = self.drag_to_qualified()
        self.assertEqual((self.lead.probability, self.lead.tag_ids), (55, self.tag))
        self.assertEqual((self.runs(first) | self.runs(second)).mapped("state"), ["done", "done"])
        self.assertEqual(self.count_statements(queries, r'UPDATE "crm_lead"\s+SET'), 1)

    def test_the_runs_of_each_trigger_share_one_firing(self):
        """What the runs of one trigger share (its workflow, the company, the salesman who
        dragged) is written once, in their firing, by the statement that inserts the runs."""
        probability = self.create_stage_workflow(self.stage_qualified, [
            {"kind": "set_field", "set_field_id": self.probability.id, "set_value": "55"},
            {"kind": "add_tags", "tag_ids": [self.tag.id]},
        ], name="Probability and tag")
        owner = self.create_stage_workflow(
            self.stage_qualified, [{"kind": "assign_user", "user_id": self.dragger.id}], name="Owner"
        )
        leads = self.lead | self.create_leads(2, user_id=self.dragger.id)
        with self.capture_queries() as queries:
            self.drag(leads, {"stage_id": self.stage_qualified.id}, self.dragger)
            self.env.flush_all()
        for workflow, count in ((probability, 6), (owner, 3)):
            runs = self.runs(workflow)
            self.assertEqual((len(runs), set(runs.mapped("state"))), (count, {"done"}))
            self.assertEqual(len(runs.firing_id), 1)
            self.assertEqual(
                (runs.workflow_id, runs.trigger_id, runs.company_id, runs.user_id),
                (workflow, workflow.trigger_ids, self.env.company, self.dragger),
            )
            self.assertEqual(set(runs.mapped("record_name")), set(leads.mapped("display_name")))
        self.assertEqual(self.count_statements(queries, r"INSERT INTO workflow_automation_firing"), 2)
        self.assertEqual(self.count_statements(queries, r"INSERT INTO workflow_automation_run"), 2)

    def test_a_folded_drag_reads_no_definition(self):
        """A drag is a request of its own, with a cold cache: what the folded actions write,
        and what their runs record, come from the trigger index, not from the workflow."""
        priority = self.model_field("priority")
        workflow = self.create_stage_workflow(self.stage_qualified, [
            {"kind": "set_field", "set_field_id": priority.id,
             "set_selection_id": priority.selection_ids.filtered(lambda choice: choice.value == "2").id},
            {"kind": "add_tags", "tag_ids": [self.tag.id]},
            {"kind": "assign_user", "user_id": self.dragger.id},
        ])
        self.env["workflow.automation"]._get_trigger_index("crm.lead")  # built by an earlier request
        self.env.invalidate_all()
        queries = self.drag_to_qualified()
        self.assertEqual((self.lead.priority, self.lead.tag_ids), ("2", self.tag))
        self.assertEqual(self.runs(workflow).mapped("state"), ["done"] * 3)
        definitions = r'FROM "(workflow_automation(_trigger|_action)?|ir_model_fields\w*)"'
        self.assertEqual([query for query in queries if re.search(definitions, query)], [])
        self.assertEqual(self.count_statements(queries, r'UPDATE "crm_lead"\s+SET'), 1)

    def test_an_action_failing_in_the_database_spares_the_move(self):
        """crm's constraint ``check_probability`` refuses 150 % only when the write reaches the
        database: the folded write is rolled back and replayed, the action apart."""
        workflow = self.create_stage_workflow(
            self.stage_qualified, [{"kind": "set_field", "set_field_id": self.probability.id, "set_value": "150"}]
        )
        queries = self.drag_to_qualified()
        self.assertEqual(self.lead.stage_id, self.stage_qualified, "the salesman's move is saved")
        self.assertNotEqual(self.lead.probability, 150)
        run = self.runs(workflow)
        self.assertEqual(run.state, "failed")
        self.assertIn("check_probability", run.message)
        self.assertEqual(self.count_statements(queries, r"ROLLBACK TO SAVEPOINT"), 2, "the fold, then the action")

    def test_a_value_the_move_overrides_is_written_after_it(self):
        """crm's write sets 100 % on a lead moved to a won stage, over the folded 55 %: the fold
        sees that its value was not kept and writes the action after the move, as an unfolded
        action would."""
        workflow = self.create_stage_workflow(
            self.stage_won, [{"kind": "set_field", "set_field_id": self.probability.id, "set_value": "55"}]
        )
        with self.capture_queries() as queries:
            self.drag(self.lead, {"stage_id": self.stage_won.id}, self.dragger)
            self.env.flush_all()
        self.assertEqual((self.lead.stage_id, self.lead.probability), (self.stage_won, 55))
        self.assertEqual(self.runs(workflow).mapped("state"), ["done"])
        self.assertEqual(self.count_statements(queries, r"ROLLBACK TO SAVEPOINT"), 1, "the fold, replayed")

    def test_a_condition_on_what_the_move_changes_is_evaluated_after_it(self):
        """A condition on the stage must see the moved record: the action runs after the move,
        not with it."""
        workflow = self.create_workflow(
            [{
                "kind": "stage_reached", "stage_id": self.stage_qualified.id,
                "filter_domain": f"[('stage_id', '=', {self.stage_qualified.id})]",
                "actions": [{"kind": "add_tags", "tag_ids": [self.tag.id]}],
            }],
            team_ids=[Command.set(self.team_a.ids)],
        )
        queries = self.drag_to_qualified()
        self.assertEqual(self.lead.tag_ids, self.tag)
        self.assertEqual(self.runs(workflow).mapped("state"), ["done"])
        self.assertEqual(self.count_statements(queries, r'UPDATE "crm_lead"\s+SET'), 2, "the move, then the action")
