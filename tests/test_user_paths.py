import json
from datetime import date

from freezegun import freeze_time

from odoo import Command
from odoo.exceptions import AccessError, ValidationError

from .common import WorkflowAutomationCase


def create_score_field(env):
    """A custom field of leads, for a condition that outlives it."""
    return env["ir.model.fields"].create({
        "model_id": env["ir.model"]._get_id("crm.lead"), "name": "x_score", "ttype": "integer",
        "field_description": "Score",
    })


class DragCase(WorkflowAutomationCase):
    """An own-documents salesman, Dan Dragger, and his lead."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.dragger = cls.new_salesman("wa_dragger", name="Dan Dragger")
        cls.lead = cls.create_leads(user_id=cls.dragger.id)


class TestSalesmanDragLands(DragCase):
    """An own-documents salesman drags his opportunity in the kanban (``web_save``): whatever
    the workflows do with it, his change is saved and he gets no error."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.team_a.member_ids = cls.dragger | cls.owner

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
        for vals in ({"stage_id": self.stage_qualified.id}, {}):
            with self.assertRaises(AccessError):
                self.drag(others, vals, self.dragger)
        self.assertFalse(others.with_user(self.dragger).has_access("read"))


class TestAssigningKeepsThePipeline(DragCase):
    """"Assign to a user" hands the lead over inside its pipeline, even to a user of another team."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.team_a.member_ids = cls.dragger
        cls.team_b.member_ids = cls.owner  # his default team

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


class TestWorkflowLoopsAreVisible(DragCase):
    """Workflows moving a lead back and forth stop, and a run says which ones looped and where."""

    def test_back_and_forth_leaves_a_stopped_run(self):
        ping, pong = self.create_loop_workflows()
        self.drag(self.lead, {"stage_id": self.stage_qualified.id}, self.dragger)
        self.assertEqual(self.lead.stage_id, self.stage_qualified, "Pong's move is the last one")
        self.assertEqual(self.runs(pong).mapped("state"), ["done"])
        self.assertEqual(sorted(self.runs(ping).mapped("state")), ["done", "skipped"])
        stopped = self.runs(ping, "skipped")
        self.assertEqual(stopped.user_id, self.dragger)
        self.assertIn("“Ping” → “Pong” → “Ping”", stopped.message)
        self.assertIn("loop", stopped.message)

    def test_a_repeat_by_the_user_himself_is_no_loop(self):
        """Two writes of the user in one transaction: the once-per-transaction rule, silently."""
        ping = self.create_stage_workflow(self.stage_qualified, [{"kind": "note", "note_body": "Hello"}], name="Ping")
        lead = self.lead.with_user(self.dragger)
        for stage in (self.stage_qualified, self.stage_new, self.stage_qualified):
            lead.write({"stage_id": stage.id})
        self.assertEqual(self.runs(ping).mapped("state"), ["done"])

    def test_the_depth_cut_names_the_chain(self):
        stages = self.env["crm.stage"].create([{"name": f"Step {i}", "sequence": 100 + i} for i in range(7)])
        workflows = [
            self.create_stage_workflow(stage, [{"kind": "set_stage", "stage_id": next_stage.id}], name=stage.name)
            for stage, next_stage in zip(stages[:-1], stages[1:], strict=True)
        ]
        self.drag(self.lead, {"stage_id": stages[0].id}, self.dragger)
        stopped = self.runs(workflows[5])
        self.assertEqual(stopped.state, "skipped")
        self.assertIn("“Step 0” → “Step 1” → “Step 2” → “Step 3” → “Step 4” → “Step 5”", stopped.message)


class TestRunTimeFailuresSpareTheDrag(DragCase):
    """A condition or a due date that fails at run time fails its trigger's run, not the drag."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.other = cls.create_stage_workflow(
            cls.stage_qualified, [{"kind": "add_tags", "tag_ids": [Command.set(cls.tag.ids)]}], name="Other"
        )

    def assert_failed_alone(self, workflow, *texts):
        self.assertEqual(self.lead.stage_id, self.stage_qualified, "the drag is saved")
        run = self.runs(workflow)
        self.assertEqual(run.mapped("state"), ["failed"])
        self.assertEqual(run.trigger_id, workflow.trigger_ids)
        for text in texts:
            self.assertIn(text, run.message)
        self.assertEqual(self.runs(self.other).mapped("state"), ["done"], "the other trigger ran")
        self.assertEqual(self.lead.tag_ids, self.tag)

    def test_condition_raising_for_another_user(self):
        """Valid at save for the admin who saved it, a KeyError for the salesman."""
        workflow = self.create_workflow([{
            "kind": "stage_reached",
            "stage_id": self.stage_qualified.id,
            "filter_domain": f"[('id', '!=', {{{self.env.uid}: 0}}[uid])]",
            "actions": [{"kind": "note", "note_body": "Hello"}],
        }], name="Picky", team_ids=[Command.set(self.team_a.ids)])
        self.drag(self.lead, {"stage_id": self.stage_qualified.id}, self.dragger)
        self.assert_failed_alone(workflow, "Stage reached: Qualified", "KeyError")

    def test_condition_on_a_field_deleted_since(self):
        field = create_score_field(self.env)
        workflow = self.create_workflow([{
            "kind": "stage_reached",
            "stage_id": self.stage_qualified.id,
            "filter_domain": "[('x_score', '>', 5)]",
            "actions": [{"kind": "note", "note_body": "Hello"}],
        }], name="Scored", team_ids=[Command.set(self.team_a.ids)])
        field.with_context(_force_unlink=True).unlink()
        self.drag(self.lead, {"stage_id": self.stage_qualified.id}, self.dragger)
        self.assert_failed_alone(workflow, "x_score")

    def test_due_date_out_of_range(self):
        """A delay saved before delays were bounded: 100,000 months."""
        workflow = self.create_stage_workflow(
            self.stage_qualified, [{"kind": "note", "note_body": "Later", "delay": 1, "delay_unit": "months"}],
            name="Patient",
        )
        self.env.cr.execute(
            "UPDATE workflow_automation_action SET delay = 100000 WHERE id = %s", [workflow.trigger_ids.action_ids.id]
        )
        workflow.trigger_ids.action_ids.invalidate_recordset(["delay"])
        self.drag(self.lead, {"stage_id": self.stage_qualified.id}, self.dragger)
        self.assert_failed_alone(workflow, "due date")


