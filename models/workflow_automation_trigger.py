import ast
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
from odoo.tools.safe_eval import datetime, dateutil, safe_eval, time

from .workflow_automation_index import TriggerSpec
from .workflow_automation_kinds import FROM_STAGE, STAGE, TRIGGER_KINDS, codes, kinds_of_target, selection
from .workflow_automation_mixin import CHAIN_CONTEXT_KEY, DEPTH_CONTEXT_KEY, FIELD_CHANGED

_logger = logging.getLogger(__name__)

# What a condition may take from ``user``: plain ids. The record itself would reach the ORM
# (``user.env``, ``user.sudo()``) with the engine's elevated rights: safe_eval cannot stop that.
CONDITION_USER_PATHS = frozenset({"user.id", "user.company_id.id", "user.company_ids.ids", "user.partner_id.id"})

# Kinds found by the hourly scan rather than by a write
SCANNED_KINDS = codes(TRIGGER_KINDS, "scanned")
# The field types "a field changes" watches: those "set a field" sets, and tags
WATCHED_TYPES = ("char", "text", "html", "integer", "float", "monetary", "boolean", "date", "datetime",
                 "selection", "many2one", "many2many")
# ... and those of them it offers a "from" and a "to" value for
FROM_TO_TYPES = ("selection", "many2one", "boolean")
CHECKBOX_VALUES = {"checked": True, "unchecked": False}

