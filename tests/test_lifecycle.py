from datetime import date, timedelta

from freezegun import freeze_time
from psycopg2 import errors

from odoo import SUPERUSER_ID, Command, api, fields
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.modules.registry import Registry
from odoo.tests import new_test_user, tagged
from odoo.tests.common import BaseCase, get_db_name
from odoo.tools import sql

from .common import WorkflowAutomationCase


@tagged("post_install", "-at_install")
class TestScopeNeverWidens(WorkflowAutomationCase):
    """An empty scope means all pipelines (or projects): deleting the last one of a workflow must
    not make it fire everywhere."""

    def tag_workflow(self, teams):
        workflow = self.create_stage_workflow(
            self.stage_qualified, [{"kind": "add_tags", "tag_ids": [Command.set(self.tag.ids)]}], teams=teams
        )
        workflow.message_subscribe(partner_ids=self.salesman.partner_id.ids)
        return workflow

    def drag_to_qualified(self, team):
        """The salesman drags a new lead of ``team`` to Qualified."""
        return self.qualify(self.create_leads(team=team), self.salesman, drag=True)

    def test_deleting_the_only_pipeline_switches_the_workflow_off(self):
        workflow = self.tag_workflow(self.team_a)
        self.team_a.with_user(self.sales_manager).unlink()

        self.assertFalse(workflow.active)
        notice = workflow.message_ids[0]
        self.assertIn("Pipeline A", notice.body)
        self.assertIn("Pipelines", notice.body)
        self.assertIn(self.salesman.partner_id, notice.notified_partner_ids, "its followers are told")
        lead = self.drag_to_qualified(self.team_b)
        self.assertFalse(lead.tag_ids)
        self.assertFalse(self.runs(workflow))

    def test_deleting_one_of_two_pipelines_narrows_the_scope(self):
        team_c = self.env["crm.team"].create({"name": "Pipeline C"})
        workflow = self.tag_workflow(self.team_a | self.team_b)
        self.team_a.unlink()

        self.assertTrue(workflow.active)
        self.assertEqual(self.drag_to_qualified(self.team_b).tag_ids, self.tag)
        self.assertFalse(self.drag_to_qualified(team_c).tag_ids)

    def test_archiving_the_only_pipeline_keeps_the_scope(self):
        workflow = self.tag_workflow(self.team_a)
        lead_a = self.create_leads(team=self.team_a)
        self.team_a.action_archive()

        self.assertTrue(workflow.active)
        self.assertFalse(self.drag_to_qualified(self.team_b).tag_ids)
        self.drag(lead_a, {"stage_id": self.stage_qualified.id}, self.salesman)
        self.assertEqual(lead_a.tag_ids, self.tag, "its opportunities are still in the scope")

    def test_the_scan_of_an_archived_pipeline_keeps_the_scope(self):
        with freeze_time("2026-03-01 08:00"):
            workflow = self.create_workflow(
                [{
                    "kind": "date", "date_field_id": self.model_field("date_deadline").id, "date_offset": 0,
                    "actions": [{"kind": "note", "note_body": "due"}],
                }],
                team_ids=[Command.set(self.team_a.ids)],
            )
            self.create_leads(team=self.team_b, date_deadline=date(2026, 3, 5))
        self.scan_at("2026-03-01 08:00")
        self.team_a.action_archive()
        self.scan_at("2026-03-05 12:00")
        self.assertFalse(self.runs(workflow))

    def test_deleting_the_only_project_switches_the_workflow_off(self):
        project = self.create_project("Only project")
        other = self.create_project("Other project")
        workflow = self.create_workflow(
            [{"kind": "stage_reached", "project_stage_id": self.stage_doing.id,
              "actions": [{"kind": "note", "note_body": "moved"}]}],
            target="project.project", project_ids=[Command.set(project.ids)],
        )
        project_manager = new_test_user(self.env, login="wa_project_manager", groups="project.group_project_manager")
        project.with_user(project_manager).unlink()

        self.assertFalse(workflow.active)
        self.assertIn("Only project", workflow.message_ids[0].body)
        other.stage_id = self.stage_doing
        self.assertFalse(self.runs(workflow))


