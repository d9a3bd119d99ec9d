import ast
import logging

import psycopg2

from odoo import _, api, fields, models
from odoo.tools.safe_eval import datetime, dateutil, safe_eval, time

from .workflow_automation_index import FoldedAction, TriggerSpec
from .workflow_automation_kinds import FROM_STAGE, STAGE, TRIGGER_KINDS, codes, selection
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
            fold=self._fold_actions(),
            conditional=self._has_condition(),
            condition_fields=self._condition_fields(),
            only_ids=None if workflow.active else test_ids,
            **self._change_spec(),
        )

    def _fold_actions(self):
        """The actions as the index keeps them for a folded write, if the user's change may
        fire them so: a trigger of the stage reached every time, whose actions only write the
        records at once (see workflow_automation_fold.py); otherwise None."""
        if self.kind not in STAGE_KINDS or self.frequency != "every_time":
            return None
        folded = []
        for action in self.action_ids:
            values = action._fold_values()
            if values is None:
                return None
            folded.append(FoldedAction(action.kind, values, action._write_context(), action._run_vals()))
        return tuple(folded)

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
            trigger._check_span("date_offset", negative=_("the number of days cannot be negative."))
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

    def _has_condition(self):
        return bool(self.filter_domain) and self.filter_domain.strip() != "[]"

    def _filter_condition(self, records):
        """Return the records matching the condition, in one query for the whole batch."""
        if not self._has_condition():
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
