from odoo import Command
from odoo.tests import new_test_user, tagged

from .test_tours import ScreenshotTourCase


class BoardTourCase(ScreenshotTourCase):
    """The pipeline Sales with a contract workflow at Proposition and a welcome from New to Qualified."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.carla = new_test_user(cls.env, login="cwa_tour_carla", name="Carla Contracts",
                                  groups="sales_team.group_sale_salesman")
        proposal = cls.env["mail.template"].create({
            "name": "Board proposal",
            "model_id": cls.env["ir.model"]._get_id("crm.lead"),
            "subject": "Our proposal",
            "partner_to": "{{ object.partner_id.id }}",
        })
        call = cls.env.ref("mail.mail_activity_data_call")
        cls.contract = cls.create_tour_stage_workflow("Board contract", cls.stage_proposition, [
            {"sequence": 1, "kind": "assign_user", "user_id": cls.carla.id},
            {"sequence": 2, "kind": "activity", "activity_type_id": call.id,
             "activity_summary": "Have the contract signed", "activity_deadline": 2,
             "activity_user_id": cls.carla.id, "activity_user_mode": "user", "followup_effect": "mark_won"},
            {"sequence": 3, "kind": "email", "mail_template_id": proposal.id, "delay": 3},
        ])
        cls.welcome = cls.env["workflow.automation"].create({
            "name": "Board welcome",
            "target": "crm.lead",
            "team_ids": [Command.set(cls.sales_team.ids)],
            "trigger_ids": [Command.create({
                "kind": "stage_changed",
                "from_stage_id": cls.stage_new.id,
                "stage_id": cls.stage_qualified.id,
                "action_ids": [Command.create({"kind": "note", "note_body": "Welcome"})],
            })],
        })


@tagged("post_install", "-at_install")
class TestBoardTour(BoardTourCase):
    """An admin opens the board from the pipeline, adds a trigger with "+" and switches a card off."""

    def test_board_tour(self):
        saved = self.start_tour_with_screenshots(
            f"/odoo/action-sales_team.crm_team_action_config/{self.sales_team.id}",
            "crm_workflow_automation_board_tour",
        )
        self.assert_screenshots(saved, ["board"])
        self.env.invalidate_all()
        self.assertFalse(self.contract.active, "switched off from its card")
        added = self.env["workflow.automation"].with_context(active_test=False).search(
            [("name", "=", "Board qualified call")]
        )
        self.assertFalse(added.active, "a new workflow is made switched off")
        self.assertEqual(added.team_ids, self.sales_team, "for the pipeline of the board")
        self.assertEqual(added.trigger_ids.mapped(lambda t: (t.kind, t.stage_id)),
                         [("stage_reached", self.stage_qualified)], "at the stage of the column")


@tagged("post_install", "-at_install")
class TestDropHintTour(BoardTourCase):
    """A French own-documents salesperson reads what a drop in a column of her pipeline does."""

    def test_drop_hint_tour(self):
        self.env["res.lang"]._activate_lang("fr_FR")
        self.env["ir.module.module"]._load_module_terms(["crm_workflow_automation"], ["fr_FR"], overwrite=True)
        salesperson = new_test_user(self.env, login="cwa_tour_hint", name="Hint Salesperson", lang="fr_FR",
                                    groups="sales_team.group_sale_salesman")
        self.sales_team.member_ids |= salesperson
        self.env["crm.lead"].create({
            "name": "Hint opportunity", "type": "opportunity", "partner_id": self.customer.id,
            "team_id": self.sales_team.id, "user_id": salesperson.id, "stage_id": self.stage_qualified.id,
        })
        saved = self.start_tour_with_screenshots(
            "/odoo/action-crm.crm_lead_action_pipeline", "crm_workflow_automation_drop_hint_tour",
            login=salesperson.login,
        )
        self.assert_screenshots(saved, ["board_drop_hint"])
        self.assertFalse(salesperson.has_group("crm_workflow_automation.group_workflow_automation_manager"))


@tagged("post_install", "-at_install")
class TestStageBoardTour(BoardTourCase):
    """An admin opens the automations of a CRM kanban column from its gear menu."""

    def test_stage_board_tour(self):
        self.sales_team.member_ids |= self.env.ref("base.user_admin")
        self.start_tour("/odoo/action-crm.crm_lead_action_pipeline", "crm_workflow_automation_stage_board_tour",
                        login="admin")
        self.assertTrue(self.contract.active, "opening the board changes nothing")