@tagged("post_install", "-at_install")
class TestCustomFieldDeletion(WorkflowAutomationCase):
    """A custom field that a workflow uses cannot be deleted: its triggers and actions would go too."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.renewal, cls.code = cls.env["ir.model.fields"].create([
            {"model_id": cls.env["ir.model"]._get_id("crm.lead"), "name": "x_renewal",
             "field_description": "Renewal date", "ttype": "date"},
            {"model_id": cls.env["ir.model"]._get_id("crm.lead"), "name": "x_code",
             "field_description": "Customer code", "ttype": "char"},
        ])

    def test_a_field_of_a_date_trigger_is_kept(self):
        workflow = self.create_workflow(
            [{"kind": "date", "date_field_id": self.renewal.id, "actions": [{"kind": "note", "note_body": "renew"}]}],
            name="Renewals",
        )
        with self.assertRaisesRegex(UserError, "“Renewal date” is used by the workflow “Renewals”, in “0 day"):
            self.renewal.unlink()
        self.assertTrue(workflow.trigger_ids.exists())

    def test_a_field_set_by_an_action_is_kept(self):
        workflow = self.create_stage_workflow(
            self.stage_qualified, [{"kind": "set_field", "set_field_id": self.code.id, "set_value": "A1"}],
            name="Codes", active=False,
        )
        with self.assertRaisesRegex(UserError, "“Customer code” is used by the workflow “Codes”"):
            self.code.unlink()
        self.assertTrue(workflow.trigger_ids.action_ids.exists())

    def test_an_unused_field_is_deleted(self):
        self.code.unlink()
        self.assertFalse(self.code.exists())


@tagged("post_install", "-at_install")
class TestRunRetention(WorkflowAutomationCase):
    """Runs that need no attention are purged after the retention; failed ones once dismissed."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.workflow = cls.create_stage_workflow(cls.stage_qualified, [{"kind": "note", "note_body": "hi"}])
        cls.workflow_manager = cls.new_workflow_manager()

    def make_runs(self, states, days_ago):
        lead = self.create_leads()
        Run = self.env["workflow.automation.run"]
        action = self.workflow.trigger_ids.action_ids
        runs = Run.create([
            vals
            for state in states
            for vals in Run._prepare_vals_list(
                action, lead, self.salesman, state,
                **({"date_due": fields.Datetime.now()} if state == "scheduled" else {}),
            )
        ])
        self.env.flush_all()
        self.env.cr.execute(
            "UPDATE workflow_automation_run SET date = %s WHERE id IN %s",
            [fields.Datetime.now() - timedelta(days=days_ago), tuple(runs.ids)],
        )
        runs.invalidate_recordset(["date"])
        return runs

    def test_old_runs_are_purged_and_the_counters_follow(self):
        old = self.make_runs(["done", "skipped", "cancelled", "failed", "failed", "scheduled"], days_ago=400)
        old_failed, old_dismissed = old.filtered(lambda run: run.state == "failed")
        old_dismissed.with_user(self.workflow_manager).action_dismiss()
        recent = self.make_runs(["done", "skipped", "failed"], days_ago=10)
        kept = old_failed | old.filtered(lambda run: run.state == "scheduled") | recent

        self.env["workflow.automation.run"]._gc_old_runs()

        self.assertEqual(self.runs(self.workflow), kept)
        self.workflow.invalidate_recordset()
        self.assertEqual(self.workflow.run_count, len(kept))
        self.assertEqual(self.workflow.run_failed_count, 2)
        self.assertEqual(self.workflow.run_skipped_count, 1)
        self.assertEqual(self.workflow.run_scheduled_count, 1)
        for state in ("failed", "skipped", "scheduled"):
            with self.subTest(state=state):  # each smart button opens as many runs as it counts
                action = self.workflow.with_context(run_state=state).action_open_runs_in_state()
                self.assertEqual(
                    self.env["workflow.automation.run"].search_count([*action["domain"], ("state", "=", state)]),
                    self.workflow[f"run_{state}_count"],
                )

    def test_a_firing_goes_with_its_last_run(self):
        """The autovacuum deletes the firings whose runs the retention purged, not the others."""
        old = self.make_runs(["done", "skipped"], days_ago=400)
        kept = self.make_runs(["failed"], days_ago=400) | self.make_runs(["done"], days_ago=10)
        firings = (old | kept).firing_id
        self.assertEqual(len(firings), 3, "the runs made together share their firing")

        self.env["workflow.automation.run"]._gc_old_runs()
        self.env["workflow.automation.firing"]._gc_firings_without_runs()

        self.assertEqual(firings.exists(), kept.firing_id)

    def test_the_retention_is_a_setting(self):
        settings = self.env["res.config.settings"].create({})
        self.assertEqual(settings.workflow_automation_run_retention_days, 365)
        settings.workflow_automation_run_retention_days = 30
        settings.execute()
        recent = self.make_runs(["done"], days_ago=10)
        self.make_runs(["done"], days_ago=40)
        self.env["workflow.automation.run"]._gc_old_runs()
        self.assertEqual(self.runs(self.workflow), recent)

        with self.assertRaisesRegex(ValidationError, "at least one day"):
            self.env["res.config.settings"].create({"workflow_automation_run_retention_days": -1})

    def test_only_failed_runs_are_dismissed_by_a_manager(self):
        failed, done = self.make_runs(["failed", "done"], days_ago=1)
        with self.assertRaises(AccessError):
            failed.with_user(self.salesman).action_dismiss()
        with self.assertRaisesRegex(UserError, "“Dismiss” is not possible"):
            done.with_user(self.workflow_manager).action_dismiss()
        self.assertIs(failed.with_user(self.workflow_manager).action_dismiss(), True)
        self.assertTrue(failed.dismissed)


