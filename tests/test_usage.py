from datetime import datetime, timedelta

from odoo.tests import tagged

from .common import WorkflowAutomationCase, messages_containing

NOON = datetime(2026, 3, 2, 12, 0)


@tagged("post_install", "-at_install", "is_query_count")
class TestUsageReport(WorkflowAutomationCase):
    """Zoho's workflow usage report: counts per workflow, runs by day, workflow, state and
    action kind, and failures told to the followers once per workflow and hour."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.foreign_team = cls.create_foreign_team()

    def failing_workflow(self, name="Failing", **values):
        """Assigning a pipeline of another company fails; the note after it is skipped."""
        return self.create_stage_workflow(
            self.stage_qualified,
            [{"kind": "assign_team", "team_id": self.foreign_team.id}, {"kind": "note", "note_body": "after"}],
            name=name,
            **values,
        )

    # ------------------------------------------------------------------
    # Counts per workflow
    # ------------------------------------------------------------------

    def test_each_workflow_counts_runs_failures_skipped_and_scheduled_with_its_last_run(self):
        working = self.create_stage_workflow(
            self.stage_qualified,
            [{"kind": "note", "note_body": "now"}, {"kind": "note", "note_body": "later", "delay": 2}],
            name="Working",
        )
        failing = self.failing_workflow()
        idle = self.create_stage_workflow(self.stage_won, [{"kind": "note", "note_body": "won"}], name="Idle")
        self.qualify(count=2, at=NOON - timedelta(days=1))
        self.qualify(count=1, at=NOON)

        stats = ("run_count", "run_failed_count", "run_skipped_count", "run_scheduled_count", "last_run_date")
        self.assertEqual([working[name] for name in stats], [6, 0, 0, 3, NOON])
        self.assertEqual([failing[name] for name in stats], [6, 3, 3, 0, NOON])
        self.assertEqual([idle[name] for name in stats], [0, 0, 0, 0, False])

    def test_counts_of_a_page_of_workflows_take_one_query(self):
        workflows = self.failing_workflow("One") | self.failing_workflow("Two") | self.failing_workflow("Three")
        self.qualify(at=NOON)

        counts = ["run_count", "run_failed_count", "last_run_date"]
        workflows.invalidate_recordset()
        with self.capture_queries() as one_workflow:
            workflows[0].read(counts)
        workflows.invalidate_recordset()
        with self.assertQueryCount(len(one_workflow)):
            workflows.read(counts)

    def test_smart_buttons_open_the_runs_of_one_state(self):
        workflow = self.failing_workflow()
        self.qualify(at=NOON)
        action = workflow.with_context(run_state="failed").action_open_runs_in_state()
        self.assertEqual(action["context"]["search_default_failed"], 1)
        runs = self.env["workflow.automation.run"].search([*action["domain"], ("state", "=", "failed")])
        self.assertEqual(runs, self.runs(workflow, "failed"))

    # ------------------------------------------------------------------
    # Runs as a report
    # ------------------------------------------------------------------

    def test_runs_group_by_day_workflow_state_and_action_kind(self):
        workflow = self.failing_workflow()
        self.qualify(count=2, at=NOON - timedelta(days=1))
        self.qualify(count=1, at=NOON)
        groups = self.env["workflow.automation.run"]._read_group(
            [("workflow_id", "=", workflow.id)], ["date:day", "state", "action_kind"], ["__count"]
        )
        self.assertEqual(
            {(day.date(), state, kind): count for day, state, kind, count in groups},
            {
                (NOON.date() - timedelta(days=1), "failed", "assign_team"): 2,
                (NOON.date() - timedelta(days=1), "skipped", "note"): 2,
                (NOON.date(), "failed", "assign_team"): 1,
                (NOON.date(), "skipped", "note"): 1,
            },
        )
        workflow.active = False
        workflow.trigger_ids.action_ids.unlink()
        self.assertEqual(
            sorted(self.runs(workflow).mapped("action_kind")), ["assign_team"] * 3 + ["note"] * 3,
            "a run keeps the kind of its deleted action",
        )

    def test_report_views_and_search_panel(self):
        views = self.env["workflow.automation.run"].get_views([(False, "graph"), (False, "pivot"), (False, "search")])
        self.assertIn('<field name="date" interval="day"', views["views"]["graph"]["arch"])
        self.assertIn('<field name="workflow_id" type="row"', views["views"]["pivot"]["arch"])
        search = views["views"]["search"]["arch"]
        for panel_field in ("workflow_id", "state", "action_kind"):
            self.assertRegex(search, rf'(?s)<searchpanel.*<field name="{panel_field}"')
        report = self.env.ref("crm_workflow_automation.workflow_automation_run_action_report")
        self.assertEqual(report.view_mode, "graph,pivot,list,form")

    # ------------------------------------------------------------------
    # Failures told to the followers, once per workflow and hour
    # ------------------------------------------------------------------

    @staticmethod
    def notifications(workflow):
        return messages_containing(workflow, "failed on")

    def test_followers_hear_of_failures_once_per_workflow_and_hour(self):
        workflow = self.failing_workflow()
        workflow.message_subscribe(partner_ids=self.owner.partner_id.ids)
        other = self.failing_workflow("Other")
        self.qualify(count=3, at=NOON)
        self.assertEqual(len(self.notifications(workflow)), 1, "one message for a batch of three failures")
        self.assertIn("failed on 3 record(s)", self.notifications(workflow).body)
        self.assertEqual(len(self.notifications(other)), 1, "each workflow tells its own followers")

        self.qualify(count=2, at=NOON + timedelta(minutes=30))
        self.assertEqual(len(self.notifications(workflow)), 1, "not again within the hour")

        self.qualify(count=1, at=NOON + timedelta(minutes=65))
        latest = self.notifications(workflow)[0]
        self.assertEqual(len(self.notifications(workflow)), 2)
        self.assertIn("failed on 1 record(s)", latest.body)
        self.assertIn("3 failure(s) since the last notification", latest.body)
        self.assertIn(self.owner.partner_id, latest.notified_partner_ids)
        self.assertEqual(workflow.failure_notified_at, NOON + timedelta(minutes=65))
        self.assertTrue(workflow.active, "the date is written although the workflow is on (locked)")

    def test_failure_in_the_queue_is_told_too(self):
        workflow = self.create_stage_workflow(
            self.stage_qualified,
            [{"kind": "assign_team", "team_id": self.foreign_team.id, "delay": 1, "delay_unit": "hours"}],
        )
        self.qualify(at=NOON)
        self.assertFalse(self.notifications(workflow))
        self.run_queue(at=self.runs(workflow).date_due + timedelta(minutes=1))
        self.assertEqual(self.runs(workflow).state, "failed")
        self.assertEqual(len(self.notifications(workflow)), 1)

    def test_failures_on_test_records_are_not_told(self):
        workflow = self.create_stage_workflow(
            self.stage_qualified, [{"kind": "note", "note_body": "{{ 1 / object.expected_revenue }}"}], active=False
        )
        self.create_test_record(workflow).write({"stage_id": self.stage_qualified.id})  # no revenue: fails
        self.assertTrue(self.runs(workflow, "failed").is_test)
        self.assertFalse(self.notifications(workflow))
        self.assertFalse(workflow.failure_notified_at, "a real failure within the hour is still told")
