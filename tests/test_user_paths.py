import json

from odoo import Command
from odoo.exceptions import AccessError

from .common import WorkflowAutomationCase


class TestSalesmanDragLands(WorkflowAutomationCase):
    """An own-documents salesman drags his opportunity in the kanban (``web_save``): whatever
    the workflows do with it, his change is saved and he gets no error."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.dragger = cls.new_salesman("wa_dragger", name="Dan Dragger")
        cls.team_a.member_ids = cls.dragger | cls.owner
        cls.lead = cls.create_leads(user_id=cls.dragger.id)

    def bus_messages(self, user):
        """The payloads of the notifications sent to ``user``'s web client in this transaction."""
        self.env.flush_all()
        self.env.cr.precommit.run()
        notifications = self.env["bus.bus"].sudo().search([])
        return [
            json.loads(notification.message)
            for notification in notifications
            if json.loads(notification.channel)[1:] == ["res.partner", user.partner_id.id]
        ]

    def assert_handed_off(self, workflow, result):
        self.assertEqual([values["id"] for values in result], self.lead.ids, "the card is read back")
        self.assertEqual(result[0]["user_id"]["display_name"], "Oscar Owner", "the card shows the new owner")
        self.assertEqual(self.lead.stage_id, self.stage_qualified, "the drag is saved")
        self.assertEqual(self.lead.user_id, self.owner, "the hand-off happened")
        self.assertEqual(self.runs(workflow).mapped("state"), ["done"])
        self.assertFalse(self.lead.with_user(self.dragger).has_access("read"), "the lead left his sight")
        notices = [message["payload"] for message in self.bus_messages(self.dragger)
                   if message["type"] == "simple_notification"]
        self.assertEqual(len(notices), 1, "he is told who took it over")
        self.assertIn("Opportunity 0", notices[0]["message"])
        self.assertIn("Oscar Owner", notices[0]["message"])

    def test_hand_off_by_assign_user(self):
        workflow = self.create_stage_workflow(self.stage_qualified, [{"kind": "assign_user", "user_id": self.owner.id}])
        result = self.drag(self.lead, {"stage_id": self.stage_qualified.id}, self.dragger)
        self.assert_handed_off(workflow, result)

    def test_hand_off_by_set_field(self):
        workflow = self.create_stage_workflow(self.stage_qualified, [{
            "kind": "set_field",
            "set_field_id": self.model_field("user_id").id,
            "set_value_res_id": self.owner.id,
        }])
        result = self.drag(self.lead, {"stage_id": self.stage_qualified.id}, self.dragger)
        self.assert_handed_off(workflow, result)

    def test_a_card_still_his_is_read_as_usual(self):
        self.create_stage_workflow(self.stage_qualified, [{"kind": "add_tags", "tag_ids": [Command.set(self.tag.ids)]}])
        result = self.drag(self.lead, {"stage_id": self.stage_qualified.id}, self.dragger)
        self.assertEqual(result[0]["stage_id"]["id"], self.stage_qualified.id)
        self.assertEqual(self.lead.tag_ids, self.tag)
        self.assertFalse([message for message in self.bus_messages(self.dragger)
                          if message["type"] == "simple_notification"], "nothing to tell")

    def test_another_users_lead_stays_unreadable(self):
        """The read-back of the saved card is no way to read what he could not read before."""
        others = self.create_leads(user_id=self.owner.id)
        with self.assertRaises(AccessError):
            self.drag(others, {"stage_id": self.stage_qualified.id}, self.dragger)
        self.assertFalse(others.with_user(self.dragger).has_access("read"))


class TestAssigningKeepsThePipeline(WorkflowAutomationCase):
    """"Assign to a user" hands the lead over inside its pipeline, even to a user of another team."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.dragger = cls.new_salesman("wa_dragger", name="Dan Dragger")
        cls.team_a.member_ids = cls.dragger
        cls.team_b.member_ids = cls.owner  # his default team
        cls.lead = cls.create_leads(user_id=cls.dragger.id)

    def test_assign_to_a_user_of_another_team_keeps_the_team(self):
        workflow = self.create_stage_workflow(self.stage_qualified, [{"kind": "assign_user", "user_id": self.owner.id}])
        self.drag(self.lead, {"stage_id": self.stage_qualified.id}, self.dragger)
        self.assertEqual(self.lead.user_id, self.owner)
        self.assertEqual(self.lead.team_id, self.team_a, "the lead stays in the workflow's pipeline")
        self.assertEqual(self.runs(workflow).mapped("state"), ["done"])

    def test_an_assign_team_action_still_moves_it(self):
        self.create_stage_workflow(self.stage_qualified, [
            {"kind": "assign_user", "user_id": self.owner.id},
            {"kind": "assign_team", "team_id": self.team_b.id},
        ])
        self.drag(self.lead, {"stage_id": self.stage_qualified.id}, self.dragger)
        self.assertEqual((self.lead.user_id, self.lead.team_id), (self.owner, self.team_b))

    def test_a_lead_without_team_gets_the_users_team(self):
        """Nothing to keep: Odoo's own rule gives it the new owner's team."""
        self.lead.team_id = False
        self.create_stage_workflow(self.stage_qualified, [{"kind": "assign_user", "user_id": self.owner.id}],
                                   teams=self.env["crm.team"])
        self.drag(self.lead, {"stage_id": self.stage_qualified.id}, self.dragger)
        self.assertEqual((self.lead.user_id, self.lead.team_id), (self.owner, self.team_b))
