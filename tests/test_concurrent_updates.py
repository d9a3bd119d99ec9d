from datetime import timedelta

from odoo import SUPERUSER_ID, api, fields
from odoo.service.model import retrying
from odoo.tests import tagged
from odoo.tools import SQL

from .common import CommittedWorkflowCase


@tagged("post_install", "-at_install")
class TestConcurrentUpdates(CommittedWorkflowCase):
    """A concurrent update met by an action is not the action's failure: the request is retried.

    Connection 1 commits a change to a row that the request on connection 2 writes later, after
    its snapshot was taken: PostgreSQL refuses connection 2's update ("could not serialize access
    due to concurrent update"), and Odoo retries the request (``odoo.service.model.retrying``).
    """

    def setUp(self):
        super().setUp()
        self.ids = self.commit_stage_workflow("Concurrent won", {"kind": "mark_won"}, ["Warm-up", "Contended"])
        self.warm_up, self.lead = self.ids["leads"]
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            # The workflow won the warm-up lead: the lead scoring rows of the pipeline exist, and
            # winning the other lead updates them, as winning any lead of the pipeline does.
            self.assertTrue(env["crm.lead"].browse(self.warm_up).stage_id.is_won)
            lead = env["crm.lead"].browse(self.lead)
            lead.write({"stage_id": env.ref("crm.stage_lead1").id, "active": True, "probability": 10})
            env["workflow.automation.run"].search([("workflow_id", "=", self.ids["workflow"])]).unlink()
            self.salesman = env["res.users"].create({
                "name": "Concurrent Salesman",
                "login": "wa_concurrent_salesman",
                "groups_id": [(6, 0, env.ref("sales_team.group_sale_salesman").ids)],
            })
            lead.write({"user_id": self.salesman.id, "team_id": self.ids["team"]})  # the user sets the team
            self.salesman_id = self.salesman.id
        self.addCleanup(self._remove_salesman)

    def _remove_salesman(self):
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            env["crm.lead"].with_context(active_test=False).browse(self.lead).user_id = False
            env["res.users"].browse(self.salesman_id).unlink()

    def commit_concurrent(self, query):
        """Connection 1: ``query``, committed now."""
        with self.registry.cursor() as cr:
            cr.execute(query)

    def move_to_qualified(self, concurrent_query):
        """The salesman moves the lead to Qualified in a request that Odoo retries; on the first
        try only, ``concurrent_query`` commits on another connection after the request's snapshot.

        Return how many tries the request took.
        """
        tries = []
        with self.registry.cursor() as cr:
            env = api.Environment(cr, self.salesman_id, {})

            def request():
                tries.append(len(tries) + 1)
                env.cr.execute("SELECT 1")  # the request's snapshot
                if len(tries) == 1:
                    self.commit_concurrent(concurrent_query)
                env["crm.lead"].browse(self.lead).write({"stage_id": env.ref("crm.stage_lead2").id})

            retrying(request, env)
        return len(tries)

    def assert_won_once(self):
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            lead = env["crm.lead"].browse(self.lead)
            self.assertTrue(lead.stage_id.is_won, "the action's effect is there")
            runs = env["workflow.automation.run"].search([("workflow_id", "=", self.ids["workflow"])])
            self.assertEqual(runs.mapped("state"), ["done"], "one run, done: no spurious failure")
            self.assertEqual(runs.user_id.id, self.salesman_id)

    def test_concurrent_update_inside_the_action_retries_the_request(self):
        """The action's own write (winning updates the pipeline's lead scoring rows) meets a
        concurrent update: the action is not failed, the request is retried and wins the lead."""
        tries = self.move_to_qualified(SQL(
            "UPDATE crm_lead_scoring_frequency SET won_count = won_count WHERE team_id = %s", self.ids["team"]
        ))
        self.assertEqual(tries, 2)
        self.assert_won_once()

    def test_concurrent_update_of_the_users_write_retries_the_request(self):
        """The user's own write, flushed before the action runs, meets a concurrent update of
        the lead: no InFailedSqlTransaction for the client, the retried request does it all."""
        tries = self.move_to_qualified(SQL("UPDATE crm_lead SET priority = priority WHERE id = %s", self.lead))
        self.assertEqual(tries, 2)
        self.assert_won_once()

    def test_queue_leaves_a_contended_batch_due(self):
        """A delayed action of the queue meets a concurrent update: its run stays due, not failed,
        and the next call of the queue's cron executes it once."""
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            action = env["workflow.automation"].browse(self.ids["workflow"]).trigger_ids.action_ids
            action.workflow_id.active = False
            action.write({"delay": 1, "delay_unit": "hours"})
            action.workflow_id.active = True
        self.move_to_qualified(SQL("SELECT 1"))
        with self.registry.cursor() as cr:
            run = api.Environment(cr, SUPERUSER_ID, {})["workflow.automation.run"].search(
                [("workflow_id", "=", self.ids["workflow"])]
            )
            self.assertEqual(run.state, "scheduled")
            run.date_due = fields.Datetime.now() - timedelta(minutes=1)
        with self.registry.cursor() as cr:
            cr.execute("SELECT 1")  # the cron's snapshot
            self.commit_concurrent(SQL(
                "UPDATE crm_lead_scoring_frequency SET won_count = won_count WHERE team_id = %s", self.ids["team"]
            ))
            api.Environment(cr, SUPERUSER_ID, {})["workflow.automation.run"]._cron_execute_due_runs()
        with self.registry.cursor() as cr:
            queue = api.Environment(cr, SUPERUSER_ID, {})["workflow.automation.run"]
            self.assertEqual(queue.browse(run.id).state, "scheduled", "left due, not failed")
            queue._cron_execute_due_runs()
        self.assert_won_once()
