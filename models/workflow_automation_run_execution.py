"""The engine's one execution path (DESIGN.md principles 3, 4, 6 and 9).

Every action run is a run row, inserted in bulk for the batch, then executed by
``_execute_scheduled``: at once in the user's transaction, or later from the queue's cron.
Both share the same code for rights and company, savepoints, test-record holding, outcome
recording and failure notices, as OCA queue_job's ``Job`` owns a job's whole lifecycle.
"""

import logging
from collections import defaultdict, deque
from contextlib import contextmanager
from copy import copy
from operator import itemgetter

from markupsafe import Markup

from odoo import api, fields, models
from odoo.service.model import PG_CONCURRENCY_EXCEPTIONS_TO_RETRY
from odoo.tools import SQL

from .workflow_automation_action import OUTBOUND_KINDS, QUEUED_KINDS
from .workflow_automation_mixin import DEPTH_CONTEXT_KEY

_logger = logging.getLogger(__name__)

# The run columns written by ``_insert``, with their value when a row leaves them out
INSERTED_DEFAULTS = {
    "action_id": None, "action_kind": None, "res_model": None, "res_id": None, "record_name": None, "state": None,
    "date": None, "date_due": None, "occurrence": None, "stage_ref": 0, "followup_effect": False, "message": None,
    "is_test": False,
}
# The column ``_insert`` always sends as an array: it gives the number of rows
ROW_COLUMN = "res_id"


def _column_values(field, values):
    """Runs' values as their column takes them: the ORM's False for "empty" is NULL but for booleans."""
    return values if field.type == "boolean" else [None if value is False else value for value in values]


