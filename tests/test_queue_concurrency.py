from datetime import timedelta

from odoo import SUPERUSER_ID, Command, api, fields
from odoo.tests import TransactionCase, tagged

QUEUE = 20


@tagged("post_install", "-at_install")
class TestQueueConcurrency(TransactionCase):
    """Several processes draining the queue at once, on real, separately committed cursors.

    The data is committed (other connections must see it) and removed after each test.
    """

    def setUp(self):
        super().setUp()
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            team = env["crm.team"].create({"name": "Queue pipeline"})
            stage = env.ref("crm.stage_lead2")
            workflow = env["workflow.automation"].create({
                "name": "Queue test",
                "target": "crm.lead",
                "team_ids": [Command.set(team.ids)],
                "trigger_ids": [Command.create({
                    "kind": "stage_reached",
                    "stage_id": stage.id,
                    "action_ids": [Command.create({"kind": "note", "note_body": "queued note", "delay": 1})],
                })],
            })
            workflow.active = True
            leads = env["crm.lead"].create([
                {"name": f"Queued {index}", "type": "opportunity", "team_id": team.id} for index in range(QUEUE)
            ])
            leads.write({"stage_id": stage.id})
            runs = env["workflow.automation.run"].search([("workflow_id", "=", workflow.id)])
            runs.write({"date_due": fields.Datetime.now() - timedelta(minutes=1)})
            self.ids = {"team": team.id, "workflow": workflow.id, "leads": leads.ids, "runs": runs.ids}
        self.addCleanup(self.remove_data)

    def remove_data(self):
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            workflow = env["workflow.automation"].browse(self.ids["workflow"])
            workflow.active = False
            env["workflow.automation.run"].browse(self.ids["runs"]).unlink()
            env["crm.lead"].browse(self.ids["leads"]).unlink()
            workflow.unlink()
            env["crm.team"].browse(self.ids["team"]).unlink()

    def queue_env(self, cr):
        return api.Environment(cr, SUPERUSER_ID, {})["workflow.automation.run"]

    def assert_each_run_executed_once(self):
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            runs = env["workflow.automation.run"].browse(self.ids["runs"])
            self.assertEqual(set(runs.mapped("state")), {"done"})
            for lead in env["crm.lead"].browse(self.ids["leads"]):
                notes = lead.message_ids.filtered(lambda m: "queued note" in (m.body or ""))
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
