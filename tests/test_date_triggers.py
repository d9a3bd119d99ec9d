from datetime import date, datetime

import psycopg2
from freezegun import freeze_time
from markupsafe import escape

from odoo import Command
from odoo.exceptions import ValidationError
from odoo.tests import tagged
from odoo.tools import mute_logger

from .common import WorkflowAutomationCase, messages_containing


@tagged("post_install", "-at_install")
class TestDateTriggers(WorkflowAutomationCase):
    """Time travel: the scan runs at chosen moments; the company's timezone is UTC."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company.partner_id.tz = "UTC"
        cls.deadline_field = cls.env["ir.model.fields"]._get("crm.lead", "date_deadline")

    def date_workflow(self, days=2, direction="after", hour=9, name="Date workflow", active=True, **trigger):
        return self.create_workflow(
            [{
                "kind": "date",
                "date_field_id": self.deadline_field.id,
                "date_offset": days,
                "date_direction": direction,
                "date_hour": hour,
                "actions": [{"kind": "note", "note_body": "date reached"}],
                **trigger,
            }],
            name=name,
            active=active,
            team_ids=[Command.set(self.team_a.ids)],
        )

    def test_fires_once_at_the_hour_of_the_occurrence(self):
        with freeze_time("2026-03-01 08:00"):
            workflow = self.date_workflow(days=2, hour=9)
            lead = self.create_leads(date_deadline=date(2026, 3, 10))
        self.scan_at("2026-03-01 08:00")  # first scan: the window starts now
        self.scan_at("2026-03-12 08:59")  # occurrence: March 12 at 9:00
        self.assertFalse(self.runs(workflow))
        self.scan_at("2026-03-12 09:30")
        run = self.runs(workflow)
        self.assertEqual((run.res_id, run.occurrence, run.state), (lead.id, date(2026, 3, 12), "done"))
        self.scan_at("2026-03-13 10:00")
        self.assertEqual(len(self.runs(workflow)), 1)

    def test_the_database_keeps_one_run_per_record_and_occurrence(self):
        """The partial unique index of the runs: a second run of an occurrence is refused,
        while the runs of other triggers, which have no occurrence, are not concerned."""
        workflow = self.date_workflow()
        lead = self.create_leads()
        Run = self.env["workflow.automation.run"]
        action = workflow.trigger_ids.action_ids
        vals_list = Run._prepare_vals_list(action, lead, self.salesman, "done")
        Run._insert(vals_list + vals_list)  # no occurrence: a trigger fired twice
        occurrence = [dict(vals, occurrence=date(2026, 3, 12)) for vals in vals_list]
        Run._insert(occurrence)
        with self.assertRaises(psycopg2.errors.UniqueViolation), self.env.cr.savepoint(), mute_logger("odoo.sql_db"):
            Run._insert(occurrence)

    def test_days_before_the_date(self):
        with freeze_time("2026-03-01 08:00"):
            workflow = self.date_workflow(days=2, direction="before", hour=0)
            lead = self.create_leads(date_deadline=date(2026, 3, 10))
            self.scan_at("2026-03-01 08:00")
        self.scan_at("2026-03-08 00:30")
        self.assertEqual(self.runs(workflow).occurrence, date(2026, 3, 8))
        self.assertEqual(self.runs(workflow).res_id, lead.id)

    def test_a_new_trigger_ignores_past_occurrences_unless_catching_up(self):
        self.create_leads(date_deadline=date(2020, 1, 1))
        with freeze_time("2026-03-01 08:00"):
            ignoring = self.date_workflow(name="Ignoring")
            catching_up = self.date_workflow(name="Catching up", date_catch_up=True)
        self.scan_at("2026-03-01 10:00")
        self.assertFalse(self.runs(ignoring))
        self.assertEqual(self.runs(catching_up).occurrence, date(2020, 1, 3))
        self.assertFalse(catching_up.trigger_ids.date_catch_up, "a catch-up happens once")

    def test_scanning_a_window_twice_enqueues_nothing_twice(self):
        with freeze_time("2026-03-01 08:00"):
            workflow = self.date_workflow(days=0, hour=9)
            self.create_leads(2, date_deadline=date(2026, 3, 5))
        self.scan_at("2026-03-01 08:00")
        self.scan_at("2026-03-05 12:00")
        workflow.trigger_ids.date_scanned_until = datetime(2026, 3, 1)  # as if the cron ran twice
        self.scan_at("2026-03-05 12:00")
        self.assertEqual(len(self.runs(workflow)), 2)

    def test_scope_and_condition_apply(self):
        with freeze_time("2026-03-01 08:00"):
            workflow = self.date_workflow(days=0, filter_domain="[('expected_revenue', '>', 100)]")
            big = self.create_leads(date_deadline=date(2026, 3, 5), expected_revenue=500)
            self.create_leads(date_deadline=date(2026, 3, 5), expected_revenue=50)
            self.create_leads(date_deadline=date(2026, 3, 5), expected_revenue=500, team=self.team_b)
        self.scan_at("2026-03-01 08:00")
        self.scan_at("2026-03-05 12:00")
        self.assertEqual(self.runs(workflow).res_id, big.id)

    def test_yearly_fires_on_every_anniversary(self):
        with freeze_time("2026-03-01 08:00"):
            workflow = self.date_workflow(days=0, hour=9, date_yearly=True)
            renewal = self.create_leads(date_deadline=date(2024, 3, 10))
            leap = self.create_leads(date_deadline=date(2024, 2, 29))
        self.scan_at("2026-03-01 08:00")
        self.scan_at("2026-03-10 10:00")
        self.assertEqual(self.runs(workflow).mapped("occurrence"), [date(2026, 3, 10)])
        self.scan_at("2027-02-28 10:00")
        self.assertEqual(self.runs(workflow).filtered(lambda r: r.res_id == leap.id).occurrence, date(2027, 2, 28))
        self.scan_at("2027-03-10 10:00")
        self.assertEqual(
            sorted(self.runs(workflow).filtered(lambda r: r.res_id == renewal.id).mapped("occurrence")),
            [date(2026, 3, 10), date(2027, 3, 10)],
        )

    def test_yearly_first_time_only_fires_on_the_first_anniversary(self):
        with freeze_time("2026-03-01 08:00"):
            workflow = self.date_workflow(days=0, hour=9, date_yearly=True, frequency="first_time")
            lead = self.create_leads(date_deadline=date(2024, 3, 10))
        self.scan_at("2026-03-01 08:00")
        self.scan_at("2026-03-10 10:00")
        self.scan_at("2027-03-10 10:00")
        run = self.runs(workflow)
        self.assertEqual((run.res_id, run.occurrence), (lead.id, date(2026, 3, 10)))

    def test_a_field_that_is_not_a_date_is_refused(self):
        name_field = self.env["ir.model.fields"]._get("crm.lead", "name")
        with self.assertRaisesRegex(ValidationError, "field “Date field”: choose a date or date and time field"):
            self.date_workflow(date_field_id=name_field.id, active=False)

    def test_negative_days_and_wrong_hour_are_refused(self):
        with self.assertRaisesRegex(ValidationError, "field “Days”: the number of days cannot be negative"):
            self.date_workflow(days=-1, active=False)
        with self.assertRaisesRegex(ValidationError, "field “At hour”: the hour must be between 0 and 23"):
            self.date_workflow(hour=24, active=False)


@tagged("post_install", "-at_install")
class TestInactivityTriggers(WorkflowAutomationCase):
    def stale_workflow(self, **trigger):
        return self.create_workflow(
            [{
                "kind": "inactive",
                "stage_id": self.stage_proposition.id,
                "inactive_days": 14,
                "actions": [{"kind": "note", "note_body": "stale deal"}],
                **trigger,
            }],
            team_ids=[Command.set(self.team_a.ids)],
        )

    def last_changed(self, leads, moment):
        self.env.flush_all()
        self.env.cr.execute("UPDATE crm_lead SET write_date = %s WHERE id IN %s", [moment, tuple(leads.ids)])
        leads.invalidate_recordset(["write_date"])

    def test_stale_deal_fires_once_per_period_of_inactivity(self):
        workflow = self.stale_workflow()
        stale = self.create_leads(stage=self.stage_proposition)
        elsewhere = self.create_leads(stage=self.stage_qualified)
        self.last_changed(stale | elsewhere, datetime(2026, 3, 1, 10, 0))
        self.scan_at("2026-03-01 12:00")  # first scan: the window starts now
        self.scan_at("2026-03-15 09:00")
        self.assertFalse(self.runs(workflow), "13 days and 23 hours are not 14 days")
        self.scan_at("2026-03-15 11:00")
        self.assertEqual(self.runs(workflow).res_id, stale.id)
        self.scan_at("2026-03-20 11:00")
        self.assertEqual(len(self.runs(workflow)), 1, "once per period of inactivity")
        self.last_changed(stale, datetime(2026, 3, 20, 11, 0))  # a new period starts
        self.scan_at("2026-04-04 12:00")
        self.assertEqual(len(self.runs(workflow)), 2)
        self.assertEqual(self.runs(workflow)[0].occurrence, date(2026, 3, 20))

    def test_inactivity_needs_a_stage_and_days(self):
        with self.assertRaisesRegex(ValidationError, "field “To stage”: choose the stage"):
            self.stale_workflow(stage_id=False)
        with self.assertRaisesRegex(ValidationError, "field “Days without change”: count at least one day"):
            self.stale_workflow(inactive_days=0)


@tagged("post_install", "-at_install")
class TestScanIsolation(WorkflowAutomationCase):
    """One trigger whose dates cannot be computed never stops the others: whatever the data
    (written before values were bounded at save, or extreme field values), in a Tokyo company."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company.partner_id.tz = "Asia/Tokyo"
        cls.deadline_field = cls.model_field("date_deadline")

    def assert_others_go_on(self, bad_trigger, break_it):
        """Scan a workflow with ``bad_trigger`` (values), broken by ``break_it(trigger)``, beside a
        good date trigger due in the same window: the good one fires, the bad one says why."""
        with freeze_time("2026-12-30 12:00"):
            bad = self.create_workflow(
                [{**bad_trigger, "actions": [{"kind": "note", "note_body": "bad"}]}],
                name="Bad dates", team_ids=[Command.set(self.team_a.ids)],
            )
            good = self.create_workflow(
                [{
                    "kind": "date", "date_field_id": self.deadline_field.id, "date_offset": 0, "date_hour": 9,
                    "actions": [{"kind": "note", "note_body": "good"}],
                }],
                name="Good dates", team_ids=[Command.set(self.team_a.ids)],
            )
            lead = self.create_leads(date_deadline=date(2026, 12, 31))
        self.scan_at("2026-12-30 12:00")  # first scan: the windows start now
        bad.message_subscribe(partner_ids=self.sales_manager.partner_id.ids)
        break_it(bad.trigger_ids)
        self.env.invalidate_all()

        self.scan_at("2026-12-31 12:00")  # December 31 at 9:00 in Tokyo is in the window
        self.assertEqual((self.runs(good).res_id, self.runs(good).state), (lead.id, "done"))
        trigger = bad.trigger_ids
        self.assertTrue(trigger.scan_error)
        self.assertEqual(trigger.date_scanned_until, datetime(2026, 12, 30, 12, 0), "its window is kept")
        notice = self.scan_notices(trigger)
        self.assertEqual(len(notice), 1)
        self.assertIn(self.sales_manager.partner_id, notice.notified_partner_ids)
        self.assertIn(trigger.display_name, notice.body)

        self.scan_at("2026-12-31 13:00")
        self.assertEqual(len(self.scan_notices(trigger)), 1, "the followers are told once, not every hour")
        return trigger

    @staticmethod
    def scan_notices(trigger):
        error = escape(trigger.scan_error)
        return messages_containing(trigger.workflow_id, error)

    def set_column(self, trigger, column, value):
        """Write what the form would refuse today, as data saved before the bound was."""
        self.env.flush_all()
        self.env.cr.execute(f"UPDATE workflow_automation_trigger SET {column} = %s WHERE id = %s", [value, trigger.id])

    def test_a_yearly_datetime_at_the_end_of_time(self):
        conversion = self.model_field("date_conversion")

        def year_9999(_trigger):
            self.create_leads(date_conversion=datetime(9999, 12, 31, 23, 0))

        trigger = self.assert_others_go_on(
            {"kind": "date", "date_field_id": conversion.id, "date_yearly": True, "date_offset": 0}, year_9999
        )
        self.assertFalse(self.runs(trigger.workflow_id))

    def test_an_offset_of_five_million_days(self):
        self.assert_others_go_on(
            {"kind": "date", "date_field_id": self.deadline_field.id, "date_offset": 1, "date_direction": "before"},
            lambda trigger: self.set_column(trigger, "date_offset", 5_000_000),
        )

    def test_an_inactivity_of_two_billion_days(self):
        self.assert_others_go_on(
            {"kind": "inactive", "stage_id": self.stage_new.id, "inactive_days": 14},
            lambda trigger: self.set_column(trigger, "inactive_days", 2_000_000_000),
        )

    def test_a_scan_that_works_again_clears_the_error(self):
        trigger = self.assert_others_go_on(
            {"kind": "inactive", "stage_id": self.stage_new.id, "inactive_days": 14},
            lambda trigger: self.set_column(trigger, "inactive_days", 2_000_000_000),
        )
        self.set_column(trigger, "inactive_days", 14)
        trigger.invalidate_recordset()
        self.scan_at("2026-12-31 14:00")
        self.assertFalse(trigger.scan_error)
        self.assertEqual(trigger.date_scanned_until, datetime(2026, 12, 31, 14, 0))
