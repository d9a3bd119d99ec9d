import calendar
from datetime import date as py_date
from datetime import datetime as py_datetime
from datetime import time as py_time
from datetime import timedelta

import pytz

from odoo import _, api, fields, models
from odoo.osv import expression
from odoo.tools import sql
from odoo.tools.safe_eval import datetime, dateutil, safe_eval, time

from .workflow_automation import ALL_TARGETS, TriggerSpec, kind_selection, kinds_of_target
from .workflow_automation_mixin import DEPTH_CONTEXT_KEY

# kind -> (label, the targets it is offered for)
TRIGGER_KINDS = {
    "create": ("Record created", ALL_TARGETS),
    "stage_reached": ("Stage reached", ALL_TARGETS),
    "stage_changed": ("Stage goes from … to …", ALL_TARGETS),
    "won": ("Opportunity won", ("crm.lead",)),
    "lost": ("Opportunity lost", ("crm.lead",)),
    "restored": ("Opportunity restored", ("crm.lead",)),
    "project_closed": ("Project closed", ("project.project",)),
    "date": ("Date reached", ALL_TARGETS),
    "inactive": ("No change for N days in a stage", ALL_TARGETS),
    "activity_created": ("Activity created", ALL_TARGETS),
    "activity_done": ("Activity done", ALL_TARGETS),
}
STAGE_KINDS = ("stage_reached", "stage_changed")
# Kinds found by the hourly scan rather than by a write
SCANNED_KINDS = ("date", "inactive")
# Kinds fired by an activity of the record, created or marked done
ACTIVITY_KINDS = ("activity_created", "activity_done")


def _same_day_in_year(day, year):
    """``day`` moved to ``year``; February 29 becomes the 28th in other years."""
    if (day.month, day.day) == (2, 29) and not calendar.isleap(year):
        return py_date(year, 2, 28)
    return day.replace(year=year)


