from odoo import Command
from odoo.exceptions import AccessError, UserError
from odoo.tests import new_test_user, tagged

from .common import WorkflowAutomationCase

HINTS_METHOD = "get_stage_drop_hints"


@tagged("post_install", "-at_install")
class TestBoard(WorkflowAutomationCase):
    """The Automations board (workflow managers) and what a drop in a CRM stage does (every user)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.manager = cls.new_workflow_manager()
        cls.carla = new_test_user(cls.env, login="wa_carla", name="Carla Contracts",
                                  groups="sales_team.group_sale_salesman")
        cls.stage_a = cls.env["crm.stage"].create({"name": "Pipeline A only", "team_id": cls.team_a.id,
                                                   "sequence": 99})
        cls.stage_b = cls.env["crm.stage"].create({"name": "Pipeline B only", "team_id": cls.team_b.id})
        cls.proposal = cls.create_template(name="Proposal")
        cls.contract_actions = [
            {"kind": "assign_user", "user_id": cls.carla.id},
            {"kind": "activity", "activity_type_id": cls.activity_call.id,
             "activity_summary": "Have the contract signed", "activity_deadline": 2, "followup_effect": "mark_won"},
            {"kind": "email", "mail_template_id": cls.proposal.id, "delay": 3, "delay_unit": "days"},
        ]

    def board(self, team, user=None):
        """The board of ``team`` as the kanban loads it: its columns, then each column's cards."""
        action = self.env["crm.team"].with_user(user or self.manager).browse(team.id).action_open_workflow_board()
        Trigger = self.env["workflow.automation.trigger"].with_user(user or self.manager).with_context(
            **action["context"]
        )
        groups = Trigger.web_read_group(action["domain"], ["board_column"], ["board_column"])["groups"]
        spec = {"workflow_name": {}, "workflow_active": {}, "board_when": {}, "board_condition": {},
                "board_actions": {}}
        return {
            group["board_column"]: Trigger.web_search_read(group["__domain"], spec)["records"]
            for group in groups
        }

    def column_labels(self, team):
        labels = dict(self.env["workflow.automation.trigger"]._fields["board_column"]._description_selection(
            self.env
        ))
        return [labels[column] for column in self.board(team)]

    # ------------------------------------------------------------------
    # The board
    # ------------------------------------------------------------------

    def test_columns_are_the_pipeline_stages_in_order_then_the_events(self):
        stages = self.env["crm.stage"].search([("team_id", "in", [False, self.team_a.id])])
        self.assertIn(self.stage_a, stages)
        self.assertEqual(
            self.column_labels(self.team_a),
            [*stages.mapped("name"), "Created", "Won", "Lost", "Restored", "Dates and inactivity", "Activities"],
        )
        self.assertNotIn("Pipeline B only", self.column_labels(self.team_a))

    def test_a_card_per_trigger_of_the_pipeline_and_of_all_pipelines(self):
        self.create_stage_workflow(self.stage_qualified, [{"kind": "note", "note_body": "A"}], name="For A")
        self.create_stage_workflow(self.stage_qualified, [{"kind": "note", "note_body": "All"}], name="For all",
                                   teams=self.env["crm.team"], active=False)
        self.create_stage_workflow(self.stage_qualified, [{"kind": "note", "note_body": "B"}], name="For B",
                                   teams=self.team_b)
        self.create_workflow(
            [{"kind": "won"}, {"kind": "create"}, {"kind": "activity_done"},
             {"kind": "inactive", "stage_id": self.stage_new.id, "inactive_days": 5}],
            name="Events", team_ids=[Command.set(self.team_a.ids)],
        )

        board = self.board(self.team_a)

        qualified = board[f"stage_{self.stage_qualified.id}"]
        self.assertEqual([(card["workflow_name"], card["workflow_active"]) for card in qualified],
                         [("For A", True), ("For all", False)])
        for column in ("won", "created", "activities", "dates"):
            self.assertEqual([card["workflow_name"] for card in board[column]], ["Events"], column)
        self.assertEqual(board["dates"][0]["board_when"], "No change for 5 days in New")

    def test_a_stage_to_stage_trigger_shows_in_the_destination_naming_the_origin(self):
        self.create_workflow(
            [{"kind": "stage_changed", "from_stage_id": self.stage_new.id, "stage_id": self.stage_proposition.id}],
            team_ids=[Command.set(self.team_a.ids)],
        )
        card, = self.board(self.team_a)[f"stage_{self.stage_proposition.id}"]
        self.assertEqual(card["board_when"], "From New")

    def test_a_card_says_the_condition_and_the_actions_with_their_delays(self):
        self.create_workflow(
            [{"kind": "stage_reached", "stage_id": self.stage_proposition.id, "actions": self.contract_actions,
              "filter_domain": f"[('expected_revenue', '>', 10000), ('user_id', '=', {self.salesman.id})]"}],
            name="Contract", team_ids=[Command.set(self.team_a.ids)],
        )
        card, = self.board(self.team_a)[f"stage_{self.stage_proposition.id}"]
        self.assertEqual(
            card["board_actions"],
            "Assign to Carla Contracts · Add a follow-up “Have the contract signed” (2 days) → when done: "
            "Mark as won · in 3 days: E-mail “Proposal”",
        )
        self.assertEqual(card["board_condition"], "Expected Revenue > 10000 and Salesperson is “Sally Sales”")

    def test_every_kind_of_action_is_said_without_its_definition(self):
        """A webhook says what it does, never where it posts."""
        workflow = self.create_stage_workflow(self.stage_qualified, [
            {"kind": "webhook", "webhook_url": "https://hooks.example.com/secret-token"},
            {"kind": "add_tags", "tag_ids": [Command.set(self.tag.ids)]},
            {"kind": "set_stage", "stage_id": self.stage_won.id},
            {"kind": "mark_lost"},
            {"kind": "set_field", "set_field_id": self.model_field("priority").id,
             "set_selection_id": self.model_field("priority").selection_ids.filtered(lambda s: s.value == "3").id},
        ])
        self.assertEqual(
            workflow.trigger_ids.board_actions,
            "Send a webhook · Add the tags Automated · Move to Won · Mark as lost · Set Priority to Very High",
        )

    def test_plus_fills_in_the_column(self):
        Trigger = self.env["workflow.automation.trigger"].with_user(self.manager)
        cases = {
            f"stage_{self.stage_qualified.id}": {"kind": "stage_reached", "stage_id": self.stage_qualified.id},
            "won": {"kind": "won"},
            "dates": {"kind": "date"},
            "activities": {"kind": "activity_done"},
            "any_stage": {"kind": "stage_changed"},
        }
        for column, expected in cases.items():
            defaults = Trigger.with_context(default_board_column=column).default_get(["kind", "stage_id"])
            self.assertEqual(defaults, expected, column)

    def test_plus_adds_a_trigger_to_a_new_switched_off_workflow_of_the_pipeline(self):
        """As the quick create does: the workflow typed in is made, then the trigger saved."""
        action = self.env["crm.team"].with_user(self.manager).browse(self.team_a.id).action_open_workflow_board()
        context = {**action["context"], "default_board_column": f"stage_{self.stage_qualified.id}"}
        Workflow = self.env["workflow.automation"].with_user(self.manager).with_context(
            active_test=False, default_target="crm.lead", default_team_ids=[self.team_a.id],
        )
        workflow_id, _name = Workflow.name_create("Qualified: call")
        Trigger = self.env["workflow.automation.trigger"].with_user(self.manager).with_context(**context)
        values = Trigger.onchange({}, [], {"kind": {}, "stage_id": {}, "workflow_id": {}})["value"]
        trigger = Trigger.browse(Trigger.web_save({**values, "workflow_id": workflow_id}, {})[0]["id"])

        self.assertEqual((trigger.kind, trigger.stage_id), ("stage_reached", self.stage_qualified))
        self.assertEqual(trigger.board_column, f"stage_{self.stage_qualified.id}")
        self.assertFalse(trigger.workflow_id.active)
        self.assertEqual(trigger.workflow_id.team_ids, self.team_a)
        self.assertIn(trigger.id, [card["id"] for card in self.board(self.team_a)[trigger.board_column]])

    def test_the_card_switch_follows_the_rules_of_the_switch(self):
        workflow = self.create_stage_workflow(self.stage_qualified, [{"kind": "note", "note_body": "Hi"}])
        trigger = workflow.trigger_ids.with_user(self.manager)
        with self.assertRaises(UserError, msg="a switched-on workflow's trigger is read-only"):
            trigger.web_save({"frequency": "first_time"}, {})
        trigger.web_save({"workflow_active": False}, {})
        self.assertFalse(workflow.active)
        trigger.web_save({"frequency": "first_time"}, {})
        with self.assertRaises(AccessError):
            trigger.with_user(self.salesman).web_save({"workflow_active": True}, {})
        self.assertFalse(workflow.active)

    def test_the_opened_card_is_read_only_while_its_workflow_is_on(self):
        view = self.env.ref("crm_workflow_automation.workflow_automation_trigger_view_form_board")
        arch = self.env["workflow.automation.trigger"].with_user(self.manager).get_views(
            [(view.id, "form")]
        )["views"]["form"]["arch"]
        self.assertIn('name="kind" widget="filterable_selection" options="{\'whitelist_fname\': '
                      '\'available_kinds\'}" readonly="workflow_active"', arch)
        self.assertIn('name="action_ids" readonly="workflow_active"', arch)
        self.assertIn('name="workflow_id" readonly="workflow_active or (id)"', arch)

    def test_the_board_is_for_workflow_managers(self):
        for user in (self.salesman, self.sales_manager):
            with self.assertRaises(AccessError, msg=user.name):
                self.env["crm.team"].with_user(user).browse(self.team_a.id).action_open_workflow_board()

    def test_the_workflow_list_opens_the_board_of_the_selected_pipeline(self):
        workflow = self.create_stage_workflow(self.stage_qualified, [], teams=self.team_b)
        action = workflow.with_user(self.manager).action_open_board()
        self.assertEqual(action["context"]["board_team_id"], self.team_b.id)
        projects = self.env["workflow.automation"].with_user(self.manager).with_context(
            default_target="project.project"
        ).action_open_board()
        self.assertEqual(projects["context"]["board_target"], "project.project")

    def test_the_project_board(self):
        self.create_project_workflow([{"kind": "note", "note_body": "Hi"}], kind="project_closed")
        action = self.env["workflow.automation"].with_user(self.manager)._board_action("project.project")
        Trigger = self.env["workflow.automation.trigger"].with_user(self.manager).with_context(**action["context"])
        groups = Trigger.web_read_group(action["domain"], ["board_column"], ["board_column"])["groups"]
        stages = self.env["project.project.stage"].search([])
        self.assertEqual(
            [group["board_column"] for group in groups],
            [*(f"project_stage_{stage.id}" for stage in stages), "created", "closed", "dates", "activities"],
        )
        self.assertEqual(next(g for g in groups if g["board_column"] == "closed")["board_column_count"], 1)

    def test_a_column_of_the_kanban_opens_the_board_on_its_stage(self):
        action = self.env["crm.team"].with_user(self.manager).browse(self.team_a.id).with_context(
            board_stage_id=self.stage_qualified.id
        ).action_open_workflow_board()
        self.assertEqual(action["context"]["search_default_board_column"], f"stage_{self.stage_qualified.id}")

    def test_the_board_costs_no_query_per_workflow(self):
        """The board of a pipeline of 200 workflows costs the queries of a pipeline of 20."""
        for team, count in ((self.team_a, 20), (self.team_b, 200)):
            for index in range(count):
                self.create_workflow(
                    [{"kind": "stage_reached", "stage_id": self.stage_proposition.id, "actions": self.contract_actions,
                      "filter_domain": f"[('user_id', '=', {self.salesman.id})]"}],
                    name=f"Contract {index}", team_ids=[Command.set(team.ids)], active=index % 2,
                )
        self.assertEqual(len(self.board(self.team_b)[f"stage_{self.stage_proposition.id}"]), 200)
        self.board(self.team_a)  # both warmed up: the same registry caches for both counts
        self.env.invalidate_all()
        small = self.count_queries(lambda: self.board(self.team_a))
        self.env.invalidate_all()
        with self.assertQueryCount(small):
            self.board(self.team_b)

    # ------------------------------------------------------------------
    # What a drop does, for the sales users
    # ------------------------------------------------------------------

    def new_team_salesman(self, login, **values):
        """An own-documents salesman, member of Pipeline A: his pipeline."""
        salesman = self.new_salesman(login, **values)
        self.team_a.member_ids |= salesman
        return salesman

    def hints(self, user, team=None):
        Trigger = self.env["workflow.automation.trigger"].with_user(user).with_context(lang=user.lang)
        return getattr(Trigger, HINTS_METHOD)(team_id=team.id if team else False)

    def test_a_salesman_reads_what_a_drop_does_but_not_the_workflows(self):
        self.create_workflow(
            [{"kind": "stage_reached", "stage_id": self.stage_proposition.id, "actions": [
                *self.contract_actions, {"kind": "webhook", "webhook_url": "https://hooks.example.com/secret"}]}],
            team_ids=[Command.set(self.team_a.ids)],
        )
        self.create_workflow(
            [{"kind": "stage_changed", "from_stage_id": self.stage_new.id, "stage_id": self.stage_qualified.id,
              "actions": [{"kind": "note", "note_body": "Hi"}]}],
        )
        self.create_stage_workflow(self.stage_won, [{"kind": "note", "note_body": "Off"}], active=False)
        self.create_stage_workflow(self.stage_won, [{"kind": "note", "note_body": "B"}], teams=self.team_b)
        salesman = self.new_team_salesman("wa_hints_sales")

        result = self.hints(salesman)

        self.assertEqual(result["team_id"], self.team_a.id, "the salesman's own pipeline")
        self.assertFalse(result["can_configure"])
        self.assertEqual(result["hints"], {
            self.stage_proposition.id: [
                "Assign to Carla Contracts; Add a follow-up “Have the contract signed” (2 days) → when done: "
                "Mark as won; in 3 days: E-mail “Proposal”; Send a webhook"
            ],
            self.stage_qualified.id: ["From New: Post an internal note"],
        }, "switched-on workflows of the pipeline or of all pipelines; nothing for the other columns")
        self.assertNotIn("secret", str(result))
        with self.assertRaises(AccessError):
            self.env["workflow.automation.trigger"].with_user(salesman).search_read([], ["board_actions"])
        with self.assertRaises(AccessError):
            self.env["workflow.automation.action"].with_user(salesman).search_read([], ["webhook_url"])

    def test_the_hints_of_another_pipeline_and_bad_input(self):
        self.create_stage_workflow(self.stage_won, [{"kind": "note", "note_body": "B"}], teams=self.team_b)
        self.assertEqual(list(self.hints(self.salesman, self.team_b)["hints"]), [self.stage_won.id])
        self.assertEqual(self.hints(self.salesman, self.team_a)["hints"], {})
        with self.assertRaisesRegex(ValueError, "The pipeline must be given by its id"):
            self.env["workflow.automation.trigger"].with_user(self.salesman).get_stage_drop_hints(team_id="1; drop")
        portal = new_test_user(self.env, login="wa_portal", groups="base.group_portal")
        with self.assertRaises(AccessError):
            self.hints(portal)

    def test_the_hints_are_in_the_user_language(self):
        self.env["res.lang"]._activate_lang("fr_FR")
        self.env["ir.module.module"]._load_module_terms(["crm_workflow_automation"], ["fr_FR"], overwrite=True)
        self.create_stage_workflow(self.stage_proposition, self.contract_actions)
        salesman = self.new_team_salesman("wa_hints_fr", lang="fr_FR")
        hint, = self.hints(salesman)["hints"][self.stage_proposition.id]
        self.assertIn("Assigner à Carla Contracts", hint)
        self.assertIn("dans 3 jours : E-mail « Proposal »", hint)

    def test_the_hints_cost_no_query_per_workflow(self):
        salesman = self.new_team_salesman("wa_hints_count")
        self.create_stage_workflow(self.stage_proposition, self.contract_actions)
        self.hints(salesman)
        self.env.invalidate_all()
        baseline = self.count_queries(lambda: self.hints(salesman))
        for _index in range(10):
            self.create_stage_workflow(self.stage_proposition, self.contract_actions)
        self.hints(salesman)  # the index is built again once
        self.env.invalidate_all()
        with self.assertQueryCount(baseline):
            self.assertEqual(len(self.hints(salesman)["hints"][self.stage_proposition.id]), 11)
