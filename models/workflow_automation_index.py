"""The trigger index (DESIGN.md principle 2): which triggers a write may fire, without a query.

The switched-on triggers of a model (and those of switched-off workflows that have test
records) are cached per model and version of the workflows, by event and by scope: a write
looks only at the triggers of its records' pipelines or projects, however many workflows
watch others.
"""

import uuid
from collections import defaultdict
from typing import NamedTuple

from odoo import api, models, tools
from odoo.tools import SQL

# The version of the workflows the trigger index is cached for (a system parameter), and the key
# of the version this transaction sees in ``cr.postcommit.data``
INDEX_VERSION_PARAM = "crm_workflow_automation.trigger_index_version"
INDEX_VERSION_KEY = "workflow_automation.index_version"


class FoldedAction(NamedTuple):
    """An action as a folded write needs it (see workflow_automation_fold.py): read once, when
    the index is built, so that a folded drag reads no definition."""

    kind: str
    values: dict  # what it writes on any record (``_write_values``): plain values and ids
    context: dict  # the context it writes with (``_write_context``)
    run_vals: dict  # what its runs have in common (``_run_vals``)


class TriggerSpec(NamedTuple):
    """What the engine needs to know about a trigger without reading it: cached per
    registry, so a write that matches no trigger costs no SQL query."""

    id: int
    rank: int  # orders the triggers across events
    workflow_id: int
    company_id: int
    scope_ids: frozenset | None  # None: any pipeline or project
    from_stage_id: int | bool
    to_stage_id: int | bool
    activity_type_id: int | bool  # activity triggers: False for any type
    user_ids: frozenset | None  # None: everyone's changes fire it
    group_ids: frozenset | None
    first_time_only: bool
    on_import: bool
    # Its actions, if they may be written with the user's change (see workflow_automation_fold.py);
    # whether it has a condition, and the fields its condition reads (None: it cannot tell)
    fold: tuple[FoldedAction, ...] | None
    conditional: bool
    condition_fields: frozenset | None
    # None for a switched-on workflow; for a switched-off one, the ids of its test records,
    # the only records it fires on (DESIGN.md principle 9)
    only_ids: frozenset | None
    # "a field changes": the names of the fields, and the values it changes from and to (None: any)
    changed_fields: frozenset = frozenset()
    changed_from: object = None
    changed_to: object = None

    def __hash__(self):
        # a trigger has one spec per index; its folded values are dicts, which do not hash
        return hash(self.id)

    def fires_for(self, user, importing):
        """Whether a change made by ``user`` (through an import if ``importing``) fires this trigger."""
        if importing and not self.on_import:
            return False
        if self.user_ids is None or user.id in self.user_ids:
            return True
        # the user's groups, implied ones included, are cached by res.users: no query per write
        return bool(self.group_ids) and not self.group_ids.isdisjoint(user._get_group_ids())


class EventIndex:
    """The triggers of one event, by scope: a write looks only at those of its records'
    pipelines or projects (and those of any), however many workflows watch others."""

    __slots__ = ("by_scope", "specs", "unscoped")

    def __init__(self, specs):
        self.specs = tuple(specs)
        self.unscoped = tuple(spec for spec in self.specs if spec.scope_ids is None)
        by_scope = defaultdict(list)
        for spec in self.specs:
            for scope_id in spec.scope_ids or ():
                by_scope[scope_id].append(spec)
        self.by_scope = {scope_id: tuple(scope_specs) for scope_id, scope_specs in by_scope.items()}

    def __iter__(self):
        return iter(self.specs)

    def in_scopes(self, scope_ids):
        """The triggers of any scope and of ``scope_ids``, in their order."""
        if not self.by_scope:
            return self.unscoped
        scoped = {spec for scope_id in scope_ids for spec in self.by_scope.get(scope_id, ())}
        if not scoped:
            return self.unscoped
        return tuple(sorted((*self.unscoped, *scoped), key=lambda spec: spec.rank))


class WorkflowAutomation(models.Model):
    _inherit = "workflow.automation"

    @api.model
    def _get_trigger_index(self, model_name):
        """Return ``{event: EventIndex}`` for the workflows that may fire on a model:
        the switched-on ones, and the switched-off ones that have test records.

        The result holds only ids and plain values, never records, so it can live in the
        registry cache, per version of the workflows (see ``_trigger_index_version``).
        A trigger is listed under its kind, and under the pseudo-events of the features it
        needs (see the trigger's ``_get_index_events``).
        """
        return self._get_trigger_index_at(model_name, self._trigger_index_version())

    @api.model
    def _trigger_index_version(self):
        """The version of the workflows this transaction sees, read once per transaction.

        Each change of a workflow, trigger or action commits a new version with it. Clearing
        the cache alone, as Odoo's ormcaches are cleared, happens before the commit: a
        concurrent request, on an older snapshot, would cache the old index again and keep
        it after the commit. Cached per version, an index is only found by the transactions
        that see the same workflows: in the threads of one process, which share the cache,
        and in other processes alike.
        """
        data = self.env.cr.postcommit.data  # this transaction's: cleared when it ends
        if INDEX_VERSION_KEY not in data:
            self.env["ir.config_parameter"].flush_model(["value"])
            self.env.cr.execute(SQL("SELECT value FROM ir_config_parameter WHERE key = %s", INDEX_VERSION_PARAM))
            data[INDEX_VERSION_KEY] = (self.env.cr.fetchone() or ("",))[0]
        return data[INDEX_VERSION_KEY]

    @api.model
    def _invalidate_trigger_index(self):
        """Give the workflows a new version, committed with the change that calls this."""
        self.env["ir.config_parameter"].sudo().set_param(INDEX_VERSION_PARAM, uuid.uuid4().hex)
        self.env.cr.postcommit.data.pop(INDEX_VERSION_KEY, None)

    @api.model
    @tools.ormcache("model_name", "version")
    def _get_trigger_index_at(self, model_name, version):
        test_ids = self._get_test_record_ids(model_name)
        triggers = self.env["workflow.automation.trigger"].sudo().with_context(active_test=False).search(
            [
                ("workflow_id.target", "=", model_name),
                "|", ("workflow_id.active", "=", True), ("workflow_id", "in", list(test_ids)),
            ],
            order="workflow_sequence, workflow_id, sequence, id",
        )
        index = defaultdict(list)
        for rank, trigger in enumerate(triggers):
            spec = trigger._get_spec(rank, test_ids.get(trigger.workflow_id.id, frozenset()))
            for event in trigger._get_index_events():
                index[event].append(spec)
        return {event: EventIndex(specs) for event, specs in index.items()}

    @api.model
    def _get_test_record_ids(self, model_name):
        """``{workflow id: frozenset of the ids of its test records}`` for a model."""
        groups = self.env[model_name].sudo().with_context(active_test=False)._read_group(
            [("workflow_test_id", "!=", False)], ["workflow_test_id"], ["id:array_agg"]
        )
        return {workflow.id: frozenset(ids) for workflow, ids in groups}