@tagged("post_install", "-at_install")
class TestScanIndexConcurrency(BaseCase):
    """Saving a date trigger builds the index of its column without locking writes out.

    On real, committed connections only: the test holds no transaction of its own, which
    ``CREATE INDEX CONCURRENTLY`` would wait for (a TransactionCase keeps one open).
    """

    COLUMN = "date_conversion"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.registry = Registry(get_db_name())
        cls.index = sql.make_index_name("crm_lead", cls.COLUMN)

    def setUp(self):
        super().setUp()
        with self.registry.cursor() as cr:
            cr.execute(f"DROP INDEX IF EXISTS {self.index}")
            self.lead_id = api.Environment(cr, SUPERUSER_ID, {})["crm.lead"].create({"name": "Indexed"}).id
        self.addCleanup(self.remove, "crm.lead", self.lead_id)

    def remove(self, model, record_id):
        with self.registry.cursor() as cr:
            api.Environment(cr, SUPERUSER_ID, {})[model].browse(record_id).exists().unlink()
            cr.execute(f"DROP INDEX IF EXISTS {self.index}")

    def test_a_lead_write_is_not_blocked_while_a_date_trigger_is_saved(self):
        with self.registry.cursor() as admin_cr:
            admin = api.Environment(admin_cr, SUPERUSER_ID, {})
            workflow = admin["workflow.automation"].create({
                "name": "Conversion anniversary",
                "target": "crm.lead",
                "trigger_ids": [Command.create({
                    "kind": "date",
                    "date_field_id": admin["ir.model.fields"]._get("crm.lead", self.COLUMN).id,
                    "action_ids": [Command.create({"kind": "note", "note_body": "anniversary"})],
                })],
            })
            admin.flush_all()
            self.addCleanup(self.remove, "workflow.automation", workflow.id)
            with self.registry.cursor() as sales_cr:
                try:  # the lock that a write takes, at once or not at all
                    sales_cr.execute("LOCK TABLE crm_lead IN ROW EXCLUSIVE MODE NOWAIT")
                except errors.LockNotAvailable:
                    self.fail("a write to the opportunities waits for the admin's transaction")
                api.Environment(sales_cr, SUPERUSER_ID, {})["crm.lead"].browse(self.lead_id).name = "Written meanwhile"
            # the admin's transaction commits here; then the index is built
        with self.registry.cursor() as cr:
            cr.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)", [self.index])
            self.assertEqual(cr.fetchall(), [(True,)], "a valid index, built after the commit")
            self.assertEqual(
                api.Environment(cr, SUPERUSER_ID, {})["crm.lead"].browse(self.lead_id).name, "Written meanwhile"
            )
