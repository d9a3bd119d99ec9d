from odoo import Command
from odoo.tests import tagged

from .common import WorkflowAutomationCase


@tagged("post_install", "-at_install")
class TestTriggers(WorkflowAutomationCase):
    def test_record_created(self):
        workflow = self.note_workflow({"kind": "create"}, team_ids=[Command.set(self.team_a.ids)])
        lead_a = self.create_leads(team=self.team_a)
        self.create_leads(team=self.team_b)
        self.assertEqual(self.runs(workflow).res_id, lead_a.id)
        lead_a.write({"stage_id": self.stage_qualified.id})
        self.assertEqual(len(self.runs(workflow)), 1, "a write is not a creation")

    def test_stage_reached_only_on_its_stage_and_on_a_change(self):
        workflow = self.note_workflow({"kind": "stage_reached", "stage_id": self.stage_proposition.id})
        lead = self.create_leads()
        lead.write({"stage_id": self.stage_qualified.id})
        self.assertFalse(self.runs(workflow))
        lead.write({"stage_id": self.stage_proposition.id})
        lead.write({"stage_id": self.stage_proposition.id, "description": "same stage again"})
        self.assertEqual(len(self.runs(workflow)), 1)

    def test_stage_changed_from_x_to_y(self):
        workflow = self.note_workflow({
            "kind": "stage_changed",
            "from_stage_id": self.stage_new.id,
            "stage_id": self.stage_proposition.id,
        })
        from_new, from_qualified = self.create_leads(2)
        from_qualified.write({"stage_id": self.stage_qualified.id})
        (from_new | from_qualified).write({"stage_id": self.stage_proposition.id})
        self.assertEqual(self.runs(workflow).res_id, from_new.id)

    def test_stage_changed_from_any_stage(self):
        workflow = self.note_workflow({"kind": "stage_changed", "stage_id": self.stage_proposition.id})
        leads = self.create_leads(2)
        leads[1].write({"stage_id": self.stage_qualified.id})
        leads.write({"stage_id": self.stage_proposition.id})
        self.assertEqual(len(self.runs(workflow)), 2)

    def test_stage_changed_to_any_stage(self):
        workflow = self.note_workflow({"kind": "stage_changed", "from_stage_id": self.stage_new.id})
        lead = self.create_leads()
        lead.write({"stage_id": self.stage_qualified.id})
        lead.write({"stage_id": self.stage_proposition.id})
        self.assertEqual(len(self.runs(workflow)), 1, "only leaving New fires")

    def test_won_by_dragging_to_won_stage_and_by_button(self):
        workflow = self.note_workflow({"kind": "won"})
        dragged, clicked, open_lead = self.create_leads(3)
        dragged.write({"stage_id": self.stage_won.id})
        clicked.action_set_won()
        open_lead.write({"stage_id": self.stage_qualified.id})
        self.assertEqual(sorted(self.runs(workflow).mapped("res_id")), sorted((dragged | clicked).ids))

    def test_lost_fires_once_with_the_final_values(self):
        reason = self.env["crm.lost.reason"].create({"name": "Too expensive"})
        workflow = self.note_workflow({"kind": "lost", "filter_domain": f"[('lost_reason_id', '=', {reason.id})]"})
        too_expensive, other = self.create_leads(2)
        too_expensive.action_set_lost(lost_reason_id=reason.id)
        other.action_set_lost()
        run = self.runs(workflow)
        self.assertEqual(run.res_id, too_expensive.id, "the condition sees the lost reason set by the button")
        self.assertFalse(too_expensive.active)

    def test_archiving_without_losing_is_not_lost(self):
        workflow = self.note_workflow({"kind": "lost"})
        lead = self.create_leads()
        lead.write({"active": False, "probability": 40})
        self.assertFalse(self.runs(workflow))

    def test_restored_when_unarchived_or_reopened(self):
        workflow = self.note_workflow({"kind": "restored"})
        lost, won, untouched = self.create_leads(3)
        lost.action_set_lost()
        won.action_set_won()
        lost.toggle_active()
        won.write({"stage_id": self.stage_qualified.id})
        untouched.write({"stage_id": self.stage_qualified.id})
        self.assertEqual(sorted(self.runs(workflow).mapped("res_id")), sorted((lost | won).ids))
        self.assertTrue(lost.active)

    def test_condition_filters_the_batch(self):
        workflow = self.note_workflow({
            "kind": "stage_reached",
            "stage_id": self.stage_qualified.id,
            "filter_domain": "[('expected_revenue', '>=', 1000)]",
        })
        big, small = self.create_leads(2)
        big.expected_revenue = 5000
        small.expected_revenue = 10
        (big | small).write({"stage_id": self.stage_qualified.id})
        self.assertEqual(self.runs(workflow).res_id, big.id)

    def test_condition_with_user_placeholder(self):
        workflow = self.note_workflow({
            "kind": "stage_reached",
            "stage_id": self.stage_qualified.id,
            "filter_domain": "[('user_id', '=', uid)]",
        })
        mine, theirs = self.create_leads(2)
        theirs.user_id = self.owner
        (mine | theirs).with_user(self.salesman).sudo().write({"stage_id": self.stage_qualified.id})
        self.assertEqual(self.runs(workflow).res_id, mine.id)

    def test_pipeline_scope(self):
        workflow = self.note_workflow(
            {"kind": "stage_reached", "stage_id": self.stage_qualified.id},
            team_ids=[Command.set(self.team_b.ids)],
        )
        lead_a = self.create_leads(team=self.team_a)
        lead_b = self.create_leads(team=self.team_b)
        (lead_a | lead_b).write({"stage_id": self.stage_qualified.id})
        self.assertEqual(self.runs(workflow).res_id, lead_b.id)

    def test_moving_into_the_pipeline_and_the_stage_in_one_write_fires(self):
        workflow = self.note_workflow(
            {"kind": "stage_reached", "stage_id": self.stage_qualified.id},
            team_ids=[Command.set(self.team_a.ids)],
        )
        lead = self.create_leads(team=self.team_b)
        lead.write({"team_id": self.team_a.id, "stage_id": self.stage_qualified.id})
        self.assertEqual(self.runs(workflow).res_id, lead.id)

    def test_switched_off_workflow_does_not_fire(self):
        workflow = self.note_workflow({"kind": "stage_reached", "stage_id": self.stage_qualified.id}, active=False)
        self.create_leads().write({"stage_id": self.stage_qualified.id})
        self.assertFalse(self.runs(workflow))

    def test_switching_on_is_seen_by_the_next_write(self):
        workflow = self.note_workflow({"kind": "stage_reached", "stage_id": self.stage_qualified.id}, active=False)
        lead = self.create_leads()
        lead.write({"stage_id": self.stage_proposition.id})  # warms the trigger index
        workflow.active = True
        lead.write({"stage_id": self.stage_qualified.id})
        self.assertEqual(len(self.runs(workflow)), 1)


