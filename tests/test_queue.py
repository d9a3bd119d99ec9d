from datetime import timedelta

from odoo import fields
from odoo.exceptions import UserError, ValidationError
from odoo.tests import tagged

from .common import WorkflowAutomationCase, messages_containing


@tagged("post_install", "-at_install")
class TestDelayedActions(WorkflowAutomationCase):
    def delayed_workflow(self, delay=2, unit="days", **action):
        return self.create_stage_workflow(
            self.stage_qualified,
            [{"kind": "note", "note_body": "later", "delay": delay, "delay_unit": unit, **action}],
        )

    def test_delayed_action_is_scheduled_not_run(self):
        workflow = self.delayed_workflow()
        with self.trap_runs() as trap:
            lead = self.qualify()
        run = trap.assert_scheduled(workflow, lead, delay=timedelta(days=2))
        self.assertEqual(run.stage_ref, self.stage_qualified.id)
        self.assertFalse(messages_containing(lead, "later"))
        cron = self.env.ref("crm_workflow_automation.workflow_automation_run_cron")
        triggers = self.env["ir.cron.trigger"].search([("cron_id", "=", cron.id)])
        self.assertIn(run.date_due.replace(second=0), [t.call_at.replace(second=0) for t in triggers],
                      "the cron is woken at the due date, not polling")

    def test_record_shows_its_scheduled_automations(self):
        workflow = self.delayed_workflow()
        lead = self.qualify()
        self.assertEqual(lead.workflow_scheduled_count, 1)
        action = lead.action_open_workflow_runs()
        self.assertEqual(self.env["workflow.automation.run"].search(action["domain"]), self.runs(workflow))
        self.runs(workflow).action_cancel()
        lead.invalidate_recordset(["workflow_scheduled_count"])
        self.assertEqual(lead.workflow_scheduled_count, 0)

    def test_chatter_says_what_is_pending(self):
        self.create_stage_workflow(self.stage_qualified, [
            {"kind": "note", "note_body": "later", "delay": 2},
            {"kind": "assign_user", "user_id": self.owner.id, "delay": 3, "delay_unit": "weeks"},
        ], name="Follow <up>")
        lead = self.qualify()
        log = lead.message_ids[0]
        self.assertIn("Scheduled by the workflow “Follow &lt;up&gt;”: Post an internal note, on", log.body)
        self.assertIn("Assign to a user, on", log.body)
        self.assertEqual(len(messages_containing(lead, "Scheduled by")), 1)

    def test_queue_runs_due_actions_only(self):
        workflow = self.delayed_workflow(delay=3, unit="hours")
        lead = self.qualify()
        run = self.runs(workflow)
        self.run_queue(at=run.date_due - timedelta(minutes=5))
        self.assertEqual(run.state, "scheduled")
        self.run_queue(at=run.date_due + timedelta(minutes=1))
        self.assertEqual(run.state, "done")
        self.assertEqual(len(messages_containing(lead, "later")), 1)

    def test_due_runs_of_one_action_run_as_one_batch(self):
        workflow = self.create_stage_workflow(
            self.stage_qualified, [{"kind": "assign_user", "user_id": self.owner.id, "delay": 1}]
        )
        leads = self.qualify(count=5)
        self.run_queue(at=fields.Datetime.now() + timedelta(days=1, minutes=1))
        self.assertEqual(set(self.runs(workflow).mapped("state")), {"done"})
        self.assertEqual(leads.user_id, self.owner)

    def test_record_that_left_the_stage_is_skipped(self):
        workflow = self.delayed_workflow()
        lead = self.qualify()
        lead.stage_id = self.stage_proposition
        self.run_queue(at=fields.Datetime.now() + timedelta(days=3))
        run = self.runs(workflow)
        self.assertEqual(run.state, "skipped")
        self.assertIn("left the stage", run.message)
        self.assertFalse(messages_containing(lead, "later"))

    def test_stage_check_can_be_switched_off(self):
        workflow = self.delayed_workflow(require_same_stage=False)
        lead = self.qualify()
        lead.stage_id = self.stage_proposition
        self.run_queue(at=fields.Datetime.now() + timedelta(days=3))
        self.assertEqual(self.runs(workflow).state, "done")
        self.assertTrue(messages_containing(lead, "later"))

    def test_switched_off_workflow_skips_its_due_runs(self):
        workflow = self.delayed_workflow()
        self.qualify()
        workflow.active = False
        self.run_queue(at=fields.Datetime.now() + timedelta(days=3))
        self.assertEqual(self.runs(workflow).message, "The workflow was switched off.")

    def test_deleting_the_record_cancels_its_scheduled_runs(self):
        workflow = self.delayed_workflow()
        self.qualify().unlink()
        run = self.runs(workflow)
        self.assertEqual(run.state, "cancelled")
        self.assertEqual(run.message, "The record was deleted.")

    def test_run_of_a_vanished_record_is_skipped(self):
        workflow = self.delayed_workflow()
        self.qualify().unlink()
        run = self.runs(workflow)
        run.state = "scheduled"  # taken by a process before the deletion cancelled it
        run.action_run_now()
        self.assertEqual(run.state, "skipped")
        self.assertEqual(run.message, "The record no longer exists.")

    def test_deleting_the_workflow_cancels_its_scheduled_runs_and_keeps_the_trail(self):
        workflow = self.delayed_workflow()
        lead = self.qualify()
        run = self.runs(workflow)
        workflow.active = False
        workflow.unlink()
        self.assertEqual(run.state, "cancelled")
        self.assertEqual(run.message, "The workflow was deleted.")
        self.assertEqual(run.res_id, lead.id)
        self.assertFalse(run.workflow_id)

    def test_run_of_a_deleted_action_is_skipped(self):
        workflow = self.delayed_workflow()
        self.qualify()
        run = self.runs(workflow)
        workflow.active = False
        workflow.trigger_ids.action_ids.unlink()
        run.action_run_now()
        self.assertEqual((run.state, run.message), ("skipped", "The action was deleted."))

    def test_cancel_run_now_and_retry(self):
        workflow = self.delayed_workflow()
        with self.trap_runs() as trap:
            first, second = self.qualify(count=2)
        trap.assert_scheduled(workflow, first | second)
        run_first, run_second = trap.of(workflow, first), trap.of(workflow, second)
        run_first.action_cancel()
        self.assertEqual(run_first.state, "cancelled")
        run_second.action_run_now()
        self.assertEqual(run_second.state, "done")
        self.assertTrue(messages_containing(second, "later"))
        self.assertFalse(messages_containing(first, "later"))
        with self.assertRaisesRegex(UserError, "Retry"):
            run_second.action_retry()
        with self.assertRaisesRegex(UserError, "Run now"):
            run_first.action_run_now()

    def test_failed_run_can_be_retried(self):
        workflow = self.delayed_workflow(note_body="{{ 10 / object.expected_revenue }}")
        lead = self.qualify()
        run = self.runs(workflow)
        run.action_run_now()
        self.assertEqual(run.state, "failed")
        lead.expected_revenue = 4
        run.action_retry()
        self.assertEqual(run.state, "done")
        self.assertIn("2.5", lead.message_ids[0].body)

    def test_immediate_and_delayed_actions_of_one_trigger(self):
        workflow = self.create_stage_workflow(self.stage_qualified, [
            {"kind": "assign_user", "user_id": self.owner.id},
            {"kind": "note", "note_body": "later", "delay": 5, "delay_unit": "days"},
        ])
        assign, note = workflow.trigger_ids.action_ids
        with self.trap_runs() as trap:
            lead = self.qualify()
        self.assertEqual(lead.user_id, self.owner)
        trap.assert_runs(assign, lead, state="done")
        trap.assert_scheduled(note, lead, delay=timedelta(days=5))
        self.assertFalse(messages_containing(lead, "later"))
        trap.perform()
        trap.assert_runs(note, lead, state="done")
        self.assertEqual(len(messages_containing(lead, "later")), 1)

    def test_negative_delay_refused(self):
        with self.assertRaisesRegex(ValidationError, "field “Delay”: the delay cannot be negative"):
            self.delayed_workflow(delay=-1)
