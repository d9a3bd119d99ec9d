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

import functools
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
        """``[(spec, records)]`` of the triggers this write fires, if all may be folded into
        it; otherwise None. The definitions come from the trigger index: only a condition is
        read, and evaluated.

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
        changed = self.sudo().browse([
            record_id for record_id in self._ids if before[record_id][stage_field] != new_stage
        ])
        fired = data.get(FIRED_KEY, set())
        plan = []
        for spec, records in self._workflow_match(
            sorted({spec for specs in index.values() for spec in specs}, key=lambda spec: spec.rank),
            changed, before, new_stage,
        ):
            records = records.browse([record_id for record_id in records._ids if (spec.id, record_id) not in fired])
            if not records:
                continue
            if spec.fold is None or spec.condition_fields is None:
                return None
            if spec.conditional:
                records = self._workflow_fold_condition(spec, records, vals)
                if records is None:
                    return None
            if records:
                plan.append((spec, records))
        return plan or None

    def _workflow_fold_condition(self, spec, records, vals):
        """Those of ``records`` that match the condition of ``spec``, or None when it cannot be
        told before the write: the condition reads what the write changes, or fails (the
        ordinary way records why)."""
        if spec.condition_fields & self._workflow_dependent_fields(vals):
            return None
        trigger = self.env["workflow.automation.trigger"].sudo().browse(spec.id)
        records, failed_vals = trigger._match_condition(records, self.env.user)
        return None if failed_vals else records

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
        """``([(records, the values the actions of plan write on them)], context)``, the records
        grouped by the values they get, or None when the values cannot be known before writing
        (a value that no longer fits: the ordinary way fails that run), or when they would fire
        a trigger, which must fire one link deeper in the chain, as the ordinary way does."""
        parts = []  # the values of each action on a subset of the records, in order
        record_parts = defaultdict(list)  # {record id: the indexes of its parts}
        context = {}
        try:
            for spec, records in plan:
                for action in spec.fold:
                    context.update(action.context)
                    for subset, action_vals in records._workflow_write_vals(action.kind, action.values):
                        if subset._workflow_events_for(action_vals):
                            return None
                        for record_id in subset._ids:
                            record_parts[record_id].append(len(parts))
                        parts.append(action_vals)
        except Exception:  # noqa: BLE001 - the ordinary way records why
            return None
        groups = defaultdict(list)
        for record_id in self._ids:
            groups[tuple(record_parts.get(record_id, ()))].append(record_id)
        return [
            (self.browse(record_ids), functools.reduce(_merged, (parts[index] for index in indexes), {}))
            for indexes, record_ids in groups.items()
        ], context

    def _workflow_write_folded(self, vals, groups, context):
        """Write ``vals`` with the actions' values of each group of records, and check that the
        model kept them: a model's ``write`` may derive some values from others (Odoo's CRM
        clears the closing date of a lead that changes stage), which the ordinary way writes
        after."""
        for records, action_vals in groups:
            records.with_context(**context)._workflow_write_unhooked(_merged(vals, action_vals))
            records._workflow_check_kept(action_vals)
        self.env.flush_all()  # here: an error of the folded values is caught with the savepoint

    def _workflow_check_kept(self, vals):
        """Raise if these records do not hold the (non-relational) values of ``vals``."""
        for name, value in vals.items():
            field = self._fields[name]
            if field.type in ("one2many", "many2many"):
                continue
            expected = field.convert_to_cache(value, self, validate=False)
            if any(kept != expected for kept in self._workflow_cache_values(name)):
                raise FoldedValueChanged(name)

    def _workflow_record_folded(self, plan):
        """The runs of the folded actions, done, and the triggers fired on their records."""
        Run = self.env["workflow.automation.run"].sudo()
        Run._insert([
            vals
            for spec, records in plan
            for action in spec.fold
            for vals in Run._prepare_vals_list_of(action.run_vals, records, self.env.user, "done")
        ])
        self.env.cr.postcommit.data.setdefault(FIRED_KEY, set()).update(
            (spec.id, record_id) for spec, records in plan for record_id in records.ids
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
