from odoo import SUPERUSER_ID, api
from odoo.tests import tagged

from .common import CommittedWorkflowCase, messages_containing


@tagged("post_install", "-at_install")
class TestIndexInvalidation(CommittedWorkflowCase):
    """Switching a workflow on or off is seen by every request that starts after the commit.

    The connections share one registry, as the threads of one Odoo process do: a request that
    runs between the switch and its commit caches the trigger index as its snapshot shows it.
    """

    def setUp(self):
        super().setUp()
        self.ids = self.commit_stage_workflow("Index switch", {"kind": "note", "note_body": "switched"}, ["Moved"])
        self.lead = self.ids["leads"][0]
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            env["crm.lead"].browse(self.lead).stage_id = env.ref("crm.stage_lead1")

    def env(self, cr):
        return api.Environment(cr, SUPERUSER_ID, {})

    def indexed_workflows(self, env):
        index = env["workflow.automation"]._get_trigger_index("crm.lead")
        return {spec.workflow_id for specs in index.values() for spec in specs}

    def switch_with_concurrent_request(self, active):
        """Switch the workflow, while another request reads the index before the switch commits."""
        with self.registry.cursor() as other_cr, self.registry.cursor() as admin_cr:
            self.env(admin_cr)["workflow.automation"].browse(self.ids["workflow"]).active = active
            self.env(admin_cr).flush_all()
            self.assertEqual(
                self.ids["workflow"] in self.indexed_workflows(self.env(other_cr)), not active,
                "the concurrent request sees the state before the switch",
            )
            # the switch commits, then the concurrent request

    def assert_fires(self, expected):
        """A request after the commit: moving the lead to Qualified fires the workflow, or not."""
        with self.registry.cursor() as cr:
            env = self.env(cr)
            lead = env["crm.lead"].browse(self.lead)
            notes_before = self.count_notes(lead)
            lead.stage_id = env.ref("crm.stage_lead2")
            self.assertEqual(self.count_notes(lead) - notes_before, 1 if expected else 0)
            lead.stage_id = env.ref("crm.stage_lead1")
            cr.rollback()

    @staticmethod
    def count_notes(lead):
        lead.invalidate_recordset(["message_ids"])
        return len(messages_containing(lead, "switched"))

    def test_switched_off_workflow_stops_firing_at_once(self):
        self.switch_with_concurrent_request(active=False)
        self.assert_fires(False)

    def test_switched_on_workflow_fires_at_once(self):
        self.switch_with_concurrent_request(active=False)
        self.switch_with_concurrent_request(active=True)
        self.assert_fires(True)

    def test_changed_action_is_seen_at_once(self):
        """Any change of a trigger or action, not only the switch: here a trigger moved to another stage."""
        with self.registry.cursor() as other_cr, self.registry.cursor() as admin_cr:
            workflow = self.env(admin_cr)["workflow.automation"].browse(self.ids["workflow"])
            workflow.active = False
            workflow.trigger_ids.stage_id = self.env(admin_cr).ref("crm.stage_lead3")
            workflow.active = True
            self.env(admin_cr).flush_all()
            self.assertIn(self.ids["workflow"], self.indexed_workflows(self.env(other_cr)))
        self.assert_fires(False)
