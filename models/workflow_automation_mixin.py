from collections import defaultdict
from contextlib import contextmanager

from odoo import _, api, fields, models

DEPTH_CONTEXT_KEY = "workflow_automation_depth"
# Workflows whose actions fire other workflows stop after this many links (DESIGN.md #5).
MAX_DEPTH = 5
FIRED_KEY = "workflow_automation.fired"
DEFERRED_KEY = "workflow_automation.deferred"


class WorkflowAutomationMixin(models.AbstractModel):
    """Fire workflows from create and write. A model opts in by inheriting this mixin.

    The hook costs a dictionary lookup when no switched-on trigger watches the written
    fields. Otherwise it reads, before ``super()``, the few fields the events need for
    the whole batch, then derives the events per record and runs the matching triggers
    once per batch.
    """

    _name = "workflow.automation.mixin"
    _description = "Workflow Automation Mixin"
    # The many2one a workflow's scope is compared with (a pipeline, ...); None: the record itself.
    _workflow_scope_field = None

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
        "and e-mails, webhooks and SMS are recorded on test records instead of being sent.",
    )

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

    # ------------------------------------------------------------------
    # What a model tells the engine (override in the model's own file)
    # ------------------------------------------------------------------

    def _workflow_scope_value(self):
        """The id the workflow's scope is compared with (a pipeline, a project, ...)."""
        return self[self._workflow_scope_field].id if self._workflow_scope_field else self.id

    def _workflow_scope_ids(self, vals):
        """The scope ids of the batch, before or after writing ``vals``, read in bulk."""
        field_name = self._workflow_scope_field
        if not field_name:
            return set(self.ids)
        scope_ids = set(self.sudo().mapped(field_name).ids)
        if vals.get(field_name):
            scope_ids.add(vals[field_name])
        return scope_ids

    def _workflow_event_fields(self):
        """Return ``{event: fields whose write may cause it}``."""
        return {"stage_reached": {"stage_id"}, "stage_changed": {"stage_id"}}

    def _workflow_snapshot(self, events):
        """The values ``events`` are derived from, read for the whole batch at once."""
        return {record.id: {"stage_id": record.stage_id.id} for record in self.sudo()}

    def _workflow_changed(self, event, before):
        """Return the records of ``self`` on which ``event`` happened since ``before``."""
        records = self.sudo()
        if event in ("stage_reached", "stage_changed"):
            return records.filtered(lambda r: r.stage_id.id != before[r.id]["stage_id"])
        raise NotImplementedError(event)

    def _workflow_assign_user(self, user):
        """The "assign to a user" action: the owner is ``user_id`` unless a model says otherwise."""
        self.write({"user_id": user.id})

    # ------------------------------------------------------------------
    # The hooks
    # ------------------------------------------------------------------

    @api.model_create_multi
    def create(self, vals_list):
        records = super().create(vals_list)
        if any(vals.get("workflow_test_id") for vals in vals_list):
            self.env.registry.clear_cache()  # the trigger index lists the test records
        index = self.env["workflow.automation"]._get_trigger_index(self._name)
        created = records._workflow_specs(index, "create")
        reached = records._workflow_specs(index, "stage_reached")
        if created or reached:
            matches = records._workflow_match(created, records.sudo())
            matches += records._workflow_match(reached, records.sudo().filtered("stage_id"))
            records._workflow_run_matches(matches)
        return records

    def write(self, vals):
        events = self._workflow_events_for(vals)
        if not events:
            result = super().write(vals)
        else:
            before = self._workflow_snapshot(events)
            result = super().write(vals)
            index = self.env["workflow.automation"]._get_trigger_index(self._name)
            matches = []
            for event in events:
                changed = self._workflow_changed(event, before)
                if changed:
                    matches += self._workflow_match(self._workflow_specs(index, event), changed, before)
            self._workflow_run_matches(matches)
        if "workflow_test_id" in vals:
            self.env.registry.clear_cache()  # the trigger index lists the test records
        return result

    def unlink(self):
        self.env["workflow.automation.run"].sudo().search([
            *self._workflow_runs_domain(), ("state", "=", "scheduled"),
        ]).write({"state": "cancelled", "message": _("The record was deleted.")})
        return super().unlink()

    def _workflow_events_for(self, vals):
        """The watched events that writing ``vals`` may cause for triggers in scope.

        Costs no SQL query when no switched-on trigger watches the written fields, and
        no per-record work when the batch is outside every candidate trigger's scope.
        """
        if not self:
            return []
        index = self.env["workflow.automation"]._get_trigger_index(self._name)
        events = []
        scope_ids = None
        for event, field_names in self._workflow_event_fields().items():
            if field_names.isdisjoint(vals):
                continue
            specs = self._workflow_specs(index, event)
            if not specs:
                continue
            if all(spec.scope_ids is not None for spec in specs):
                if scope_ids is None:
                    scope_ids = self._workflow_scope_ids(vals)
                if all(spec.scope_ids.isdisjoint(scope_ids) for spec in specs):
                    continue
            events.append(event)
        return events

    def _workflow_specs(self, index, event):
        """The triggers of ``event`` that may fire on ``self``: a switched-off workflow's
        only if ``self`` holds one of its test records (no SQL query: ids in the index)."""
        return [
            spec for spec in index.get(event, ())
            if spec.only_ids is None or not spec.only_ids.isdisjoint(self._ids)
        ]

    # ------------------------------------------------------------------
    # Matching: scope, company and stages, in Python on cached values
    # ------------------------------------------------------------------

    def _workflow_match(self, specs, changed, before=None):
        """Return ``[(spec, records)]`` for the triggers whose scope and stages match."""
        if not specs or not changed:
            return []
        by_scope = defaultdict(list)
        for record in changed:
            by_scope[record._workflow_scope_value()].append(record.id)
        matches = []
        for spec in specs:
            if spec.scope_ids is None:
                ids = changed.ids
            else:
                ids = [rid for scope in spec.scope_ids for rid in by_scope.get(scope, ())]
            if spec.only_ids is not None:
                ids = [rid for rid in ids if rid in spec.only_ids]
            if not ids:
                continue
            records = changed.browse(ids).filtered(
                lambda r, spec=spec: r.company_id.id in (False, spec.company_id)
                and (not spec.to_stage_id or r.stage_id.id == spec.to_stage_id)
                and (not spec.from_stage_id or before[r.id]["stage_id"] == spec.from_stage_id)
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
        self._workflow_run_matches(queue)

    def _workflow_run_matches(self, matches):
        if not matches:
            return
        deferred = self.env.cr.postcommit.data.get(DEFERRED_KEY)
        if deferred is not None:
            deferred += matches
            return
        fired = self.env.cr.postcommit.data.setdefault(FIRED_KEY, set())
        depth = self.env.context.get(DEPTH_CONTEXT_KEY, 0)
        user = self.env.user
        Trigger = self.env["workflow.automation.trigger"].sudo()
        run_vals = []
        for spec, records in sorted(matches, key=lambda match: match[0].rank):
            records = records.filtered(lambda r, spec=spec: (spec.id, r.id) not in fired)
            trigger = Trigger.browse(spec.id)
            records = trigger._filter_condition(records) if records else records
            if not records:
                continue
            fired.update((spec.id, record_id) for record_id in records.ids)
            if depth >= MAX_DEPTH:
                run_vals += trigger._prepare_stopped_run_vals(records, user, MAX_DEPTH)
                continue
            run_vals += trigger._execute(trigger._actors(records, depth + 1), user)
        if run_vals:
            self.env["workflow.automation.run"].sudo().create(run_vals)