@tagged("post_install", "-at_install")
class TestProjectTriggers(WorkflowAutomationCase):
    def project_workflow(self, trigger, **values):
        return self.create_workflow(
            [{**trigger, "actions": [{"kind": "note", "note_body": "fired on {{ object.name }}"}]}],
            target="project.project",
            **values,
        )

    def test_project_created(self):
        workflow = self.project_workflow({"kind": "create"})
        project = self.create_project()
        self.assertEqual(self.runs(workflow).res_id, project.id)
        self.assertIn("fired on Website", project.message_ids[0].body)

    def test_project_stage_reached(self):
        workflow = self.project_workflow({"kind": "stage_reached", "project_stage_id": self.stage_doing.id})
        project = self.create_project()
        project.stage_id = self.stage_doing
        self.assertEqual(self.runs(workflow).res_id, project.id)

    def test_project_closed_on_folded_stage(self):
        workflow = self.project_workflow({"kind": "project_closed"})
        project = self.create_project()
        project.stage_id = self.stage_doing
        self.assertFalse(self.runs(workflow))
        project.stage_id = self.stage_done
        self.assertEqual(self.runs(workflow).res_id, project.id)

    def test_project_scope(self):
        chosen, other = self.create_project("Chosen"), self.create_project("Other")
        workflow = self.project_workflow(
            {"kind": "stage_reached", "project_stage_id": self.stage_doing.id},
            project_ids=[Command.set(chosen.ids)],
        )
        (chosen | other).write({"stage_id": self.stage_doing.id})
        self.assertEqual(self.runs(workflow).res_id, chosen.id)