class TestDelaysAreBounded(WorkflowAutomationCase):
    """Delays and offsets of more than 100 years are refused at save, naming the field."""

    def assert_refused(self, field_label, create):
        with self.assertRaises(ValidationError) as refusal:
            create()
        self.assertIn(f"field “{field_label}”", str(refusal.exception))
        self.assertIn("100 years", str(refusal.exception))

    def action_workflow(self, **action):
        return lambda: self.create_stage_workflow(self.stage_qualified, [action], name="Huge", active=False)

    def test_action_delays(self):
        note = {"kind": "note", "note_body": "Later"}
        self.assert_refused("Delay", self.action_workflow(**note, delay=100_000, delay_unit="months"))
        self.assert_refused("Delay", self.action_workflow(**note, delay=3_000_000, delay_unit="days"))
        self.assert_refused("Delay", self.action_workflow(**note, delay=2_000_000_000, delay_unit="minutes"))
        self.create_stage_workflow(self.stage_qualified, [dict(note, delay=1200, delay_unit="months")], active=False)

    def test_set_value_days(self):
        action = {"kind": "set_field", "set_field_id": self.model_field("date_deadline").id}
        self.assert_refused("Days from today", self.action_workflow(**action, set_value_days=10_000_000))
        self.assert_refused("Days from today", self.action_workflow(**action, set_value_days=-40_000))

    def test_activity_deadline(self):
        action = {"kind": "activity", "activity_type_id": self.activity_call.id}
        self.assert_refused("Deadline after", self.action_workflow(**action, activity_deadline=6000,
                                                                    activity_deadline_unit="weeks"))

    def test_trigger_offsets(self):
        def trigger_workflow(**trigger):
            return lambda: self.create_workflow([trigger], name="Huge", active=False)

        date_field = self.model_field("date_deadline").id
        self.assert_refused("Days", trigger_workflow(kind="date", date_field_id=date_field, date_offset=5_000_000))
        self.assert_refused("Days without change", trigger_workflow(
            kind="inactive", stage_id=self.stage_qualified.id, inactive_days=2_000_000_000
        ))


class TestRunTimeFailuresSpareTheScan(WorkflowAutomationCase):
    """A date trigger's condition that fails at run time fails that trigger's runs, not the scan."""

    def test_condition_on_a_field_deleted_since(self):
        self.company.partner_id.tz = "UTC"
        field = create_score_field(self.env)
        with freeze_time("2026-03-01 08:00"):
            broken, sound = (self.create_workflow([{
                "kind": "date",
                "date_field_id": self.model_field("date_deadline").id,
                "date_hour": 9,
                "filter_domain": domain,
                "actions": [{"kind": "note", "note_body": "Deadline"}],
            }], name=name, team_ids=[Command.set(self.team_a.ids)]) for name, domain in (
                ("Scored", "[('x_score', '>', 5)]"), ("Sound", "[]"),
            ))
            lead = self.create_leads(date_deadline=date(2026, 3, 10))
        self.scan_at("2026-03-01 08:00")
        field.with_context(_force_unlink=True).unlink()
        self.scan_at("2026-03-10 10:00")
        run = self.runs(broken)
        self.assertEqual((run.res_id, run.state, run.occurrence), (lead.id, "failed", date(2026, 3, 10)))
        self.assertIn("x_score", run.message)
        self.assertEqual(self.runs(sound).mapped("state"), ["done"], "the other trigger ran")
