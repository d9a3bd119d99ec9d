"""Folding: a user's stage change and the actions it fires, written as one change.

When every trigger that a user's move fires only writes the records (assign, set a field,
tags, move on) at once, and its condition does not read what the move changes, the engine
knows before writing what the actions will write. It then writes the user's values and the
actions' together, as the user would have written them by hand: one ``write`` and one flush
instead of one per action (issue 13's "reference" line).

Nothing is lost if it fails: the folded write runs in a savepoint; on any error it is rolled
back and replayed the ordinary way, the user's change first and each action in a savepoint of
its own, which records the failure on its runs (DESIGN.md principle 4).
"""

import logging
from collections import defaultdict

from odoo import models
from odoo.service.model import PG_CONCURRENCY_EXCEPTIONS_TO_RETRY

from .workflow_automation_mixin import DEFERRED_KEY, DEPTH_CONTEXT_KEY, FIRED_KEY, STAGE_EVENTS

_logger = logging.getLogger(__name__)


class FoldedValueChanged(Exception):
    """The model's write did not keep a value of a folded action: write them apart."""


class WorkflowAutomationMixin(models.AbstractModel):
    _inherit = "workflow.automation.mixin"

    def _workflow_write_and_fire(self, vals, index, before):
        plan = self._workflow_fold_plan(vals, index, before)
        folded = plan and self._workflow_folded_vals(plan)
        if not folded:
            return super()._workflow_write_and_fire(vals, index, before)
        self.env.flush_all()  # what was pending before is not at stake
        try:
            with self.env["workflow.automation.run"]._savepoint():
                self._workflow_write_folded(vals, *folded)
                self._workflow_record_folded(plan)
                return True
        except PG_CONCURRENCY_EXCEPTIONS_TO_RETRY:
            raise
        except Exception:  # noqa: BLE001 - an action's error, or the user's own: the replay tells which
            _logger.info("Workflow automation: write of %s replayed with its actions apart", self, exc_info=True)
        return super()._workflow_write_and_fire(vals, index, before)

    def _workflow_fold_plan(self, vals, index, before):
        """``[(trigger, records)]`` of the triggers this write fires, if all may be folded into
        it; otherwise None.

        Only a user's move to a stage is folded (not an action's, nor a move in several
        writes), when it keeps the records' scope and company, and no other event watches
        the write.
        """
        stage_field = self._workflow_stage_field
        data = self.env.cr.postcommit.data
        if (
            self.env.context.get(DEPTH_CONTEXT_KEY)
            or DEFERRED_KEY in data
            or not vals.get(stage_field)
            or not set(index) <= set(STAGE_EVENTS)
            or {self._workflow_scope_field, "company_id"} & set(vals)
        ):
            return None
        new_stage = vals[stage_field]
        changed = self.sudo().filtered(lambda record: before[record.id][stage_field] != new_stage)
        fired = data.get(FIRED_KEY, set())
        dependent = None
        Trigger = self.env["workflow.automation.trigger"].sudo()
        plan = []
        for spec, records in self._workflow_match(
            sorted({spec for specs in index.values() for spec in specs}, key=lambda spec: spec.rank),
            changed, before, new_stage,
        ):
            records = records.filtered(lambda record, spec=spec: (spec.id, record.id) not in fired)
            if not records:
                continue
            if not spec.foldable or spec.condition_fields is None:
                return None
            if spec.condition_fields:
                dependent = self._workflow_dependent_fields(vals) if dependent is None else dependent
                if spec.condition_fields & dependent:
                    return None
            trigger = Trigger.browse(spec.id)
            records, failed_vals = trigger._match_condition(records, self.env.user)
            if failed_vals:
                return None  # the ordinary way records the failure
            if records:
                plan.append((trigger, records))
        return plan or None

    def _workflow_dependent_fields(self, vals):
        """The fields of these records that writing ``vals`` changes: its own, and those
        computed from them."""
        registry = self.env.registry
        return set(vals) | {
            field.name
            for name in vals if name in self._fields
            for field in registry.get_dependent_fields(self._fields[name])
            if field.model_name == self._name
        }

    def _workflow_folded_vals(self, plan):
        """``({record id: the values the actions of plan write}, context)``, or None when they
        cannot be known before writing (a value that no longer fits: the ordinary way fails that
        run), or when they would fire a trigger, which must fire one link deeper in the chain,
        as the ordinary way does."""
        per_record = defaultdict(dict)
        context = {}
        try:
            for trigger, records in plan:
                for action in trigger.action_ids:
                    context.update(action._write_context())
                    for subset, action_vals in action._write_vals(records):
                        if subset._workflow_events_for(action_vals):
                            return None
                        for record_id in subset.ids:
                            per_record[record_id] = _merged(per_record[record_id], action_vals)
        except Exception:  # noqa: BLE001 - the ordinary way records why
            return None
        return per_record, context

    def _workflow_write_folded(self, vals, per_record, context):
        """Write ``vals`` with the actions' values of each record, and check that the model
        kept them: a model's ``write`` may derive some values from others (Odoo's CRM clears
        the closing date of a lead that changes stage), which the ordinary way writes after."""
        groups = defaultdict(list)
        for record in self:
            groups[repr(sorted(per_record.get(record.id, {}).items()))].append(record.id)
        for record_ids in groups.values():
            records = self.browse(record_ids)
            action_vals = per_record.get(record_ids[0], {})
            records.with_context(**context)._workflow_write_unhooked(_merged(vals, action_vals))
            records._workflow_check_kept(action_vals)
        self.env.flush_all()  # here: an error of the folded values is caught with the savepoint

    def _workflow_check_kept(self, vals):
        """Raise if these records do not hold the (non-relational) values of ``vals``."""
        for name, value in vals.items():
            field = self._fields[name]
            if field.type in ("one2many", "many2many"):
                continue
            expected = field.convert_to_record(field.convert_to_cache(value, self, validate=False), self)
            if any(record[name] != expected for record in self):
                raise FoldedValueChanged(name)

    def _workflow_record_folded(self, plan):
        """The runs of the folded actions, done, and the triggers fired on their records."""
        Run = self.env["workflow.automation.run"].sudo()
        Run._insert([
            vals
            for trigger, records in plan
            for action in trigger.action_ids
            for vals in Run._prepare_vals_list(action, records, self.env.user, "done")
        ])
        self.env.cr.postcommit.data.setdefault(FIRED_KEY, set()).update(
            (trigger.id, record_id) for trigger, records in plan for record_id in records.ids
        )


def _merged(vals, later):
    """``vals``, then ``later`` written after them: a later value replaces an earlier one, and
    the commands of a relation add up."""
    merged = dict(vals)
    for name, value in later.items():
        if isinstance(value, list) and isinstance(merged.get(name), list):
            merged[name] = merged[name] + value
        else:
            merged[name] = value
    return merged
