from datetime import timedelta

from odoo import SUPERUSER_ID, api, fields
from odoo.tests import tagged

from .common import CommittedWorkflowCase, messages_containing

QUEUE = 20


@tagged("post_install", "-at_install")
class TestQueueConcurrency(CommittedWorkflowCase):
    """Several processes draining the queue at once, on real, separately committed cursors."""

    def setUp(self):
        super().setUp()
        self.ids = self.commit_stage_workflow(
            "Queue test",
            {"kind": "note", "note_body": "queued note", "delay": 1},
            [f"Queued {index}" for index in range(QUEUE)],
        )
        with self.registry.cursor() as cr:
            runs = api.Environment(cr, SUPERUSER_ID, {})["workflow.automation.run"].search(
                [("workflow_id", "=", self.ids["workflow"])]
            )
            runs.write({"date_due": fields.Datetime.now() - timedelta(minutes=1)})
            self.ids["runs"] = runs.ids

    def queue_env(self, cr):
        return api.Environment(cr, SUPERUSER_ID, {})["workflow.automation.run"]

    def assert_each_run_executed_once(self):
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            runs = env["workflow.automation.run"].browse(self.ids["runs"])
            self.assertEqual(set(runs.mapped("state")), {"done"})
            for lead in env["crm.lead"].browse(self.ids["leads"]):
                notes = messages_containing(lead, "queued note")
                self.assertEqual(len(notes), 1, lead.name)

    def test_two_processes_never_take_the_same_run(self):
        self.assertEqual(len(self.ids["runs"]), QUEUE)
        with self.registry.cursor() as cr1, self.registry.cursor() as cr2:
            taken_1 = self.queue_env(cr1)._lock_due_runs(QUEUE // 2)
            taken_2 = self.queue_env(cr2)._lock_due_runs(QUEUE)  # skips the rows cr1 holds
            self.assertEqual(len(taken_1), QUEUE // 2)
            self.assertEqual(len(taken_2), QUEUE // 2)
            self.assertFalse(set(taken_1.ids) & set(taken_2.ids))
            taken_1._execute_scheduled()
            taken_2._execute_scheduled()
            # both commit when their block ends
        self.assert_each_run_executed_once()

    def test_a_process_dying_mid_batch_loses_nothing(self):
        with self.registry.cursor() as dying:
            taken = self.queue_env(dying)._lock_due_runs(QUEUE // 2)
            taken._execute_scheduled()
            dying.rollback()  # the process dies before its commit
        with self.registry.cursor() as survivor:
            taken = self.queue_env(survivor)._lock_due_runs(QUEUE * 2)
            self.assertEqual(len(taken), QUEUE, "the dead batch is taken again")
            taken._execute_scheduled()
        self.assert_each_run_executed_once()
