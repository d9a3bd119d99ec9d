from lxml import etree

from odoo import Command
from odoo.exceptions import AccessError
from odoo.tests import HttpCase, new_test_user, tagged

from .common import OutboundCase, load_french

MANAGER_GROUP = "crm_workflow_automation.group_workflow_automation_manager"
RUN_BUTTONS = ("action_run_now", "action_cancel", "action_retry")
DEFINITION_MODELS = ("workflow.automation", "workflow.automation.trigger", "workflow.automation.action")


class AccessCase(OutboundCase):
    """The users an attacker or a new user would be: an own-documents salesman (and another
    one), an internal user without any CRM right, a delegated workflow manager, and a
    workflow manager of a second company. A workflow notes, and schedules a webhook, on
    the deals of both salesmen when they reach Qualified."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.seller = cls.new_salesman("wa_acc_seller", name="Sam Seller")
        cls.other_seller = cls.new_salesman("wa_acc_other_seller", name="Olga Other")
        cls.internal = new_test_user(cls.env, login="wa_acc_internal", groups="base.group_user")
        cls.manager = cls.new_workflow_manager()
        cls.company_b = cls.env["res.company"].create({"name": "Company B"})
        cls.manager_b = cls.new_workflow_manager(
            login="wa_acc_manager_b", company_id=cls.company_b.id, company_ids=[Command.set(cls.company_b.ids)]
        )
        cls.Run = cls.env["workflow.automation.run"]

    def setUp(self):
        super().setUp()
        self.workflow = self.create_stage_workflow(self.stage_qualified, [
            {"kind": "note", "note_body": "Qualified"},
            {"kind": "webhook", "webhook_url": self.endpoint.url, "webhook_retries": 0},
        ])
        self.mine = self.create_leads(user_id=self.seller.id)
        self.theirs = self.create_leads(user_id=self.other_seller.id)
        (self.mine | self.theirs).write({"stage_id": self.stage_qualified.id})

    def runs_on(self, leads, kind=None):
        return self.runs(self.workflow).filtered(
            lambda run: run.res_id in leads.ids and (not kind or run.action_kind == kind)
        )

    def visible_runs(self, user):
        return self.Run.with_user(user).search([("workflow_id", "=", self.workflow.id)])


@tagged("post_install", "-at_install")
class TestRunVisibility(AccessCase):
    """Runs are read by those who may read their record, and by the workflow managers."""

    def test_salesman_sees_only_the_runs_of_his_own_deals(self):
        self.assertEqual(len(self.runs_on(self.theirs)), 2)
        self.assertEqual(self.visible_runs(self.seller), self.runs_on(self.mine))
        Run = self.Run.with_user(self.seller)
        self.assertEqual(Run.search_count([("workflow_id", "=", self.workflow.id)]), 2)
        groups = Run.read_group([("workflow_id", "=", self.workflow.id)], ["state"], ["state"])
        self.assertEqual(sum(group["state_count"] for group in groups), 2, "pivot and graph count his runs only")
        with self.assertRaises(AccessError):
            self.runs_on(self.theirs).with_user(self.seller).read(["record_name"])

    def test_salesman_still_sees_the_runs_of_his_lost_deal(self):
        self.mine.action_set_lost()
        self.assertEqual(self.visible_runs(self.seller), self.runs_on(self.mine))

    def test_user_without_crm_rights_sees_no_run(self):
        self.assertFalse(self.visible_runs(self.internal))
        with self.assertRaises(AccessError):
            self.runs_on(self.mine).with_user(self.internal).read(["record_name"])

    def test_workflow_manager_sees_every_run_of_his_company(self):
        own_documents_manager = self.new_salesman("wa_acc_own_manager", groups_id=[
            self.env.ref("sales_team.group_sale_salesman").id, self.env.ref(MANAGER_GROUP).id,
        ])
        self.assertFalse(self.theirs.with_user(own_documents_manager).has_access("read"))
        self.assertEqual(self.visible_runs(own_documents_manager), self.runs(self.workflow))
        self.assertEqual(self.visible_runs(self.manager), self.runs(self.workflow))
        self.assertFalse(self.visible_runs(self.manager_b))

    def test_salesman_opens_the_runs_of_his_deal(self):
        """The lead form's smart button, its list (search panel, grouping) and a run's form."""
        action = self.mine.with_user(self.seller).action_open_workflow_runs()
        Run = self.Run.with_user(self.seller)
        views = Run.get_views([(False, "list"), (False, "form"), (False, "search")])
        view_fields = views["models"]["workflow.automation.run"]["fields"]
        spec = {
            name: {"fields": {"display_name": {}}} if desc["type"] in ("many2one", "reference") else {}
            for name, desc in view_fields.items()
        }
        found = Run.web_search_read(action["domain"], spec)
        self.assertEqual(found["length"], 2)
        self.assertEqual({record["workflow_id"]["display_name"] for record in found["records"]}, {"Test workflow"})
        panel = Run.search_panel_select_range("workflow_id", search_domain=action["domain"], enable_counters=True)
        self.assertEqual([value["display_name"] for value in panel["values"]], ["Test workflow"])
        groups = Run.web_read_group(action["domain"], ["workflow_id"], ["workflow_id"])
        self.assertEqual(groups["groups"][0]["workflow_id"][1], "Test workflow")

    def test_salesman_reads_his_deal_with_its_workflow_fields(self):
        """The lead form and kanban card: the scheduled count, the test flag of a test record."""
        test_lead = self.create_test_record(self.workflow, stage_id=self.stage_new.id)
        test_lead.user_id = self.seller
        values = (self.mine | test_lead).with_user(self.seller).web_read({
            "workflow_scheduled_count": {}, "workflow_test_id": {"fields": {"display_name": {}}},
        })
        self.assertEqual(values[0]["workflow_scheduled_count"], 1)
        self.assertEqual(values[1]["workflow_test_id"]["display_name"], "Test workflow")


@tagged("post_install", "-at_install")
class TestDefinitionVisibility(AccessCase):
    """Workflows, triggers and actions (webhook URLs) are for managers of their company;
    webhook answers for managers."""

    def test_sales_and_internal_users_cannot_read_definitions(self):
        for user in (self.seller, self.internal):
            for model in DEFINITION_MODELS:
                with self.subTest(user=user.login, model=model), self.assertRaises(AccessError):
                    self.env[model].with_user(user).search_read([], ["display_name"])
        with self.assertRaises(AccessError):
            self.workflow.trigger_ids.action_ids.with_user(self.seller).read(["webhook_url"])

    def test_manager_of_another_company_cannot_read_the_actions(self):
        actions = self.workflow.trigger_ids.action_ids
        Action = self.env["workflow.automation.action"].with_user(self.manager_b)
        self.assertFalse(Action.search([("id", "in", actions.ids)]))
        with self.assertRaises(AccessError):
            actions.with_user(self.manager_b).read(["webhook_url"])
        self.assertEqual(actions.with_user(self.manager).read(["webhook_url"])[1]["webhook_url"], self.endpoint.url)

    def test_others_see_the_outcome_of_runs_but_not_of_webhooks(self):
        later = self.create_stage_workflow(
            self.stage_proposition, [{"kind": "note", "note_body": "Later", "delay": 1}], name="Later"
        )
        self.mine.stage_id = self.stage_proposition
        (self.runs(later) | self.runs_on(self.mine, "webhook")).with_user(self.manager).action_cancel()
        self.assertEqual(self.runs(later).with_user(self.seller).outcome, f"Cancelled by {self.manager.name}.")
        self.assertFalse(self.runs_on(self.mine, "webhook").with_user(self.seller).outcome)

    def test_webhook_answer_is_for_managers_only(self):
        self.endpoint.responses.append((200, "token=s3cr3t", 0))
        self.runs_on(self.mine, "webhook").with_user(self.manager).action_run_now()
        run = self.runs_on(self.mine, "webhook")
        self.assertIn("token=s3cr3t", run.with_user(self.manager).message)
        with self.assertRaises(AccessError):
            run.with_user(self.seller).read(["message"])
        self.assertNotIn("message", self.Run.with_user(self.seller).fields_get())


@tagged("post_install", "-at_install")
class TestButtonRights(AccessCase):
    """Sales users see no button they may not press, and pressing one over RPC changes
    nothing and sends nothing."""

    def run_buttons(self, user):
        views = self.Run.with_user(user).get_views([(False, "list"), (False, "form")])["views"]
        return {
            node.get("name")
            for view in views.values()
            for node in etree.fromstring(view["arch"]).iter("button")
            if node.get("name") in RUN_BUTTONS
        }

    def test_salesman_gets_no_link_to_the_definitions(self):
        """The run's workflow, trigger and action, the test record's workflow: shown, not opened."""
        form = self.Run.with_user(self.seller).get_views([(False, "form")])["views"]["form"]["arch"]
        lead_form = self.env["crm.lead"].with_user(self.seller).get_views([(False, "form")])["views"]["form"]["arch"]
        links = [
            node for arch in (form, lead_form) for node in etree.fromstring(arch).iter("field")
            if node.get("name") in ("workflow_id", "trigger_id", "action_id", "workflow_test_id")
        ]
        self.assertEqual(len(links), 4)
        self.assertEqual([node for node in links if "no_open" not in node.get("options", "")], [])

    def test_run_buttons_are_shown_to_managers_only(self):
        self.assertEqual(self.run_buttons(self.seller), set())
        self.assertEqual(self.run_buttons(self.manager), set(RUN_BUTTONS))

    def test_salesman_cannot_run_now_and_nothing_is_sent(self):
        run = self.runs_on(self.mine, "webhook")
        self.assertEqual(run.state, "scheduled")
        with self.assertRaises(AccessError):
            run.with_user(self.seller).action_run_now()
        self.assertEqual(self.endpoint.received, [], "checked before the POST")
        self.assertEqual(run.state, "scheduled")

    def test_salesman_cannot_retry_and_nothing_is_sent(self):
        run = self.runs_on(self.mine, "webhook")
        self.endpoint.responses.append((500, "down", 0))
        run.action_run_now()
        self.assertEqual(run.state, "failed")
        with self.assertRaises(AccessError):
            run.with_user(self.seller).action_retry()
        self.assertEqual(len(self.endpoint.received), 1, "the retry was refused before the POST")
        self.assertEqual(run.state, "failed")

    def test_salesman_cannot_cancel(self):
        run = self.runs_on(self.mine, "webhook")
        with self.assertRaises(AccessError):
            run.with_user(self.seller).action_cancel()
        self.assertEqual(run.state, "scheduled")

    def test_salesman_cannot_make_a_test_record(self):
        wizard = self.open_test_wizard(self.workflow)
        with self.assertRaises(AccessError):
            wizard.with_user(self.seller).action_create_test_record()
        self.assertFalse(self.workflow.test_record_count)

    def test_salesman_cannot_remove_test_records(self):
        test_lead = self.create_test_record(self.workflow, stage_id=self.stage_new.id)
        test_lead.user_id = self.seller
        with self.assertRaises(AccessError):
            self.workflow.with_user(self.seller).action_remove_test_records()
        self.assertTrue(test_lead.exists())


@tagged("post_install", "-at_install")
class TestTestRecordFlag(AccessCase):
    """Only the test wizard, run by a manager, sets the test-record flag."""

    def test_salesman_cannot_flag_his_deal_and_removal_spares_it(self):
        with self.assertRaisesRegex(AccessError, "Test record of"):
            self.mine.with_user(self.seller).write({"workflow_test_id": self.workflow.id})
        self.assertFalse(self.mine.workflow_test_id)
        self.workflow.action_remove_test_records()
        self.assertTrue(self.mine.exists(), "a real deal is never removed as a test record")

    def test_salesman_cannot_create_a_flagged_deal(self):
        Lead = self.env["crm.lead"].with_user(self.seller)
        with self.assertRaisesRegex(AccessError, "Test record of"):
            Lead.create({"name": "Fake test", "user_id": self.seller.id, "workflow_test_id": self.workflow.id})

    def test_refusal_is_in_the_users_language(self):
        load_french(self.env)
        seller_fr = self.new_salesman("wa_acc_seller_fr", lang="fr_FR")
        lead = self.create_leads(user_id=seller_fr.id).with_user(seller_fr).with_context(lang="fr_FR")
        with self.assertRaisesRegex(
            AccessError, "Le champ “Enregistrement de test de” de .* n'est renseigné que par le bouton “Tester ce "
        ):
            lead.write({"workflow_test_id": self.workflow.id})

    def test_nobody_clears_or_sets_the_flag_outside_the_wizard(self):
        test_lead = self.create_test_record(self.workflow, stage_id=self.stage_new.id)
        for user in (self.sales_manager, self.manager):
            with self.subTest(user=user.login), self.assertRaisesRegex(AccessError, "Test record of"):
                test_lead.with_user(user).write({"workflow_test_id": False})
            with self.subTest(user=user.login), self.assertRaisesRegex(AccessError, "Test record of"):
                self.theirs.with_user(user).write({"workflow_test_id": self.workflow.id})
        self.assertEqual(test_lead.workflow_test_id, self.workflow)
        self.assertFalse(self.theirs.workflow_test_id)

    def test_manager_makes_test_records_with_the_wizard(self):
        wizard = self.env["workflow.automation.test.wizard"].with_user(self.manager).with_context(
            default_workflow_id=self.workflow.id
        ).create({"stage_id": self.stage_new.id})
        action = wizard.action_create_test_record()
        test_lead = self.env["crm.lead"].browse(action["res_id"])
        self.assertEqual(test_lead.workflow_test_id, self.workflow)
        self.assertEqual(test_lead.user_id, self.manager)
        self.assertEqual(test_lead.create_uid, self.manager)


@tagged("post_install", "-at_install")
class TestButtonsOverXmlRpc(AccessCase, HttpCase):
    """Every button answers something an XML-RPC client can read (never None)."""

    def call(self, model, method, records, user=None):
        user = user or self.manager
        return self.xmlrpc_object.execute_kw(
            self.env.cr.dbname, user.id, user.login, model, method, [records.ids]  # new_test_user's password
        )

    def test_run_buttons_answer_over_xml_rpc(self):
        note_scheduled = self.create_stage_workflow(
            self.stage_proposition, [{"kind": "note", "note_body": "Later", "delay": 1}], name="Later"
        )
        leads = self.create_leads(2)
        leads.write({"stage_id": self.stage_proposition.id})
        first, second = self.runs(note_scheduled)
        self.assertTrue(self.call("workflow.automation.run", "action_cancel", first))
        self.assertTrue(self.call("workflow.automation.run", "action_run_now", second))
        failed = self.runs_on(self.mine, "webhook")
        self.endpoint.responses.append((500, "down", 0))
        failed.action_run_now()
        self.assertEqual(failed.state, "failed")
        self.assertTrue(self.call("workflow.automation.run", "action_retry", failed))

    def test_workflow_buttons_answer_over_xml_rpc(self):
        self.workflow.active = False
        self.create_test_record(self.workflow, stage_id=self.stage_new.id)
        for method in ("action_remove_test_records", "action_open_test_records", "action_open_runs"):
            with self.subTest(method=method):
                self.assertTrue(self.call("workflow.automation", method, self.workflow))
        self.assertFalse(self.workflow.test_record_count)
        self.assertTrue(self.call("crm.lead", "action_open_workflow_runs", self.mine, self.seller))


@tagged("post_install", "-at_install")
class TestSalesmanRunScreens(AccessCase, HttpCase):
    """In Chromium, as the own-documents salesman: his deal's *Scheduled* smart button, the
    list of its runs (search panel included) and a run's form open without an error, and
    show no button he may not press and no link to the workflow."""

    def test_salesman_runs_tour(self):
        self.start_tour(
            f"/odoo/crm.lead/{self.mine.id}",
            "crm_workflow_automation_salesman_runs_tour",
            login=self.seller.login,
        )
