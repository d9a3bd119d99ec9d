from collections import defaultdict
from contextlib import contextmanager

from odoo import _, api, fields, models
from odoo.exceptions import AccessError

from .workflow_automation_kinds import FROM_STAGE, SCOPE, STAGE, TAGS, role_field

DEPTH_CONTEXT_KEY = "workflow_automation_depth"
# The ids of the workflows whose actions led to the current write, first one first
CHAIN_CONTEXT_KEY = "workflow_automation_chain"
# Workflows whose actions fire other workflows stop after this many links (DESIGN.md #5).
MAX_DEPTH = 5
FIRED_KEY = "workflow_automation.fired"
# The events of a stage written on the records
STAGE_EVENTS = ("stage_reached", "stage_changed")
DEFERRED_KEY = "workflow_automation.deferred"
# The event of the trigger "a field changes", which watches the fields its triggers chose
FIELD_CHANGED = "field_changed"
# Cursor cache key: {(uid, model): {"ids": the records the user is saving, "handed_off": those
# of them he could read back only thanks to the save}}. Not in the context: a client sets that.
READ_BACK_KEY = "workflow_automation.read_back"


def _changed_fields(specs):
    """The fields that the triggers "a field changes" of ``specs`` watch."""
    return frozenset().union(*(spec.changed_fields for spec in specs))