class WorkflowAutomationTrigger(models.Model):
    _name = "workflow.automation.trigger"
    _inherit = ["workflow.automation.component"]
    _description = "Workflow Automation Trigger"
    _order = "workflow_sequence, workflow_id, sequence, id"

    workflow_id = fields.Many2one("workflow.automation", required=True, ondelete="cascade", index=True)
    workflow_sequence = fields.Integer(related="workflow_id.sequence", store=True, string="Workflow sequence")
    target = fields.Selection(related="workflow_id.target")
    available_kinds = fields.Json(string="Kinds offered", compute="_compute_available_kinds")
    company_id = fields.Many2one(related="workflow_id.company_id", store=True)
    sequence = fields.Integer(default=10)
    kind = fields.Selection(
        kind_selection(TRIGGER_KINDS),
        string="When",
        required=True,
        default="stage_reached",
    )
    # Opportunities move through crm.stage, projects through project.project.stage.
    from_stage_id = fields.Many2one(
        "crm.stage", string="From stage", ondelete="restrict", help="Leave empty for any stage."
    )
    stage_id = fields.Many2one("crm.stage", string="To stage", ondelete="restrict")
    from_project_stage_id = fields.Many2one(
        "project.project.stage", string="From project stage", ondelete="restrict",
        help="Leave empty for any stage.",
    )
    project_stage_id = fields.Many2one("project.project.stage", string="To project stage", ondelete="restrict")
    # "N days before/after the date in field F, at an hour of the day"
    date_field_id = fields.Many2one(
        "ir.model.fields",
        string="Date field",
        ondelete="cascade",
        domain="[('model', '=', target), ('ttype', 'in', ('date', 'datetime')), ('store', '=', True)]",
    )
    date_offset = fields.Integer(string="Days", help="How many days before or after the date.")
    date_direction = fields.Selection(
        [("after", "after"), ("before", "before")], string="Before or after", default="after", required=True
    )
    date_hour = fields.Integer(string="At hour", default=9, help="Hour of the day, in the company's timezone.")
    date_yearly = fields.Boolean(string="Every year", help="Fire again on every anniversary of the date.")
    date_catch_up = fields.Boolean(
        string="Catch up once",
        help="On the next scan, also fire for occurrences already past (once); "
        "otherwise a new trigger only fires for occurrences from now on.",
    )
    inactive_days = fields.Integer(
        string="Days without change", default=14, help="A stale deal: no change for this many days in the stage."
    )
    activity_type_id = fields.Many2one(
        "mail.activity.type",
        string="Activity type",
        ondelete="restrict",
        domain="['|', ('res_model', '=', False), ('res_model', '=', target)]",
        help="Only activities of this type fire the trigger. Leave empty for any type.",
    )
    date_scanned_until = fields.Datetime(readonly=True, copy=False, help="End of the last scanned window.")
    frequency = fields.Selection(
        [("every_time", "Every time"), ("first_time", "Only the first time for each record")],
        string="How often",
        default="every_time",
        required=True,
        help="Only the first time: once this trigger has fired on a record, it never fires on it again "
        "(a deal that goes back and forth between two stages is welcomed once).",
    )
    filter_domain = fields.Char(
        string="Condition",
        default="[]",
        help="Only records matching this domain fire the trigger.",
    )
    action_ids = fields.One2many("workflow.automation.action", "trigger_id", string="Actions", copy=True)

    @api.depends(
        "kind", "stage_id", "from_stage_id", "project_stage_id", "from_project_stage_id", "activity_type_id"
    )
    def _compute_display_name(self):
        kinds = dict(self._fields["kind"]._description_selection(self.env))
        for trigger in self:
            from_stage, to_stage = trigger._get_stages()
            if trigger.kind == "stage_changed":
                trigger.display_name = _(
                    "Stage goes from %(from)s to %(to)s",
                    **{"from": from_stage.name or _("any stage"), "to": to_stage.name or _("any stage")},
                )
            elif trigger.kind == "date":
                trigger.display_name = _(
                    "%(days)s day(s) %(direction)s %(field)s",
                    days=trigger.date_offset,
                    direction=dict(trigger._fields["date_direction"]._description_selection(self.env)).get(
                        trigger.date_direction
                    ),
                    field=trigger.date_field_id.field_description or "?",
                )
            elif trigger.kind == "stage_reached":
                trigger.display_name = _("Stage reached: %s", to_stage.name or "?")
            elif trigger.kind == "inactive":
                trigger.display_name = _(
                    "No change for %(days)s days in %(stage)s", days=trigger.inactive_days, stage=to_stage.name or "?"
                )
            elif trigger.kind in ACTIVITY_KINDS:
                trigger.display_name = _(
                    "%(event)s: %(type)s",
                    event=kinds[trigger.kind],
                    type=trigger.activity_type_id.name or _("any type"),
                )
            else:
                trigger.display_name = kinds.get(trigger.kind, "")

    @api.depends("target")
    def _compute_available_kinds(self):
        for trigger in self:
            trigger.available_kinds = kinds_of_target(TRIGGER_KINDS, trigger.target)

    def _fields_editable_while_on(self):
        return {"date_scanned_until", "date_catch_up"}

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
        """Scans search a date range: index its column, as ``index=True`` would."""
        for trigger in self.filtered(lambda t: t.kind in SCANNED_KINDS):
            column = "write_date" if trigger.kind == "inactive" else trigger.date_field_id.name
            table = self.env[trigger.target]._table
            if column:
                sql.create_index(self.env.cr, sql.make_index_name(table, column), table, [f'"{column}"'])

    def _get_stages(self):
        """Return (from stage, to stage) in the stage model of the workflow's target."""
        self.ensure_one()
        if self.target == "project.project":
            return self.from_project_stage_id, self.project_stage_id
        return self.from_stage_id, self.stage_id

    def _get_spec(self, rank, test_ids):
        """The trigger as the engine's index holds it; ``rank`` orders triggers across events.

        ``test_ids`` are the workflow's test records: the only ones a switched-off workflow
        fires on. A test project is in the scope of its workflow, which may list projects.
        """
        self.ensure_one()
        workflow = self.workflow_id
        from_stage, to_stage = self._get_stages()
        scope = workflow.team_ids if workflow.target == "crm.lead" else workflow.project_ids
        chosen = workflow.triggered_by == "chosen"
        scope_ids = frozenset(scope.ids) or None
        if scope_ids and not self.env[workflow.target]._workflow_scope_field:
            scope_ids |= test_ids
        return TriggerSpec(
            id=self.id,
            rank=rank,
            workflow_id=workflow.id,
            company_id=workflow.company_id.id,
            scope_ids=scope_ids,
            from_stage_id=from_stage.id if self.kind == "stage_changed" else False,
            to_stage_id=to_stage.id if self.kind in STAGE_KINDS else False,
            activity_type_id=self.activity_type_id.id if self.kind in ACTIVITY_KINDS else False,
            user_ids=frozenset(workflow.trigger_user_ids.ids) if chosen else None,
            group_ids=frozenset(workflow.trigger_group_ids.ids) if chosen else None,
            first_time_only=self.frequency == "first_time",
            on_import=workflow.run_on_import,
            only_ids=None if workflow.active else test_ids,
        )

    # ------------------------------------------------------------------
    # Validation: refused at save, naming the workflow and the field
    # ------------------------------------------------------------------

    @api.constrains("kind", "workflow_id")
    def _check_kind(self):
        for trigger in self:
            if trigger.workflow_id.target not in TRIGGER_KINDS[trigger.kind][1]:
                trigger._raise_invalid("kind", _("this trigger is not available for this target."))

    @api.constrains("kind", "stage_id", "from_stage_id", "project_stage_id", "from_project_stage_id", "inactive_days")
    def _check_stages(self):
        for trigger in self.filtered(lambda t: t.kind in (*STAGE_KINDS, "inactive")):
            from_stage, to_stage = trigger._get_stages()
            to_field = "project_stage_id" if trigger.target == "project.project" else "stage_id"
            if trigger.kind in ("stage_reached", "inactive"):
                trigger._require(to_field, _("choose the stage that fires the trigger."))
            if trigger.kind == "stage_changed" and from_stage and from_stage == to_stage:
                trigger._raise_invalid(to_field, _("the two stages must differ."))
            if trigger.kind == "inactive" and trigger.inactive_days < 1:
                trigger._raise_invalid("inactive_days", _("count at least one day."))
            if trigger.target == "crm.lead":
                trigger._check_stage_in_scope("from_stage_id")
                trigger._check_stage_in_scope("stage_id")

    @api.constrains("kind", "date_field_id", "date_offset", "date_hour")
    def _check_date_trigger(self):
        for trigger in self.filtered(lambda t: t.kind == "date"):
            field = trigger.date_field_id
            trigger._require("date_field_id", _("choose a date or date and time field of the target."))
            if field and (field.model != trigger.target or field.ttype not in ("date", "datetime")):
                trigger._raise_invalid("date_field_id", _("choose a date or date and time field of the target."))
            if trigger.date_offset < 0:
                trigger._raise_invalid("date_offset", _("the number of days cannot be negative."))
            if not 0 <= trigger.date_hour <= 23:
                trigger._raise_invalid("date_hour", _("the hour must be between 0 and 23."))

    @api.constrains("kind", "activity_type_id", "workflow_id")
    def _check_activity_type(self):
        for trigger in self.filtered(lambda t: t.kind in ACTIVITY_KINDS):
            if trigger.activity_type_id.res_model not in (False, trigger.target):
                trigger._raise_invalid("activity_type_id", _("this activity type is made for another model."))

    @api.constrains("filter_domain", "workflow_id")
    def _check_filter_domain(self):
        for trigger in self:
            try:
                trigger._get_condition_domain()
            except Exception as error:  # noqa: BLE001 - any parse or field error is a user error
                trigger._raise_invalid(
                    "filter_domain", _("the condition is not a valid domain (%s).", error)
                )

    # ------------------------------------------------------------------
    # Firing
    # ------------------------------------------------------------------

    def _get_condition_domain(self):
        """Parse the condition and check it against the target model (raises if invalid)."""
        self.ensure_one()
        domain = safe_eval(self.filter_domain or "[]", self._get_eval_context())
        if not isinstance(domain, (list, tuple)):
            raise ValueError(_("a domain is a list of conditions"))
        self.env[self.workflow_id.target]._search(domain)  # validates field names, runs no query
        return domain

    def _get_eval_context(self):
        return {
            "datetime": datetime,
            "dateutil": dateutil,
            "time": time,
            "uid": self.env.uid,
            "user": self.env.user,
            "context_today": lambda: fields.Date.context_today(self),
        }

    def _filter_condition(self, records):
        """Return the records matching the condition, in one query for the whole batch."""
        if not self.filter_domain or self.filter_domain.strip() == "[]":
            return records
        domain = self._get_condition_domain()
        return records.with_context(active_test=False).search([("id", "in", records.ids), *domain])

    def _execute(self, records, user):
        """Run the actions in order on ``records``; return the values of their runs.

        A record on which an action failed is left out of the following actions.
        """
        self.ensure_one()
        Run = self.env["workflow.automation.run"]
        run_vals = []
        failed = records.browse()
        for action in self.action_ids:
            action_run_vals, errors = self._run_action(action, records, user)
            run_vals += action_run_vals
            run_vals += [
                Run._prepare_vals(action, record, user, "skipped", _("An earlier action of this trigger failed."))
                for record in failed
            ]
            newly_failed = records.browse(list(errors))
            records -= newly_failed
            failed |= newly_failed
        return run_vals

    def _run_action(self, action, records, user):
        """Execute ``action`` now, or schedule it when it has a delay or leaves the database.

        Return the values of its runs and ``{record id: error}`` for the records it failed on.
        """
        Run = self.env["workflow.automation.run"]
        if action._is_queued():
            due = action._due_date(fields.Datetime.now())
            check_stage = bool(action.delay) and self.kind in (*STAGE_KINDS, "inactive") and action.require_same_stage
            return [Run._prepare_scheduled_vals(action, record, user, due, check_stage) for record in records], {}
        errors, notes = action._execute_safely(records) if records else ({}, {})
        return [
            Run._prepare_vals(
                action, record, user, "failed" if record.id in errors else "done",
                errors.get(record.id) or notes.get(record.id),
            )
            for record in records
        ], errors

    def _actors(self, records, depth):
        """``records`` as the actions act on them: elevated rights, in the workflow's company,
        at ``depth`` in a chain of workflows."""
        return records.sudo().with_company(self.company_id).with_context(**{DEPTH_CONTEXT_KEY: depth})

    def _prepare_stopped_run_vals(self, records, user, depth):
        """Runs saying why a chain of workflows triggering each other was cut."""
        self.ensure_one()
        message = _("Stopped: workflows triggered each other %s times in a row.", depth)
        Run = self.env["workflow.automation.run"]
        return [
            Run._prepare_vals(action, record, user, "skipped", message)
            for action in self.action_ids
            for record in records
        ]

    # ------------------------------------------------------------------
    # Date-based triggers (DESIGN.md principle 7)
    # ------------------------------------------------------------------

    @api.model
    def _cron_scan_date_triggers(self):
        """Fire the date and inactivity triggers whose occurrences fell since their last scan."""
        now = fields.Datetime.now()
        triggers = self.sudo().search([("kind", "in", SCANNED_KINDS), ("workflow_id.active", "=", True)])
        for trigger in triggers:
            trigger._scan(now)

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
        scope = self.workflow_id.team_ids if self.target == "crm.lead" else self.workflow_id.project_ids
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
        records = self._filter_condition(records) if records else records
        if not records:
            return
        run_vals = self._execute(self._actors(records, 1), self.env.user)
        for vals in run_vals:
            vals["occurrence"] = occurrences[vals["res_id"]]
        Run.create(run_vals)
