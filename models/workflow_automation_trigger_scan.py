"""Date and inactivity triggers (DESIGN.md principle 7): found by an hourly scan of the
records whose occurrence fell since the last scan, by a search on an indexed date range,
never by a loop over all records."""

import calendar
import logging
from datetime import date as py_date
from datetime import datetime as py_datetime
from datetime import time as py_time
from datetime import timedelta

import psycopg2
import pytz
from psycopg2.extensions import ISOLATION_LEVEL_AUTOCOMMIT

from odoo import _, api, fields, models, sql_db
from odoo.osv import expression
from odoo.service.model import PG_CONCURRENCY_EXCEPTIONS_TO_RETRY
from odoo.tools import SQL, sql

from .workflow_automation_trigger import SCANNED_KINDS

_logger = logging.getLogger(__name__)


def _same_day_in_year(day, year):
    """``day`` moved to ``year``; February 29 becomes the 28th in other years."""
    if (day.month, day.day) == (2, 29) and not calendar.isleap(year):
        return py_date(year, 2, 28)
    return day.replace(year=year)


class WorkflowAutomationTrigger(models.Model):
    _inherit = "workflow.automation.trigger"

    @api.model_create_multi
    def create(self, vals_list):
        triggers = super().create(vals_list)
        triggers._ensure_scan_index()
        return triggers

    def write(self, vals):
        result = super().write(vals)
        if {"kind", "date_field_id"} & set(vals):
            self._ensure_scan_index()
        return result

    def _ensure_scan_index(self):
        """Scans search a date range: index its column, as ``index=True`` would.

        A plain ``CREATE INDEX`` would lock the table against writes until the admin's
        transaction ends: the index is built concurrently, once that transaction is committed.
        """
        indexes = set()
        for trigger in self.filtered(lambda t: t.kind in SCANNED_KINDS):
            column = "write_date" if trigger.kind == "inactive" else trigger.date_field_id.name
            table = self.env[trigger.target]._table
            if column and not sql.index_exists(self.env.cr, sql.make_index_name(table, column)):
                indexes.add((table, column))
        if indexes:
            dbname = self.env.cr.dbname
            self.env.cr.postcommit.add(lambda: _create_indexes_concurrently(dbname, sorted(indexes)))

    @api.model
    def _cron_scan_date_triggers(self):
        """Fire the date and inactivity triggers whose occurrences fell since their last scan."""
        now = fields.Datetime.now()
        triggers = self.sudo().search([("kind", "in", SCANNED_KINDS), ("workflow_id.active", "=", True)])
        for trigger in triggers:
            trigger._scan_safely(now)

    def _scan_safely(self, now):
        """Scan in a savepoint: a trigger that fails (a date out of range, an absurd offset)
        keeps its window for the next scan, says why, and never stops the other triggers."""
        self.ensure_one()
        try:
            with self.env["workflow.automation.run"]._savepoint():
                self._scan(now)
        except PG_CONCURRENCY_EXCEPTIONS_TO_RETRY:
            raise  # not the trigger's fault: the cron tries again
        except Exception as error:  # noqa: BLE001 - whatever the data, the other triggers go on
            _logger.warning("Workflow automation: the scan of trigger %s failed", self.id, exc_info=True)
            self._record_scan_failure(str(error) or error.__class__.__name__)
        else:
            if self.scan_error:
                self.scan_error = False

    def _record_scan_failure(self, error):
        """Keep the error on the trigger; tell the workflow's followers when it first appears."""
        if self.scan_error == error:
            return  # already told: the hourly scan does not repeat itself every hour
        self.scan_error = error
        self.workflow_id.message_post(
            body=_(
                "The trigger “%(trigger)s” could not be scanned for its dates, and fires on no record "
                "until this is fixed (the other triggers go on): %(error)s",
                trigger=self.display_name, error=error,
            ),
            subtype_xmlid="mail.mt_comment",
        )

    def _scan(self, now):
        """Fire on the records whose occurrence is in the window since the last scan.

        The window runs from the last scan (or from now for a new trigger, unless it catches
        up once) to ``now``; the records are found by a search on a date range.
        """
        self.ensure_one()
        start = self.date_scanned_until or (py_datetime(1970, 1, 1) if self.date_catch_up else now)
        self.write({"date_scanned_until": now, "date_catch_up": False})
        if start >= now:
            return
        if self.kind == "inactive":
            records, occurrences = self._inactive_occurrences(start, now)
        else:
            records, occurrences = self._date_occurrences(start, now)
        self._fire_occurrences(records, occurrences)

    def _inactive_occurrences(self, start, now):
        """Records unchanged for the trigger's days in its stage; one occurrence per last change."""
        quiet = timedelta(days=self.inactive_days)
        stage = self._get_stages()[1]
        records = self._scan_search([
            ("write_date", ">", start - quiet), ("write_date", "<=", now - quiet), ("stage_id", "=", stage.id),
        ])
        return records, {record.id: record.write_date.date() for record in records}

    def _date_occurrences(self, start, now):
        """Records whose date ± days, at the hour in the company's timezone, is in the window."""
        tz = pytz.timezone(self.workflow_id.company_id.partner_id.tz or "UTC")
        shift = timedelta(days=self.date_offset if self.date_direction == "after" else -self.date_offset)
        if self.date_yearly:  # a catch-up goes back one year at most: one occurrence per record
            start = max(start, now - timedelta(days=366))
        # occurrence at day D ⇔ field date is D - shift; widen by a day, then check exactly
        first_day = pytz.utc.localize(start).astimezone(tz).date() - shift - timedelta(days=1)
        last_day = pytz.utc.localize(now).astimezone(tz).date() - shift + timedelta(days=1)
        if self.date_yearly:
            records = self._anniversary_candidates(first_day, last_day)
        else:
            records = self._date_candidates(first_day, last_day)
        occurrences = {}
        for record in records:
            for day in self._occurrence_days(self._record_day(record, tz), shift, start, now):
                moment = tz.localize(py_datetime.combine(day, py_time(self.date_hour))).astimezone(pytz.utc)
                if start < moment.replace(tzinfo=None) <= now:
                    occurrences[record.id] = day
                    break
        return records.browse(list(occurrences)), occurrences

    def _occurrence_days(self, day, shift, start, now):
        """The occurrence days of a record's date that may fall in the window."""
        if not self.date_yearly:
            return [day + shift]
        years = range(max(day.year, start.year - 1), now.year + 2)
        return [_same_day_in_year(day, year) + shift for year in years]

    def _anniversary_candidates(self, first_day, last_day):
        """Records whose date has the month and day of one of the days, in any year."""
        field_name = self.date_field_id.name
        month_days = set()
        for index in range((last_day - first_day).days + 1):
            day = first_day + timedelta(days=index)
            month_days.add((day.month, day.day))
            if (day.month, day.day) == (2, 28) and not calendar.isleap(day.year):
                month_days.add((2, 29))  # born on February 29: celebrated on the 28th
        domain = expression.OR([
            [(f"{field_name}.month_number", "=", month), (f"{field_name}.day_of_month", "=", day)]
            for month, day in sorted(month_days)
        ])
        return self._scan_search(domain)

    def _date_candidates(self, first_day, last_day):
        field_name = self.date_field_id.name
        if self.date_field_id.ttype == "datetime":  # whole days, already a day wider for the timezones
            first_day = py_datetime.combine(first_day, py_time.min)
            last_day = py_datetime.combine(last_day, py_time.max)
        return self._scan_search([(field_name, ">=", first_day), (field_name, "<=", last_day)])

    def _scan_search(self, domain):
        """Search ``domain`` among the records of the workflow's scope and company."""
        Model = self.env[self.target].sudo().with_context(active_test=False)
        workflow = self.workflow_id.with_context(active_test=False)  # an archived pipeline is still in the scope
        scope = workflow._scope()
        domain = [*domain, ("company_id", "in", [False, self.workflow_id.company_id.id])]
        if scope:
            domain.append((Model._workflow_scope_field or "id", "in", scope.ids))
        return Model.search(domain)

    def _record_day(self, record, tz):
        value = record[self.date_field_id.name]
        if self.date_field_id.ttype == "datetime":
            return pytz.utc.localize(value).astimezone(tz).date()
        return value

    def _fire_occurrences(self, records, occurrences):
        """Run the actions once per record and occurrence, whatever the number of scans."""
        Run = self.env["workflow.automation.run"].sudo()
        done = Run.search([("trigger_id", "=", self.id), ("res_id", "in", records.ids), ("occurrence", "!=", False)])
        already = {(run.res_id, run.occurrence) for run in done}
        records = records.filtered(lambda r: (r.id, occurrences[r.id]) not in already)
        if self.frequency == "first_time" and records:
            fired = Run._fired_before(records, self.ids)
            records = records.filtered(lambda r: (self.id, r.id) not in fired)
        records, run_vals = self._match_condition(records, self.env.user) if records else (records, [])
        for vals in run_vals:
            vals["occurrence"] = occurrences[vals["res_id"]]
        Run._insert(run_vals)._announce()
        if records:
            self._fire(records, self.env.user, occurrences)


def _create_indexes_concurrently(dbname, indexes):
    """Create the ``(table, column)`` indexes that do not exist yet, without locking out writes.

    ``CREATE INDEX CONCURRENTLY`` cannot run in a transaction: it gets a connection of its own,
    in autocommit. A build that fails leaves an invalid index, dropped so that the next save
    builds it again.
    """
    with sql_db.db_connect(dbname).cursor() as cr:
        cr.connection.set_isolation_level(ISOLATION_LEVEL_AUTOCOMMIT)
        for table, column in indexes:
            name = sql.make_index_name(table, column)
            try:
                cr.execute(SQL(
                    "CREATE INDEX CONCURRENTLY IF NOT EXISTS %s ON %s (%s)",
                    SQL.identifier(name), SQL.identifier(table), SQL.identifier(column),
                ))
            except psycopg2.Error:
                _logger.exception("Workflow automation: the index %s could not be built", name)
                cr.execute(SQL("DROP INDEX CONCURRENTLY IF EXISTS %s", SQL.identifier(name)))