class WorkflowAutomationRun(models.Model):
    _inherit = "workflow.automation.run"

    # ------------------------------------------------------------------
    # Run rows, in bulk
    # ------------------------------------------------------------------

    @api.model
    def _prepare_vals_list(self, action, records, user, state, **vals):
        """The runs of ``action`` on ``records`` for ``user``'s change, with ``vals`` in common."""
        return self._prepare_vals_list_of(action._run_vals(), records, user, state, **vals)

    @api.model
    def _prepare_vals_list_of(self, run_vals, records, user, state, **vals):
        """The runs of the action whose ``_run_vals`` are ``run_vals`` (as the trigger index
        keeps them) on ``records``, for ``user``'s change, with ``vals`` in common."""
        shared = {**run_vals, "res_model": records._name, "state": state, "user_id": user.id, **vals}
        # read for the whole batch, which seldom holds a test record
        test_ids = set(records.filtered("workflow_test_id")._ids) if records.workflow_test_id else ()
        return [
            dict(shared, res_id=record_id, record_name=name, is_test=record_id in test_ids)
            for record_id, name in zip(records._ids, records._workflow_display_names(), strict=True)
        ]

    @api.model
    def _insert(self, vals_list):
        """Insert run rows, with their firings, in one query per firing, and return them.

        The ORM's ``create`` costs far more than the action on a large batch; runs have no
        computed stored field, no tracking and no default that a row leaves out, so a plain
        INSERT is enough. A value that all the rows share (the action, the state...) is sent
        once, the others as one array a column: the statement does not grow with the batch.
        Callers say what the rows mean: ``_announce`` them, or execute them.
        """
        names = self._firing_fields()
        firing_of = itemgetter(*names)
        groups = defaultdict(list)
        for vals in vals_list:
            groups[firing_of(vals)].append(vals)
        run_ids = []
        for firing, group in groups.items():
            run_ids += self._insert_fired(dict(zip(names, firing, strict=True)), group)
        return self.browse(run_ids)

    @api.model
    def _insert_fired(self, firing, vals_list):
        """Insert the runs of ``vals_list`` and their firing, whose values are ``firing``; return their ids."""
        now = fields.Datetime.now()
        columns = {name: [vals.get(name, default) for vals in vals_list] for name, default in INSERTED_DEFAULTS.items()}
        columns["date"] = [date or now for date in columns["date"]]
        selected, arrays, array_names = [], [], []
        for name, values in columns.items():
            field = self._fields[name]
            values = _column_values(field, values)
            column_type = SQL(field.column_type[1])
            if name != ROW_COLUMN and values.count(values[0]) == len(values):
                selected.append(SQL("%s::%s", values[0], column_type))
            else:
                selected.append(SQL("batch.%s", SQL.identifier(name)))
                arrays.append(SQL("%s::%s[]", values, column_type))
                array_names.append(SQL.identifier(name))
        self.env.cr.execute(SQL(
            """WITH firing AS (INSERT INTO workflow_automation_firing (%s) VALUES %s RETURNING id)
               INSERT INTO workflow_automation_run (firing_id, %s)
               SELECT firing.id, %s FROM firing, unnest(%s) AS batch(%s) RETURNING id""",
            SQL(", ").join(map(SQL.identifier, firing)),
            tuple(value or None for value in firing.values()),
            SQL(", ").join(map(SQL.identifier, columns)),
            SQL(", ").join(selected),
            SQL(", ").join(arrays),
            SQL(", ").join(array_names),
        ))
        return [row[0] for row in self.env.cr.fetchall()]

    def _announce(self):
        """What these new rows call for: a chatter line for what is delayed, the queue woken for
        what is scheduled, the followers told of what failed."""
        scheduled = self.filtered(lambda run: run.state == "scheduled")
        scheduled.filtered("action_id.delay")._log_on_records()  # not what is only sent in the background
        scheduled._wake_queue()
        self._notify_failures()

    # ------------------------------------------------------------------
    # Execution: the one entry, for immediate and due runs
    # ------------------------------------------------------------------

    def _execute_scheduled(self):
        """Execute these runs now, each action once for all its records and triggering user;
        record the outcomes, tell the followers of failures, wake the queue for retries.

        A run is skipped, with the reason, when its workflow was switched off, its record or
        action deleted, or its record left the stage it had to stay in.
        """
        records = self._existing_records()
        outcomes = {}
        batches = defaultdict(self.browse)
        for run in self:
            # written for who reads the runs, whoever runs the queue
            reason = run.with_context(lang=run.workflow_id._readers_lang())._skip_reason(
                records.get((run.res_model, run.res_id))
            )
            if reason:
                outcomes[run.id] = {"state": "skipped", "message": reason}
            else:
                batches[run._batch_key()] |= run
        for runs in batches.values():
            outcomes.update(runs._perform(runs[0].action_id.sudo(), runs[0].user_id))
        self._record_outcomes(outcomes)
        self._notify_failures()
        self.filtered(lambda run: run.state == "scheduled")._wake_queue()  # webhooks to try again

    def _existing_records(self):
        """``{(model, id): record}`` for the runs' records that still exist, read together."""
        records = {}
        for model, runs in self.grouped("res_model").items():
            for record in self.env[model].sudo().browse(runs.mapped("res_id")).exists():
                records[model, record.id] = record
        return records

    def _batch_key(self):
        """The runs executed together: those of one action, for one triggering user."""
        return self.action_id, self.user_id

    def _kind_to_run(self, action):
        """What these runs execute: their action's kind (a feature's runs may run another)."""
        return action.kind

    def _done_message(self, action):
        """The message of these runs once done, if they have one."""
        return False

    def _perform(self, action, user):
        """Run what these runs of ``action`` execute, on their records, as the actions act:
        elevated rights, in the workflow's company, one link deeper in the chain of workflows.
        Return ``{run id: its new values}``."""
        if not self:
            return {}
        depth = self.env.context.get(DEPTH_CONTEXT_KEY, 0) + 1
        records = action.trigger_id._actors(
            self.env[self[0].res_model].with_user(user or self.env.user).browse(self.mapped("res_id")), depth
        )
        action = action.with_env(records.env)
        kind = self[0]._kind_to_run(action)
        if kind in QUEUED_KINDS:
            return self._deliver_webhooks(action, records)
        errors, notes = self._execute_isolating_failures(action, records, kind)
        done = self[0]._done_message(action)
        return {
            run.id: {
                "state": "failed" if run.res_id in errors else "done",
                "message": errors.get(run.res_id) or notes.get(run.res_id) or done,
            }
            for run in self
        }

    def _record_outcomes(self, outcomes):
        """Write ``{run id: values}``: one UPDATE per distinct set of values (most runs of a
        batch share theirs), with the values in cache."""
        if not outcomes:
            return
        now = fields.Datetime.now()
        groups = defaultdict(list)
        for run_id, vals in outcomes.items():
            groups[tuple(sorted({"date": now, **vals}.items()))].append(run_id)
        for items, run_ids in groups.items():
            self.env.cr.execute(SQL(
                "UPDATE workflow_automation_run SET %s WHERE id IN %s",
                SQL(", ").join(
                    SQL("%s = %s", SQL.identifier(name), _column_values(self._fields[name], [value])[0])
                    for name, value in items
                ),
                tuple(run_ids),
            ))
            runs = self.browse(run_ids)
            for name, value in items:
                field = self._fields[name]
                self.env.cache.update(runs, field, [field.convert_to_cache(value, runs, validate=False)] * len(runs))

    # ------------------------------------------------------------------
    # Savepoints: a failing action never loses the user's change (DESIGN.md principle 4)
    # ------------------------------------------------------------------

    def _execute_isolating_failures(self, action, records, kind):
        """The batch at once; if it fails, record by record, to find the failing ones.

        Return ``(errors, notes)``: ``{record id: error text}`` for the records the action
        failed on, and ``{record id: text}`` that it reported for the others.
        """
        error, notes = self._execute_in_savepoint(action, records, kind)
        if not error:
            return {}, notes
        if len(records) == 1:
            return {records.id: error}, {}
        errors = {}
        for record in records:
            record_error, record_notes = self._execute_in_savepoint(action, record, kind)
            if record_error:
                errors[record.id] = record_error
            notes.update(record_notes)
        return errors, notes

    @api.model
    @contextmanager
    def _savepoint(self):
        """A savepoint that leaves the precommit hooks (mail tracking) to the commit.

        Odoo's default savepoint runs them on entering, which posts the tracking message
        of every record of the batch one by one, in the middle of the user's write. Here
        the hooks' state, and what the engine keeps for the transaction (the triggers
        already fired), are put back if the block fails. Enter it with the ORM flushed,
        unless what is pending is to be undone with the block.
        """
        hooks = (self.env.cr.precommit, self.env.cr.postcommit)
        saved = [(deque(hook._funcs), {key: copy(value) for key, value in hook.data.items()}) for hook in hooks]
        try:
            with self.env.cr.savepoint(flush=False):
                yield
                self.env.flush_all()
        except Exception:
            self.env.transaction.clear()  # the cache may hold values that were rolled back
            for hook, (funcs, data) in zip(hooks, saved, strict=True):
                hook._funcs, hook.data = funcs, data
            raise

    def _execute_in_savepoint(self, action, records, kind):
        """Return ``(error text or None, notes)``.

        Only the action's own errors are caught. What was pending before it (the user's write)
        is flushed first, outside the savepoint: its errors are not the action's, and caught
        they would leave the transaction aborted. A concurrency error is not the action's
        either: it propagates, for Odoo to retry the whole request on a fresh snapshot.
        """
        self.env.flush_all()
        try:
            with self._savepoint():
                notes = self._execute_holding_outbound(action, records, kind)
        except PG_CONCURRENCY_EXCEPTIONS_TO_RETRY:
            raise
        except Exception as error:  # noqa: BLE001 - any failure must spare the user's write
            _logger.warning("Workflow action %s failed on %s", action.id, records, exc_info=True)
            return action._error_text(error), {}
        return None, notes

    # ------------------------------------------------------------------
    # Test records: what would leave the database is recorded instead (DESIGN.md principle 9)
    # ------------------------------------------------------------------

    @api.model
    def _execute_holding_outbound(self, action, records, kind):
        """Run ``kind`` of ``action`` on ``records``; return ``{record id: note}``."""
        held = records.filtered("workflow_test_id") if kind in OUTBOUND_KINDS else records.browse()
        notes = self._record_not_sent(action, held) if held else {}
        if records - held:
            notes.update(action._execute_kind(records - held, kind))
        return notes

    @api.model
    def _record_not_sent(self, action, records):
        """Say in each test record's chatter what would have been sent, in one batch.

        An outbound kind may describe its effect with ``_describe_<kind>(records)``
        (``{record id: text}``); it runs as the real action would, so that an error
        in, say, the e-mail's template fails the test run as it would fail a real one.
        """
        describe = getattr(action, f"_describe_{action.kind}", None)
        texts = describe(records) if describe else dict.fromkeys(records.ids, action.display_name)
        langs = action._record_langs(records)
        records._message_log_batch({
            record_id: Markup("<p>%s</p>") % action.with_context(lang=langs[record_id]).env._(
                "Test record, not sent: %(effect)s (workflow “%(workflow)s”).",
                effect=text,
                workflow=action.workflow_id.name,
            )
            for record_id, text in texts.items()
        })
        return dict.fromkeys(records.ids, action.workflow_id._in_readers_lang().env._("test: not sent"))