# Kinds fired by a write that moves a record to a stage
STAGE_KINDS = tuple(code for code in codes(TRIGGER_KINDS, "in_stage") if code not in SCANNED_KINDS)


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
    _workflow_kinds = TRIGGER_KINDS

    workflow_id = fields.Many2one("workflow.automation", required=True, ondelete="cascade", index=True)
    workflow_sequence = fields.Integer(related="workflow_id.sequence", store=True, string="Workflow sequence")
    target = fields.Selection(related="workflow_id.target")
    available_kinds = fields.Json(string="Kinds offered", compute="_compute_available_kinds")
    company_id = fields.Many2one(related="workflow_id.company_id", store=True)
    sequence = fields.Integer(default=10)
    kind = fields.Selection(
        selection(TRIGGER_KINDS),
        string="When",
        required=True,
        default="stage_reached",
    )
    # Opportunities move through crm.stage, projects through project.project.stage: the
    # stages of the target are in the field of its role whose comodel is the target's stages.
    from_stage_id = fields.Many2one(
        "crm.stage", string="From stage", ondelete="restrict", help="Leave empty for any stage.",
        workflow_role=FROM_STAGE,
    )
    stage_id = fields.Many2one("crm.stage", string="To stage", ondelete="restrict", workflow_role=STAGE)
    from_project_stage_id = fields.Many2one(
        "project.project.stage", string="From project stage", ondelete="restrict",
        help="Leave empty for any stage.", workflow_role=FROM_STAGE,
    )
    project_stage_id = fields.Many2one(
        "project.project.stage", string="To project stage", ondelete="restrict", workflow_role=STAGE
    )
    stage_field = fields.Char(string="Stage field", compute="_compute_stage_field")
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
    # "A field changes": the fields, and for one selection, many2one or checkbox, from and to what
    changed_field_ids = fields.Many2many(
        "ir.model.fields",
        "workflow_automation_trigger_changed_field_rel",
        "trigger_id",
        "field_id",
        string="Fields to watch",
        domain="[('id', 'in', changed_field_allowed_ids)]",
        help="Fires when a change of the record sets a new value in one of these fields.",
    )
    changed_field_allowed_ids = fields.Many2many(
        "ir.model.fields", string="Fields that can be watched", compute="_compute_changed_field_allowed_ids"
    )
    changed_field_type = fields.Char(string="Type of the changed field", compute="_compute_changed_field_type")
    changed_field_comodel_id = fields.Many2one(
        "ir.model", string="Records of the changed field", compute="_compute_changed_field_type"
    )
    changed_from_selection_id = fields.Many2one(
        "ir.model.fields.selection", string="From", ondelete="set null",
        domain="[('field_id', 'in', changed_field_ids)]", help="Leave empty for any value.",
    )
    changed_to_selection_id = fields.Many2one(
        "ir.model.fields.selection", string="To", ondelete="set null",
        domain="[('field_id', 'in', changed_field_ids)]", help="Leave empty for any value.",
    )
    changed_from_ref = fields.Reference(selection="_selection_models", string="From record",
                                        help="Leave empty for any value.")
    changed_to_ref = fields.Reference(selection="_selection_models", string="To record",
                                      help="Leave empty for any value.")
    changed_from_boolean = fields.Selection(
        [("checked", "Ticked"), ("unchecked", "Not ticked")], string="From state", help="Leave empty for any value."
    )
    changed_to_boolean = fields.Selection(
        [("checked", "Ticked"), ("unchecked", "Not ticked")], string="To state", help="Leave empty for any value."
    )
    date_scanned_until = fields.Datetime(readonly=True, copy=False, help="End of the last scanned window.")
    scan_error = fields.Text(
        string="Scan error", readonly=True, copy=False,
        help="Why the last hourly scan of this trigger failed; empty once a scan succeeds.",
    )
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
        "kind", "stage_id", "from_stage_id", "project_stage_id", "from_project_stage_id", "activity_type_id",
        "date_offset", "date_direction", "date_field_id", "inactive_days", "changed_field_ids",
    )
    def _compute_display_name(self):
        kinds = dict(self._fields["kind"]._description_selection(self.env))
        for trigger in self:
            display = trigger.kind and trigger._kind().display
            trigger.display_name = getattr(trigger, display)(kinds) if display else kinds.get(trigger.kind, "")

    def _display_stage_changed(self, kinds):
        from_stage, to_stage = self._get_stages()
        return _(
            "Stage goes from %(from)s to %(to)s",
            **{"from": from_stage.name or _("any stage"), "to": to_stage.name or _("any stage")},
        )

    def _display_date(self, kinds):
        return _(
            "%(days)s day(s) %(direction)s %(field)s",
            days=self.date_offset,
            direction=dict(self._fields["date_direction"]._description_selection(self.env)).get(self.date_direction),
            field=self.date_field_id.field_description or "?",
        )

    def _display_stage_reached(self, kinds):
        return _("Stage reached: %s", self._get_stages()[1].name or "?")

    def _display_inactive(self, kinds):
        return _("No change for %(days)s days in %(stage)s", days=self.inactive_days,
                 stage=self._get_stages()[1].name or "?")

    def _display_field_changed(self, kinds):
        return _("Changes: %s", ", ".join(self.changed_field_ids.mapped("field_description")) or "?")

    def _display_activity(self, kinds):
        return _("%(event)s: %(type)s", event=kinds[self.kind], type=self.activity_type_id.name or _("any type"))

    @api.depends("target")
    def _compute_available_kinds(self):
        for trigger in self:
            trigger.available_kinds = kinds_of_target(TRIGGER_KINDS, trigger.target)

    @api.depends("target")
    def _compute_changed_field_allowed_ids(self):
        IrField = self.env["ir.model.fields"].sudo()
        for trigger in self:
            candidates = IrField.search([
                ("model", "=", trigger.target), ("store", "=", True), ("ttype", "in", WATCHED_TYPES),
            ]) if trigger.target else IrField
            trigger.changed_field_allowed_ids = candidates.filtered(
                lambda field, t=trigger: not t._unwatchable_reason(field)
            )

    @api.onchange("changed_field_ids")
    def _onchange_changed_field_ids(self):
        """"From" and "To" are values of the field they were chosen for."""
        self.update(dict.fromkeys(TRIGGER_KINDS[FIELD_CHANGED].parameters[1:], False))

    @api.depends("changed_field_ids")
    def _compute_changed_field_type(self):
        """The type of the watched field when there is one: "from" and "to" are for one field."""
        for trigger in self:
            field = trigger.changed_field_ids if len(trigger.changed_field_ids) == 1 else None
            trigger.changed_field_type = field and field.ttype
            relation = field and field.ttype == "many2one" and field.relation
            trigger.changed_field_comodel_id = self.env["ir.model"]._get(relation) if relation else False

    @api.model
    def _selection_models(self):
        return self.env["workflow.automation.action"]._selection_models()

    @api.depends("target")
    def _compute_stage_field(self):
        for trigger in self:
            trigger.stage_field = trigger._role_field(STAGE)

    def _fields_editable_while_on(self):
        return {"date_scanned_until", "date_catch_up", "scan_error"}

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

    def _get_stages(self):
        """Return (from stage, to stage) in the stage model of the workflow's target."""
        self.ensure_one()
        # without a target yet (a new workflow in the form): empty stages
        return self[self._role_field(FROM_STAGE) or "from_stage_id"], self[self._role_field(STAGE) or "stage_id"]

    def _get_spec(self, rank, test_ids):
        """The trigger as the engine's index holds it; ``rank`` orders triggers across events.

        ``test_ids`` are the workflow's test records: the only ones a switched-off workflow
        fires on. A test project is in the scope of its workflow, which may list projects.
        """
        self.ensure_one()
        workflow = self.workflow_id
        from_stage, to_stage = self._get_stages()
        scope = workflow._scope()
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
            activity_type_id=self.activity_type_id.id if self._kind().activity else False,
            user_ids=frozenset(workflow.trigger_user_ids.ids) if chosen else None,
            group_ids=frozenset(workflow.trigger_group_ids.ids) if chosen else None,
            first_time_only=self.frequency == "first_time",
            on_import=workflow.run_on_import,
            foldable=self.kind in STAGE_KINDS and self.frequency == "every_time"
            and all(action._is_foldable() for action in self.action_ids),
            condition_fields=self._condition_fields(),
            only_ids=None if workflow.active else test_ids,
            **self._change_spec(),
        )

    def _get_index_events(self):
        """The events under which the trigger index lists this trigger: its kind. A feature
        that reacts to changes of the records adds a pseudo-event of its own for the triggers
        that need it (see the mixin's ``_workflow_event_matches``)."""
        self.ensure_one()
        return [self.kind]

    def _change_spec(self):
        """The fields of the spec of "a field changes": what it watches, from and to what."""
        if self.kind != FIELD_CHANGED:
            return {}
        return {
            "changed_fields": frozenset(self.changed_field_ids.mapped("name")),
            "changed_from": self._change_value("from"),
            "changed_to": self._change_value("to"),
        }

    def _change_value(self, side):
        """The value the watched field changes from or to (``side``) as the mixin compares it; None: any."""
        field_type = self.changed_field_type
        if field_type == "selection":
            return self[f"changed_{side}_selection_id"].value or None
        if field_type == "many2one":
            record = self[f"changed_{side}_ref"]  # a reference field left empty is None
            return record.id if record else None
        if field_type == "boolean":
            return CHECKBOX_VALUES.get(self[f"changed_{side}_boolean"])
        return None

    # ------------------------------------------------------------------
    # Validation: refused at save, naming the workflow and the field
    # ------------------------------------------------------------------

    @api.constrains("kind", "workflow_id")
    def _check_kind(self):
        for trigger in self:
            if not trigger._kind().applies_to(trigger.workflow_id.target):
                trigger._raise_invalid("kind", _("this trigger is not available for this target."))

    @api.constrains("kind", "stage_id", "from_stage_id", "project_stage_id", "from_project_stage_id", "inactive_days")
    def _check_stages(self):
        for trigger in self.filtered(lambda t: t._kind().in_stage):
            from_stage, to_stage = trigger._get_stages()
            from_field, to_field = trigger._role_field(FROM_STAGE), trigger._role_field(STAGE)
            if to_field in trigger._parameter_fields(trigger._kind().required):
                trigger._require(to_field, _("choose the stage that fires the trigger."))
            if trigger.kind == "stage_changed" and from_stage and from_stage == to_stage:
                trigger._raise_invalid(to_field, _("the two stages must differ."))
            if trigger.kind == "inactive" and trigger.inactive_days < 1:
                trigger._raise_invalid("inactive_days", _("count at least one day."))
            if trigger.kind == "inactive":
                trigger._check_span("inactive_days")
            trigger._check_stage_in_scope(from_field)
            trigger._check_stage_in_scope(to_field)

    @api.constrains("kind", "date_field_id", "date_offset", "date_hour")
    def _check_date_trigger(self):
        for trigger in self.filtered(lambda t: t.kind == "date"):
            field = trigger.date_field_id
            trigger._require("date_field_id", _("choose a date or date and time field of the target."))
            if field and (field.model != trigger.target or field.ttype not in ("date", "datetime")):
                trigger._raise_invalid("date_field_id", _("choose a date or date and time field of the target."))
            if trigger.date_offset < 0:
                trigger._raise_invalid("date_offset", _("the number of days cannot be negative."))
            trigger._check_span("date_offset")
            if not 0 <= trigger.date_hour <= 23:
                trigger._raise_invalid("date_hour", _("the hour must be between 0 and 23."))

    @api.constrains("kind", "activity_type_id", "workflow_id")
    def _check_activity_type(self):
        for trigger in self.filtered(lambda t: t._kind().activity):
            if trigger.activity_type_id.res_model not in (False, trigger.target):
                trigger._raise_invalid("activity_type_id", _("this activity type is made for another model."))

    @api.constrains(
        "kind", "changed_field_ids", "changed_from_selection_id", "changed_to_selection_id",
        "changed_from_ref", "changed_to_ref", "changed_from_boolean", "changed_to_boolean",
    )
    def _check_field_changed(self):
        for trigger in self.filtered(lambda t: t.kind == FIELD_CHANGED):
            trigger._require("changed_field_ids", _("choose the fields whose change fires the trigger."))
            for field in trigger.changed_field_ids:
                reason = trigger._unwatchable_reason(field)
                if reason:
                    trigger._raise_invalid("changed_field_ids", reason)
            given = [name for name in trigger._kind().parameters[1:] if trigger[name]]
            if given and trigger.changed_field_type not in FROM_TO_TYPES:
                trigger._raise_invalid(given[0], _(
                    "“From” and “To” apply to one field, of type selection, many2one or checkbox."
                ))
            for side in ("from", "to"):
                choice, ref = trigger[f"changed_{side}_selection_id"], trigger[f"changed_{side}_ref"]
                if choice and choice.field_id != trigger.changed_field_ids:
                    trigger._raise_invalid(f"changed_{side}_selection_id", _("this is a choice of another field."))
                if ref and ref._name != trigger.changed_field_comodel_id.model:
                    trigger._raise_invalid(f"changed_{side}_ref", _("this is not a record of the field's model."))

    def _unwatchable_reason(self, field):
        """Why "a field changes" cannot watch ``field`` (an ``ir.model.fields``), or None."""
        model_field = self.env[self.target]._fields.get(field.name) if self.target else None
        watchable = (
            field.model == self.target and model_field and model_field.store and field.ttype in WATCHED_TYPES
            and not (model_field.compute and model_field.readonly)
            and field.name not in (*models.MAGIC_COLUMNS, "display_name")
        )
        if watchable:
            return None
        return _(
            "the field “%s” cannot be watched: choose a stored field of the workflow's records that a change "
            "sets (not one Odoo computes or maintains).",
            field.field_description,
        )

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
        self._check_condition_user_paths()
        domain = safe_eval(self.filter_domain or "[]", self._get_eval_context())
        if not isinstance(domain, (list, tuple)):
            raise ValueError(_("a domain is a list of conditions"))
        self.env[self.workflow_id.target]._search(domain)  # validates field names, runs no query
        return domain

    def _condition_fields(self):
        """The fields of the target that the condition reads (the first of each path), or None
        when it cannot be told."""
        try:
            domain = self._get_condition_domain()
        except Exception:  # noqa: BLE001 - its runs will say why it fails
            return None
        return frozenset(
            leaf[0].split(".", 1)[0] for leaf in domain if isinstance(leaf, (list, tuple)) and isinstance(leaf[0], str)
        )

    def _check_condition_user_paths(self):
        """Refuse, before evaluating it, a condition using ``user`` other than as a plain id."""
        tree = ast.parse((self.filter_domain or "[]").strip(), mode="eval")
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and node.id == "user":
                while isinstance(parents.get(node), ast.Attribute):
                    node = parents[node]
                if ast.unparse(node) not in CONDITION_USER_PATHS:
                    raise ValueError(self.env._(
                        "“%(expression)s” is not allowed: use uid, or %(allowed)s",
                        expression=ast.unparse(node),
                        allowed=", ".join(sorted(CONDITION_USER_PATHS)),
                    ))

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

    def _match_condition(self, records, user):
        """Return the records matching the condition and the values of the failed runs, for
        all the records, when the condition cannot be evaluated (valid when saved, it may
        raise for another user, or name a field deleted since): the trigger's failure, not
        the user's write nor the other triggers'."""
        try:
            return self._filter_condition(records), []
        except psycopg2.Error:
            raise  # the transaction is aborted (or must be retried): not the condition's fault
        except Exception as error:  # noqa: BLE001 - any evaluation error fails this trigger only
            _logger.warning("Condition of workflow trigger %s failed on %s", self.id, records, exc_info=True)
            message = _(
                "The condition of the trigger “%(trigger)s” could not be evaluated: %(error)s",
                trigger=self.display_name,
                error=self.env["workflow.automation.action"]._error_text(error),
            )
            return records.browse(), self._prepare_failed_run_vals(records, user, message)

    def _fire(self, records, user, occurrences=None):
        """Run the actions in order on ``records``, for ``user``'s change: per action, one bulk
        insert of its runs, executed at once, or left to the queue when the action is delayed
        or leaves the database. A record on which an action failed is left out of the
        following actions. ``occurrences``: ``{record id: occurrence}`` of a date trigger.
        """
        self.ensure_one()
        Run = self.env["workflow.automation.run"].sudo()
        failed = records.browse()
        later = Run
        for action in self.action_ids:
            vals_list = self._prepare_action_runs(action, records - failed, user)
            if failed:
                skipped = self.workflow_id._in_readers_lang().env._("An earlier action of this trigger failed.")
                vals_list += Run._prepare_vals_list(action, failed, user, "skipped", message=skipped)
            for vals in vals_list if occurrences else ():
                vals["occurrence"] = occurrences[vals["res_id"]]
            runs = Run._insert(vals_list)
            now = runs.filtered(lambda run: run.state == "scheduled") if not action._is_queued() else Run
            now._execute_scheduled()
            later |= runs - now
            failed |= records.browse(now.filtered(lambda run: run.state == "failed").mapped("res_id"))
        later._announce()

    def _prepare_action_runs(self, action, records, user):
        """The runs of ``action`` on ``records``: due now, or when its delay is over."""
        Run = self.env["workflow.automation.run"]
        try:
            due = action._due_date(fields.Datetime.now())
        except (OverflowError, ValueError) as error:  # a delay saved before delays were bounded
            message = _("The due date of this action is out of range: %s", action._error_text(error))
            return Run._prepare_vals_list(action, records, user, "failed", message=message)
        vals_list = Run._prepare_vals_list(action, records, user, "scheduled", date_due=due)
        if action.delay and self._kind().in_stage and action.require_same_stage:
            for vals, record in zip(vals_list, records, strict=True):
                vals["stage_ref"] = record.stage_id.id
        return vals_list

    def _actors(self, records, depth):
        """``records`` as the actions act on them: elevated rights, in the workflow's company,
        at ``depth`` in a chain of workflows (which the chain's context lists)."""
        chain = (*records.env.context.get(CHAIN_CONTEXT_KEY, ()), self.workflow_id.id)
        return records.sudo().with_company(self.company_id).with_context(
            **{DEPTH_CONTEXT_KEY: depth, CHAIN_CONTEXT_KEY: chain}
        )

    def _prepare_failed_run_vals(self, records, user, message):
        """Failed runs of all the trigger's actions on ``records``."""
        return self._prepare_run_vals(records, user, "failed", message)

    def _prepare_stopped_run_vals(self, records, user, message):
        """Runs saying why a chain of workflows triggering each other was cut."""
        return self._prepare_run_vals(records, user, "skipped", message)

    def _prepare_run_vals(self, records, user, state, message):
        self.ensure_one()
        Run = self.env["workflow.automation.run"]
        return [
            vals
            for action in self.action_ids
            for vals in Run._prepare_vals_list(action, records, user, state, message=message)
        ]

    def _chain_names(self):
        """“A” → “B” → …: the workflows of the current chain, then this trigger's."""
        chain = self.env["workflow.automation"].browse(self.env.context.get(CHAIN_CONTEXT_KEY, ()))
        return " → ".join(f"“{workflow.name}”" for workflow in (*chain, self.workflow_id))

    def _loop_message(self):
        return _(
            "Stopped: the workflows %(chain)s triggered each other in a loop; “%(workflow)s” already ran "
            "on this record in this transaction and does not run again.",
            chain=self._chain_names(),
            workflow=self.workflow_id.name,
        )

    def _depth_message(self, depth):
        return _(
            "Stopped: workflows triggered each other %(depth)s times in a row (%(chain)s); "
            "“%(workflow)s” does not run.",
            depth=depth,
            chain=self._chain_names(),
            workflow=self.workflow_id.name,
        )

    # ------------------------------------------------------------------
    # Date-based triggers (DESIGN.md principle 7)
    # ------------------------------------------------------------------

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