class WorkflowAutomationMixin(models.AbstractModel):
    """Fire workflows from create and write. A model opts in by inheriting this mixin.

    The hook costs a dictionary lookup when no switched-on trigger watches the written
    fields. Otherwise it reads, before ``super()``, the few fields the events need for
    the whole batch, then derives the events per record and runs the matching triggers
    once per batch.

    The engine, the forms and the checks ask the target model, never compare its name: its
    stage, tag and scope fields are the class attributes below, and a trigger's or an
    action's field playing a role (``workflow_automation_kinds.ROLES``) is the one whose
    comodel is that of the target's field (``_workflow_field_of``). Adding a third model,
    say ``project.task``, takes one bridge file, ``models/project_task.py``::

        class ProjectTask(models.Model):
            _name = "project.task"
            _inherit = ["workflow.automation.mixin", "project.task"]
            _workflow_scope_field = "project_id"  # workflows are scoped to projects
            _workflow_stage_scope_field = "project_ids"  # a task stage may name its projects

        # the parameter fields whose comodel is new to the engine, tagged with their role
        class WorkflowAutomationTrigger(models.Model):
            _inherit = "workflow.automation.trigger"
            task_stage_id = fields.Many2one("project.task.type", workflow_role="stage")
            from_task_stage_id = fields.Many2one("project.task.type", workflow_role="from_stage")

        class WorkflowAutomationAction(models.Model):
            _inherit = "workflow.automation.action"
            task_stage_id = fields.Many2one("project.task.type", workflow_role="stage")

    plus its line in ``TARGET_MODELS`` (or a ``selection_add`` on ``target`` in the same
    file) and the new fields in the forms, shown where ``stage_field`` names them. The kinds
    that apply to every target (``workflow_automation_kinds``) are offered for it at once.
    """

    _name = "workflow.automation.mixin"
    _description = "Workflow Automation Mixin"
    # The many2one a workflow's scope is compared with (a pipeline, ...); None: the record itself.
    _workflow_scope_field = None
    # The record's stage and tags, which the stage triggers and the stage and tag actions use
    _workflow_stage_field = "stage_id"
    _workflow_tag_field = "tag_ids"
    # The field of a stage naming the only scope records it belongs to (a pipeline's own
    # stage); None: every stage is shared by all scopes.
    _workflow_stage_scope_field = None

    workflow_scheduled_count = fields.Integer(
        string="Scheduled automations", compute="_compute_workflow_scheduled_count"
    )
    workflow_test_id = fields.Many2one(
        "workflow.automation",
        string="Test record of",
        readonly=True,
        copy=False,
        index="btree_not_null",
        help="Made to test this workflow: a switched-off workflow fires on its test records only, "
        "and e-mails and webhooks are recorded on test records instead of being sent.",
    )

    # ------------------------------------------------------------------
    # The web client's save: a workflow may take the record out of the user's sight
    # ------------------------------------------------------------------

    def web_save(self, vals, specification, next_id=None):
        """Save, then read back the record as the web client does, even when a workflow fired
        by the save handed it to someone the user's record rules do not let him follow.

        The user could read the record a moment earlier, and the client needs the card it
        shows; without this, the read-back raises and the user's change, and everything the
        workflows did, is rolled back. He is told who took the record over.
        """
        if not self or next_id:
            return super().web_save(vals, specification, next_id=next_id)
        with self._workflow_read_back() as handed_off:
            result = super().web_save(vals, specification)
        self.browse(handed_off)._workflow_notify_handed_off()
        return result

    @contextmanager
    def _workflow_read_back(self):
        """Let the current user read ``self`` until the block ends; yield the ids he could
        read only so (filled in when he reads them)."""
        saving = self.env.cr.cache.setdefault(READ_BACK_KEY, {})
        key = (self.env.uid, self._name)
        if key in saving:  # a save inside a save: the outer one decides
            yield set()
            return
        saving[key] = {"ids": set(self.ids), "handed_off": set()}
        try:
            yield saving[key]["handed_off"]
        finally:
            del saving[key]

    def _check_access(self, operation):
        result = super()._check_access(operation)
        saving = result and operation == "read" and self.env.cr.cache.get(READ_BACK_KEY, {}).get(
            (self.env.uid, self._name)
        )
        if not saving or not any(self._ids):
            return result
        forbidden, make_error = result
        read_back = forbidden.filtered(lambda record: record.id in saving["ids"])
        saving["handed_off"].update(read_back.ids)
        return (forbidden - read_back, make_error) if forbidden - read_back else None

    def _workflow_notify_handed_off(self):
        """Tell the current user which of these records a workflow handed to whom."""
        for record in self.sudo():
            self.env.user._bus_send("simple_notification", {
                "type": "info",
                "title": _("Handed over"),
                "message": _(
                    "%(owner)s now handles “%(record)s”, which leaves your view.",
                    record=record.display_name,
                    owner=record._workflow_owner_name(),
                ),
            })

    def _workflow_owner_name(self):
        """Who the record belongs to, for the user who lost sight of it."""
        return self.user_id.name if "user_id" in self._fields and self.user_id else _("someone else")

    def _workflow_runs_domain(self):
        return [("res_model", "=", self._name), ("res_id", "in", self.ids)]

    def _compute_workflow_scheduled_count(self):
        counts = dict(self.env["workflow.automation.run"].sudo()._read_group(
            [*self._workflow_runs_domain(), ("state", "=", "scheduled")], ["res_id"], ["__count"]
        ))
        for record in self:
            record.workflow_scheduled_count = counts.get(record.id, 0)

    def action_open_workflow_runs(self):
        """What the workflows did and have scheduled on this record."""
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "crm_workflow_automation.workflow_automation_run_action"
        )
        action["domain"] = self._workflow_runs_domain()
        action["context"] = {"search_default_scheduled": 1}
        return action

    def _workflow_action_open(self, name):
        """A window on these records: the form of a single one, the list of several."""
        action = {"type": "ir.actions.act_window", "name": name, "res_model": self._name,
                  "context": {"active_test": False}}
        if len(self) == 1:
            return dict(action, view_mode="form", views=[(False, "form")], res_id=self.id)
        return dict(action, view_mode="list,form", views=[(False, "list"), (False, "form")],
                    domain=[("id", "in", self.ids)])

    # ------------------------------------------------------------------
    # What a model tells the engine (override in the model's own file)
    # ------------------------------------------------------------------

    @api.model
    def _workflow_role_comodel(self, role):
        """The model of the records playing ``role`` (``workflow_automation_kinds.ROLES``) here."""
        field_name = {
            STAGE: self._workflow_stage_field,
            FROM_STAGE: self._workflow_stage_field,
            TAGS: self._workflow_tag_field,
            SCOPE: self._workflow_scope_field,
        }[role]
        if not field_name:
            return self._name if role == SCOPE else None
        return self._fields[field_name].comodel_name

    @api.model
    def _workflow_field_of(self, model, role):
        """The name of the field of ``model`` (a trigger, an action, a workflow, ...) that plays
        ``role`` for this model: the one tagged ``workflow_role=role`` holding its records."""
        return role_field(model, role, self._workflow_role_comodel(role))

    @api.model
    def _workflow_stage_scope_error(self, stage, scopes):
        """Why ``stage`` cannot be used for records of ``scopes`` (pipelines, ...), or None.

        A stage naming its scope fits that scope only; the others fit every scope.
        """
        field_name = self._workflow_stage_scope_field
        owners = stage[field_name] if field_name and stage else None
        if not owners or owners & scopes:
            return None
        return _(
            "the stage “%(stage)s” belongs to the pipeline “%(team)s”, not to %(scopes)s: choose a stage "
            "of %(scopes)s or one shared by all pipelines.",
            stage=stage.display_name,
            team=", ".join(owners.mapped("display_name")),
            scopes=", ".join(f"“{name}”" for name in scopes.mapped("display_name")) or "—",
        )

    @api.model
    def _workflow_test_record_vals(self):
        """The values of a record made by "Test this workflow", besides its name, owner, scope and stage."""
        return {}

    def _workflow_display_names(self):
        """The records' display names, in order, as the runs keep them.

        Odoo computes a display name record by record, at a cost above that of a run row; where
        the model keeps Odoo's own (its ``_rec_name``, a text), the same names are that
        field's values, read in bulk.
        """
        field = self._fields.get(self._rec_name or "")
        if (
            field is None
            or field.type not in ("char", "text")
            or type(self)._compute_display_name is not models.BaseModel._compute_display_name
        ):
            return self.mapped("display_name")
        return [field.convert_to_display_name(value, self) for value in self.mapped(field.name)]

    def _workflow_cache_values(self, name):
        """The values of field ``name`` of these records, in order, as the cache keeps them (an
        id or None for a many2one). Read in bulk: on a large batch, reading record by record
        would cost more than the engine's own work."""
        self.mapped(name)  # fetches, or computes, what the cache lacks, at once
        return self.env.cache.get_until_miss(self, self._fields[name])

    def _workflow_grouped_by(self, name):
        """``{value: records}`` of these records grouped by their value of field ``name``, as
        the cache keeps it: ``grouped`` without its record-by-record reads."""
        groups = defaultdict(list)
        for record_id, value in zip(self._ids, self._workflow_cache_values(name), strict=True):
            groups[value].append(record_id)
        return {value: self.browse(record_ids) for value, record_ids in groups.items()}

    def _workflow_stage_ids(self):
        """``{record id: stage id, or False}`` of these records, read in bulk."""
        stage_ids = self._workflow_cache_values("stage_id")
        return {record_id: stage_id or False for record_id, stage_id in zip(self._ids, stage_ids, strict=True)}

    def _workflow_scope_values(self):
        """The ids the workflow's scope is compared with (pipelines, projects, ...), in order."""
        field_name = self._workflow_scope_field
        return self._workflow_cache_values(field_name) if field_name else list(self._ids)

    def _workflow_scope_ids(self, vals):
        """The scope ids of the batch, before or after writing ``vals``, read in bulk."""
        scope_ids = set(self.sudo()._workflow_scope_values()) - {None}
        new_scope_id = self._workflow_scope_field and vals.get(self._workflow_scope_field)
        if new_scope_id:
            scope_ids.add(new_scope_id)
        return scope_ids

    def _workflow_event_fields(self):
        """Return ``{event: fields whose write may cause it}``.

        "A field changes" watches the fields its triggers chose: read from the trigger index,
        which a transaction reads once; no query for the writes that follow.
        """
        events = dict.fromkeys(STAGE_EVENTS, {"stage_id"})
        changes = self.env["workflow.automation"]._get_trigger_index(self._name).get(FIELD_CHANGED)
        if changes:
            events[FIELD_CHANGED] = _changed_fields(changes)
        return events

    def _workflow_snapshot(self, events):
        """The values ``events`` are derived from, read for the whole batch at once."""
        records = self.sudo()
        snapshot = {record_id: {"stage_id": stage_id} for record_id, stage_id in records._workflow_stage_ids().items()}
        if FIELD_CHANGED in events:
            names = _changed_fields(events[FIELD_CHANGED])
            for record in records:
                snapshot[record.id][FIELD_CHANGED] = record._workflow_values(names)
        return snapshot

    def _workflow_values(self, names):
        """``{field: value}`` of the record, comparable before and after a write (ids for records)."""
        values = {}
        for name in names:
            value = self[name]
            if isinstance(value, models.BaseModel):
                value = value.id if self._fields[name].type == "many2one" else frozenset(value.ids)
            values[name] = value
        return values

    def _workflow_changed(self, event, before):
        """Return the records of ``self`` on which ``event`` happened since ``before``."""
        records = self.sudo()
        if event in STAGE_EVENTS:
            return records.browse([
                record_id for record_id, stage_id in records._workflow_stage_ids().items()
                if stage_id != before[record_id]["stage_id"]
            ])
        if event == FIELD_CHANGED:
            return records.filtered(lambda r: r._workflow_values(before[r.id][event]) != before[r.id][event])
        raise NotImplementedError(event)

    def _workflow_change_matches(self, spec, before):
        """Whether the record's change fires ``spec``, a trigger "a field changes" (any other
        trigger: True): one of its fields changed, from and to its values if it has some."""
        if not spec.changed_fields:
            return True
        old = before[FIELD_CHANGED]
        new = self._workflow_values(spec.changed_fields)
        if all(new[name] == old[name] for name in spec.changed_fields):
            return False
        name = next(iter(spec.changed_fields))  # from and to are offered for one field only
        return (spec.changed_from is None or old[name] == spec.changed_from) and (
            spec.changed_to is None or new[name] == spec.changed_to
        )

    def _workflow_stages_match(self, spec, before, stage_after=None):
        """Whether the record, moved from the stage of ``before`` to ``stage_after`` (by default,
        its stage), is in the stages of ``spec``."""
        return (not spec.to_stage_id or (stage_after or self.stage_id.id) == spec.to_stage_id) and (
            not spec.from_stage_id or before["stage_id"] == spec.from_stage_id
        )

    def _workflow_write_vals(self, kind, values):
        """``[(records, values)]`` that an action of ``kind`` writes on these records, from the
        ``values`` it writes on any record: a model may split or check them per record with
        ``_workflow_<kind>_vals(values)``."""
        adapt = getattr(self, f"_workflow_{kind}_vals", None)
        return adapt(values) if adapt else [(self, values)]

    # ------------------------------------------------------------------
    # The hooks
    # ------------------------------------------------------------------

    def _workflow_trigger_index(self, events, vals=None):
        """``{event: specs}`` of the triggers of ``events`` that the current change of ``self``
        (writing ``vals``, if given) fires.

        Only the triggers of the batch's pipelines or projects (before and after the change)
        and those of any are looked at. The triggering user is the current user (actions, and
        the queue, keep the user whose change started them); records written by an import
        (base_import sets ``import_file``) fire only the workflows that opted in; a
        switched-off workflow fires only if ``self`` holds one of its test records. Costs no
        SQL query.
        """
        index = self.env["workflow.automation"]._get_trigger_index(self._name)
        user, importing = self.env.user, bool(self.env.context.get("import_file"))
        scope_ids = None
        fired = {}
        for event in events:
            entry = index.get(event)
            if entry is None:
                continue
            if entry.by_scope and scope_ids is None:
                scope_ids = self._workflow_scope_ids(vals or {})
            # a write of the stage sets it on every record: the triggers of other stages do not fire
            stage_id = event in STAGE_EVENTS and (vals or {}).get(self._workflow_stage_field)
            specs = tuple(
                spec for spec in entry.in_scopes(scope_ids or ())
                if spec.fires_for(user, importing)
                and (spec.only_ids is None or not spec.only_ids.isdisjoint(self._ids))
                and not (stage_id and spec.to_stage_id and spec.to_stage_id != stage_id)
            )
            if specs:
                fired[event] = specs
        return fired

    def _workflow_check_test_flag(self, carried):
        """Refuse a change of the test-record flag by anyone but the test wizard (which sets
        it as superuser): the flag makes switched-off workflows fire, holds back what would
        leave the database, lets *Remove test records* delete the record, and gives the
        trigger index a new version."""
        if carried and not self.env.su:
            raise AccessError(_(
                "The field “%(field)s” of %(model)s is set by the “Test this workflow” button only.",
                field=self._fields["workflow_test_id"]._description_string(self.env),
                model=self.env["ir.model"].sudo()._get(self._name).name,
            ))

    @api.model_create_multi
    def create(self, vals_list):
        flagged = any(vals.get("workflow_test_id") for vals in vals_list)
        self._workflow_check_test_flag(flagged)
        records = super().create(vals_list)
        if flagged:
            self.env["workflow.automation"]._invalidate_trigger_index()  # the index lists the test records
        index = records._workflow_trigger_index(("create", "stage_reached"))
        if index:
            matches = records._workflow_match(index.get("create", ()), records.sudo())
            reached = records.sudo().filtered("stage_id")
            matches += records._workflow_match(index.get("stage_reached", ()), reached)
            records._workflow_run_matches(matches)
        return records

    def write(self, vals):
        self._workflow_check_test_flag("workflow_test_id" in vals)
        index = self._workflow_events_for(vals)
        if not index:
            result = super().write(vals)
        else:
            result = self._workflow_write_and_fire(vals, index, self._workflow_snapshot(index))
        if "workflow_test_id" in vals:
            self.env["workflow.automation"]._invalidate_trigger_index()  # the index lists the test records
        return result

    def _workflow_write_and_fire(self, vals, index, before):
        """Write ``vals``, then run the triggers of ``index`` that the write fired."""
        result = self._workflow_write_unhooked(vals)
        matches = []
        for event, specs in index.items():
            matches += self._workflow_event_matches(event, specs, before)
        self._workflow_run_matches(matches)
        return result

    def _workflow_write_unhooked(self, vals):
        """The model's ``write``, under this hook: what a fired write calls to write its records
        (a folded write writes several groups of them) without firing again."""
        return super().write(vals)  # pylint: disable=super-method-mismatch

    def unlink(self):
        self.env["workflow.automation.run"].sudo().search([
            *self._workflow_runs_domain(), ("state", "=", "scheduled"),
        ]).write({"state": "cancelled", "message": _("The record was deleted.")})
        return super().unlink()

    def _workflow_event_matches(self, event, specs, before):
        """``[(spec, records)]`` of the triggers ``specs`` of ``event`` that the write just made fires.

        The extension point of the write for features that react to a change without firing
        triggers of their own (follow-ups completing themselves): such a feature lists the
        triggers that need it under a pseudo-event (see the trigger's ``_get_index_events``),
        names the fields it watches in ``_workflow_event_fields`` and overrides this method
        to do its work for that event and return no match. Rather than an override of
        ``write``: the index already tells, at no cost, whether a write concerns the feature,
        the snapshot taken for the triggers serves it too, and its work keeps its place,
        before the triggers run.
        """
        changed = self._workflow_changed(event, before)
        return self._workflow_match(specs, changed, before) if changed else []

    def _workflow_events_for(self, vals):
        """``{event: specs}`` of the events that writing ``vals`` may cause for triggers in scope.

        Costs no SQL query when no trigger watches the written fields, and only the triggers
        of the watched events and of the batch's scopes are looked at.
        """
        if not self:
            return {}
        watched = [event for event, names in self._workflow_event_fields().items() if not names.isdisjoint(vals)]
        return self._workflow_trigger_index(watched, vals) if watched else {}

    # ------------------------------------------------------------------
    # Matching: scope, company and stages, in Python on cached values
    # ------------------------------------------------------------------

    def _workflow_match(self, specs, changed, before=None, stage_after=None):
        """Return ``[(spec, records)]`` for the triggers whose scope and stages match.

        ``stage_after``: the stage id the records have after the change, when it is not
        written yet (by default, their stage).
        """
        if not specs or not changed:
            return []
        # what the triggers compare the records with, read once for all of them
        by_scope = defaultdict(list)
        for record_id, scope_id in zip(changed._ids, changed._workflow_scope_values(), strict=True):
            by_scope[scope_id].append(record_id)
        company_ids = dict(zip(changed._ids, changed._workflow_cache_values("company_id"), strict=True))
        matches = []
        for spec in specs:
            if stage_after and spec.to_stage_id and stage_after != spec.to_stage_id:
                continue
            ids = changed._ids if spec.scope_ids is None else [
                record_id for scope in spec.scope_ids for record_id in by_scope.get(scope, ())
            ]
            records = changed.browse([
                record_id for record_id in ids
                if company_ids[record_id] in (None, spec.company_id)
                and (spec.only_ids is None or record_id in spec.only_ids)
            ])
            if records and (spec.from_stage_id or spec.changed_fields or (spec.to_stage_id and not stage_after)):
                records = records.filtered(
                    lambda r, spec=spec: r._workflow_stages_match(spec, before and before[r.id], stage_after)
                    and r._workflow_change_matches(spec, before and before[r.id])
                )
            if records:
                matches.append((spec, records))
        return matches

    # ------------------------------------------------------------------
    # Running: conditions on the batch, then the actions
    # ------------------------------------------------------------------

    @contextmanager
    def _workflow_deferred(self):
        """Hold the triggers fired inside the block until it ends.

        For methods made of several writes (marking lost archives, then sets the
        reason), so that conditions see the final values.
        """
        data = self.env.cr.postcommit.data
        if DEFERRED_KEY in data:
            yield
            return
        queue = data[DEFERRED_KEY] = []
        try:
            yield
        finally:
            del data[DEFERRED_KEY]
        # several writes or creates may match one trigger: run it once on all their records
        merged = {}
        for spec, records in queue:
            merged[spec] = merged[spec] | records if spec in merged else records
        self._workflow_run_matches(list(merged.items()))

    def _workflow_run_matches(self, matches):
        if not matches:
            return
        deferred = self.env.cr.postcommit.data.get(DEFERRED_KEY)
        if deferred is not None:
            deferred += matches
            return
        fired = self.env.cr.postcommit.data.setdefault(FIRED_KEY, set())
        fired_before = self._workflow_fired_before(matches)
        depth = self.env.context.get(DEPTH_CONTEXT_KEY, 0)
        user = self.env.user
        Trigger = self.env["workflow.automation.trigger"].sudo()
        run_vals = []
        for spec, records in sorted(matches, key=lambda match: match[0].rank):
            records = records.filtered(lambda r, spec=spec: (spec.id, r.id) not in fired_before)
            trigger = Trigger.browse(spec.id)
            records, failed_vals = trigger._match_condition(records, user) if records else (records, [])
            run_vals += failed_vals
            # an action's write that brings the chain back to a trigger it ran: a loop
            repeated = records.filtered(lambda r, spec=spec: (spec.id, r.id) in fired)
            records -= repeated
            if repeated and depth:
                run_vals += trigger._prepare_stopped_run_vals(repeated, user, trigger._loop_message())
            if not records:
                continue
            fired.update((spec.id, record_id) for record_id in records.ids)
            if depth >= MAX_DEPTH:
                run_vals += trigger._prepare_stopped_run_vals(records, user, trigger._depth_message(MAX_DEPTH))
                continue
            trigger._fire(records, user)
        self.env["workflow.automation.run"].sudo()._insert(run_vals)._announce()

    def _workflow_fired_before(self, matches):
        """``{(trigger id, record id)}`` already fired, for the "only the first time" triggers
        among ``matches``: one query for the batch, none when no such trigger matched."""
        first_time = [(spec, records) for spec, records in matches if spec.first_time_only]
        if not first_time:
            return set()
        records = self.browse().union(*(records for _spec, records in first_time))
        return self.env["workflow.automation.run"]._fired_before(records, {spec.id for spec, _records in first_time})
