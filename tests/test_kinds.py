from odoo.tests import Form, tagged

from ..models.workflow_automation_action import OUTBOUND_KINDS, QUEUED_KINDS
from ..models.workflow_automation_kinds import ACTION_KINDS, TRIGGER_KINDS
from .common import WorkflowAutomationCase

TRIGGER_FORM = "crm_workflow_automation.workflow_automation_trigger_view_form"


@tagged("post_install", "-at_install")
class TestKinds(WorkflowAutomationCase):
    """Each kind is declared once (models/workflow_automation_kinds.py); what the forms offer
    and check, and what a kind change leaves behind, follow from it."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.manager = cls.new_workflow_manager()
        cls.admin = cls.env.ref("base.user_admin")

    def test_the_selections_and_sets_come_from_the_registry(self):
        Action, Trigger = self.env["workflow.automation.action"], self.env["workflow.automation.trigger"]
        self.assertEqual([code for code, _label in Action._fields["kind"].selection], list(ACTION_KINDS))
        self.assertEqual([code for code, _label in Trigger._fields["kind"].selection], list(TRIGGER_KINDS))
        self.assertEqual(QUEUED_KINDS, ("webhook",))
        self.assertEqual(OUTBOUND_KINDS, {"email", "webhook"}, "no SMS until SMS exists")

    def test_the_form_offers_the_kinds_of_the_target(self):
        project = self.create_project_workflow([{"kind": "note", "note_body": "x"}], active=False)
        form = Form(project.trigger_ids.with_user(self.admin), view=TRIGGER_FORM)
        self.assertNotIn("won", form.available_kinds)
        self.assertIn("project_closed", form.available_kinds)
        with form.action_ids.edit(0) as action:
            self.assertNotIn("mark_won", action.available_kinds)
            self.assertIn("close_project", action.available_followup_effects)
            self.assertEqual(action.stage_field, "project_stage_id", "a project's stages are project stages")
            self.assertEqual(action.tag_field, "project_tag_ids")

    def test_a_kind_changed_in_the_form_no_longer_holds_the_old_user(self):
        """The admin turns "assign to Ursula" into a note in the form: Ursula may then be deleted."""
        ursula = self.new_salesman("wa_ursula", name="Ursula")
        workflow = self.create_stage_workflow(
            self.stage_qualified, [{"kind": "assign_user", "user_id": ursula.id}], active=False
        )
        form = Form(workflow.trigger_ids.with_user(self.admin), view=TRIGGER_FORM)
        with form.action_ids.edit(0) as action:
            action.kind = "note"
            self.assertFalse(action.user_id, "the form clears the old kind's user at once")
            action.note_body = "Qualified."
        form.save()
        action = workflow.trigger_ids.action_ids
        self.assertEqual((action.kind, action.user_id, action.note_body), ("note", ursula.browse(), "Qualified."))
        ursula.unlink()
        self.assertFalse(ursula.exists())

    def test_a_kind_written_by_a_manager_no_longer_holds_the_old_stages(self):
        """Written over RPC by a delegated manager as well: the stale stages of a trigger and
        of an action are cleared, and the admin may delete them."""
        trigger_stage, action_stage = self.env["crm.stage"].create([{"name": "Old trigger"}, {"name": "Old target"}])
        workflow = self.create_stage_workflow(
            trigger_stage, [{"kind": "set_stage", "stage_id": action_stage.id}], active=False
        )
        trigger = workflow.trigger_ids.with_user(self.manager)
        trigger.action_ids.write({"kind": "add_tags", "tag_ids": [(6, 0, self.tag.ids)]})
        trigger.write({"kind": "create"})
        self.assertFalse(trigger.stage_id)
        self.assertEqual((trigger.action_ids.stage_id, trigger.action_ids.tag_ids), (action_stage.browse(), self.tag))
        (trigger_stage | action_stage).unlink()
        self.assertFalse((trigger_stage | action_stage).exists())

    def test_a_kind_change_keeps_what_the_new_kind_uses(self):
        """The stage of a "move to a stage" stays when it becomes a follow-up moving to that stage;
        a parameter written with the kind is the one kept."""
        workflow = self.create_stage_workflow(
            self.stage_qualified, [{"kind": "set_stage", "stage_id": self.stage_won.id}], active=False
        )
        action = workflow.trigger_ids.action_ids.with_user(self.manager)
        action.write({"kind": "activity", "activity_type_id": self.activity_call.id, "followup_effect": "set_stage"})
        self.assertEqual((action.stage_id, action.followup_effect), (self.stage_won, "set_stage"))
        action.write({"kind": "assign_user", "user_id": self.owner.id})
        self.assertEqual(
            (action.user_id, action.stage_id, action.activity_type_id, action.followup_effect),
            (self.owner, self.stage_won.browse(), self.activity_call.browse(), "none"),
            "the follow-up's type and effect go, its default comes back",
        )
