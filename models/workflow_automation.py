import uuid
from collections import Counter, defaultdict
from datetime import timedelta
from typing import NamedTuple

from markupsafe import Markup

from odoo import _, api, fields, models, tools
from odoo.exceptions import UserError, ValidationError
from odoo.tools import SQL, format_datetime

from .workflow_automation_kinds import SCOPE, role_field
from .workflow_automation_mixin import FOLLOWUP_STAGE_LEFT

# Set while a workflow is being switched on: then no parameter may be left empty.
SWITCHING_ON_KEY = "workflow_automation_switching_on"

# The version of the workflows the trigger index is cached for (a system parameter), and the key
# of the version this transaction sees in ``cr.postcommit.data``
INDEX_VERSION_PARAM = "crm_workflow_automation.trigger_index_version"
INDEX_VERSION_KEY = "workflow_automation.index_version"
# The followers of a workflow hear of its failures at most once per this period.
FAILURE_NOTIFICATION_PERIOD = timedelta(hours=1)
# Run states that mean the engine ran (or decided not to run) an action
EXECUTED_STATES = ("done", "failed", "skipped")

TARGET_MODELS = [
    ("crm.lead", "Opportunities and leads"),
    ("project.project", "Projects"),
]


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
    # None for a switched-on workflow; for a switched-off one, the ids of its test records,
    # the only records it fires on (DESIGN.md principle 9)
    only_ids: frozenset | None
    # "a field changes": the names of the fields, and the values it changes from and to (None: any)
    changed_fields: frozenset = frozenset()
    changed_from: object = None
    changed_to: object = None

    def fires_for(self, user, importing):
        """Whether a change made by ``user`` (through an import if ``importing``) fires this trigger."""
        if importing and not self.on_import:
            return False
        if self.user_ids is None or user.id in self.user_ids:
            return True
        # the user's groups, implied ones included, are cached by res.users: no query per write
        return bool(self.group_ids) and not self.group_ids.isdisjoint(user._get_group_ids())


class WorkflowAutomation(models.Model):
    _name = "workflow.automation"
    _description = "Workflow Automation"
    _inherit = ["mail.thread"]
    _order = "sequence, id"

    name = fields.Char(required=True, translate=True, tracking=True)
    description = fields.Text(translate=True)
    active = fields.Boolean(
        string="On",
        default=False,
        tracking=True,
        help="Only switched-on workflows fire. A switched-on workflow cannot be edited.",
    )
    sequence = fields.Integer(default=10)
    target = fields.Selection(
        TARGET_MODELS,
        required=True,
        default="crm.lead",
        tracking=True,
        help="The records this workflow watches.",
    )
    # The scope: the field whose comodel is the target's scope model (see the mixin)
    team_ids = fields.Many2many(
        "crm.team",
        string="Pipelines",
        workflow_role=SCOPE,
        help="Pipelines whose opportunities fire this workflow. Leave empty for all pipelines.",
    )
    project_ids = fields.Many2many(
        "project.project",
        string="Projects",
        workflow_role=SCOPE,
        help="Projects that fire this workflow. Leave empty for all projects.",
    )
    scope_field = fields.Char(string="Scope field", compute="_compute_scope_field")
    company_id = fields.Many2one(
        "res.company",
        required=True,
        default=lambda self: self.env.company,
        help="The workflow acts only on records of this company (or of no company).",
    )
    is_preset = fields.Boolean(
        string="Preset",
        readonly=True,
        copy=False,
        help="A ready-made workflow, never switched on: use it to make a workflow of your own.",
    )
    preset_id = fields.Many2one(
        "workflow.automation",
        string="Made from preset",
        readonly=True,
        copy=False,
        ondelete="set null",
        domain=[("is_preset", "=", True)],
    )
    triggered_by = fields.Selection(
        [("everyone", "Everyone"), ("chosen", "Only chosen users and groups")],
        string="Whose changes fire it",
        default="everyone",
        required=True,
        help="Changes made by other users do not fire this workflow. Date and inactivity triggers, "
        "which no change fires, are not concerned.",
    )
    trigger_user_ids = fields.Many2many(
        "res.users",
        "workflow_automation_trigger_user_rel",
        "workflow_id",
        "user_id",
        string="Users",
        help="Users whose changes fire this workflow.",
    )
    trigger_group_ids = fields.Many2many(
        "res.groups",
        "workflow_automation_trigger_group_rel",
        "workflow_id",
        "group_id",
        string="Groups",
        help="Members of these groups (directly or through an implied group) fire this workflow.",
    )
    run_on_import = fields.Boolean(
        string="Also run on imported records",
        help="Records created or updated by an import (Favorites > Import records) fire this workflow "
        "too. Off by default: importing a thousand leads would otherwise e-mail a thousand customers.",
    )
    trigger_ids = fields.One2many("workflow.automation.trigger", "workflow_id", string="Triggers", copy=True)
    run_ids = fields.One2many("workflow.automation.run", "workflow_id", string="Runs")
    # The usage report (computed together, in one query for a page of workflows)
    run_count = fields.Integer(compute="_compute_run_stats", string="Runs count")
    run_failed_count = fields.Integer(compute="_compute_run_stats", string="Failed runs")
    run_skipped_count = fields.Integer(compute="_compute_run_stats", string="Skipped runs")
    run_scheduled_count = fields.Integer(compute="_compute_run_stats", string="Scheduled runs")
    last_run_date = fields.Datetime(
        compute="_compute_run_stats", string="Last run", help="When an action of this workflow last ran or was skipped."
    )
    failure_notified_at = fields.Datetime(
        string="Followers told of a failure on",
        readonly=True,
        copy=False,
        help="The followers hear of failures at most once an hour.",
    )
    test_record_count = fields.Integer(compute="_compute_test_record_count", string="Test records")

    def _valid_field_parameter(self, field, name):
        return name == "workflow_role" or super()._valid_field_parameter(field, name)

    @api.depends("target")
    def _compute_scope_field(self):
        for workflow in self:
            workflow.scope_field = workflow.target and self.env[workflow.target]._workflow_field_of(self, SCOPE)

    def _scope(self):
        """The pipelines, projects, ... this workflow fires for; empty: all of them."""
        self.ensure_one()
        return self[self.scope_field] if self.scope_field else self.env["workflow.automation.mixin"]

    @api.depends("run_ids")
    def _compute_run_stats(self):
        counts = defaultdict(dict)
        last_dates = defaultdict(list)
        for workflow, state, count, last_date in self.env["workflow.automation.run"]._read_group(
            [("workflow_id", "in", self.ids)], ["workflow_id", "state"], ["__count", "date:max"]
        ):
            counts[workflow.id][state] = count
            if state in EXECUTED_STATES:
                last_dates[workflow.id].append(last_date)
        for workflow in self:
            by_state = counts[workflow.id]
            workflow.run_count = sum(by_state.values())
            workflow.run_failed_count = by_state.get("failed", 0)
            workflow.run_skipped_count = by_state.get("skipped", 0)
            workflow.run_scheduled_count = by_state.get("scheduled", 0)
            workflow.last_run_date = max(last_dates[workflow.id], default=False)

    def _compute_test_record_count(self):
        self.test_record_count = 0
        for target, workflows in self.filtered("target").grouped("target").items():
            counts = dict(self.env[target].sudo().with_context(active_test=False)._read_group(
                [("workflow_test_id", "in", workflows.ids)], ["workflow_test_id"], ["__count"]
            ))
            for workflow in workflows:
                workflow.test_record_count = counts.get(workflow, 0)

    @api.constrains("triggered_by", "trigger_user_ids", "trigger_group_ids")
    def _check_triggered_by(self):
        for workflow in self.filtered(lambda w: w.triggered_by == "chosen"):
            if not workflow.trigger_user_ids and not workflow.trigger_group_ids:
                self.env["workflow.automation.component"]._raise_invalid_field(
                    workflow,
                    _("Workflow “%s”", workflow.display_name),
                    "trigger_user_ids",
                    _("choose at least one user or group whose changes fire it."),
                )

    # ------------------------------------------------------------------
    # Switched-on workflows are locked
    # ------------------------------------------------------------------

    def _bookkeeping_fields(self):
        """Written by the engine or the chatter: neither locked nor part of the trigger index."""
        return {"failure_notified_at"} | set(self.env["mail.thread"]._fields)

    def _fields_editable_while_on(self):
        """Switching off, reordering and the chatter stay possible on a live workflow."""
        return {"active", "sequence"} | self._bookkeeping_fields()

    def _check_editable(self):
        live = self.filtered("active")
        if live:
            raise UserError(
                _(
                    "The workflow “%(name)s” is switched on: switch it off first, then edit it.",
                    name=live[0].display_name,
                )
            )

    def _may_be_incomplete(self):
        """A preset, or a switched-off workflow made from one, may leave parameters empty
        (a stage or a user that only the admin knows): they are checked on switching on."""
        self.ensure_one()
        if self.env.context.get(SWITCHING_ON_KEY):
            return False
        return self.is_preset or bool(self.preset_id and not self.active)

    @api.constrains("active", "is_preset")
    def _check_preset_switched_off(self):
        for workflow in self.filtered(lambda w: w.active and w.is_preset):
            raise ValidationError(_(
                "The preset “%s” cannot be switched on: use it to make a workflow of your own.", workflow.name
            ))

    def _check_complete(self):
        """Run every check of the triggers and actions again, as if nothing could be empty."""
        workflows = self.with_context(**{SWITCHING_ON_KEY: True})
        for components in (workflows.trigger_ids, workflows.trigger_ids.action_ids):
            components._validate_fields(components._fields)

    def write(self, vals):
        if set(vals) - self._fields_editable_while_on() and vals.get("active", True):
            self._check_editable()
        if vals.get("active"):
            self.filtered("preset_id")._check_complete()
        result = super().write(vals)
        if set(vals) - self._bookkeeping_fields():
            self._invalidate_trigger_index()
        return result

    @api.model_create_multi
    def create(self, vals_list):
        """A workflow may be created switched on with its triggers and actions (as in a
        consultant's XML file): it is built switched off, then switched on."""
        switch_on = [vals.get("active", False) for vals in vals_list]
        workflows = super().create([{**vals, "active": False} for vals in vals_list])
        workflows.browse(w.id for w, on in zip(workflows, switch_on, strict=True) if on).active = True
        self._invalidate_trigger_index()
        return workflows

    @api.ondelete(at_uninstall=False)
    def _unlink_except_switched_on(self):
        self._check_editable()

    def unlink(self):
        for workflow in self:
            workflow._remove_test_records()
        runs = self.env["workflow.automation.run"].sudo().search([("workflow_id", "in", self.ids)])
        runs.filtered(lambda run: run.state == "scheduled").write(
            {"state": "cancelled", "message": _("The workflow was deleted.")}
        )
        runs.write({"workflow_id": False, "trigger_id": False, "action_id": False})
        runs.flush_recordset()
        result = super().unlink()
        self._invalidate_trigger_index()
        return result

    def copy_data(self, default=None):
        vals_list = super().copy_data(default=default)
        if default and "name" in default:
            return [dict(vals, active=False) for vals in vals_list]
        return [dict(vals, name=self.env._("%s (copy)", workflow.name), active=False)
                for workflow, vals in zip(self, vals_list, strict=True)]

    # ------------------------------------------------------------------
    # The scope never widens
    # ------------------------------------------------------------------

    @api.model
    def _switch_off_losing_scope(self, records):
        """``records`` (pipelines or projects) are being deleted. An empty scope means *all*:
        a workflow left without any would fire everywhere, so it is switched off instead,
        and its followers are told. Archived ones stay in the scope, which they still limit."""
        field_name = role_field(self, SCOPE, records._name)
        field = self._fields[field_name]._description_string(self.env)
        workflows = self.sudo().with_context(active_test=False).search([(field_name, "in", records.ids)])
        for workflow in workflows.filtered(lambda w: not w[field_name] - records):
            record_names = ", ".join((records & workflow[field_name]).mapped("display_name"))
            if workflow.active:
                workflow.active = False
                body = _(
                    "“%(records)s” was deleted and the field “%(field)s” of this workflow is now empty, "
                    "which means all of them: the workflow is switched off so that it does not fire on every one. "
                    "Fill in “%(field)s”, then switch it on again.",
                    records=record_names, field=field,
                )
            else:
                body = _(
                    "“%(records)s” was deleted and the field “%(field)s” of this workflow is now empty, "
                    "which means all of them: fill it in before switching the workflow on.",
                    records=record_names, field=field,
                )
            workflow.message_post(body=body, subtype_xmlid="mail.mt_comment")

    # ------------------------------------------------------------------
    # The trigger index (DESIGN.md principle 2)
    # ------------------------------------------------------------------

    @api.model
    def _get_trigger_index(self, model_name):
        """Return ``{event: (TriggerSpec, ...)}`` for the workflows that may fire on a model:
        the switched-on ones, and the switched-off ones that have test records.

        The result holds only ids and plain values, never records, so it can live in the
        registry cache, per version of the workflows (see ``_trigger_index_version``).
        Triggers with follow-ups that complete themselves when the record leaves its stage
        are also listed under ``FOLLOWUP_STAGE_LEFT``.
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
            index[trigger.kind].append(spec)
            if trigger.action_ids.filtered(lambda action: action.kind == "activity" and action.followup_auto_complete):
                index[FOLLOWUP_STAGE_LEFT].append(spec)
        return {event: tuple(specs) for event, specs in index.items()}

    @api.model
    def _get_test_record_ids(self, model_name):
        """``{workflow id: frozenset of the ids of its test records}`` for a model."""
        groups = self.env[model_name].sudo().with_context(active_test=False)._read_group(
            [("workflow_test_id", "!=", False)], ["workflow_test_id"], ["id:array_agg"]
        )
        return {workflow.id: frozenset(ids) for workflow, ids in groups}

    # ------------------------------------------------------------------
    # Test records (DESIGN.md principle 9)
    # ------------------------------------------------------------------

    def _test_records(self):
        """The test records made for this workflow, archived (lost) ones included."""
        self.ensure_one()
        return self.env[self.target].sudo().with_context(active_test=False).search(
            [("workflow_test_id", "=", self.id)]
        )

    def _remove_test_records(self):
        """Delete this workflow's test records and every run on them; return how many.

        The records are deleted as ``unlink`` does (their activities and messages go too),
        with the user's rights: a record the user may not delete stops the removal with
        Odoo's access error rather than being left behind.
        """
        self.ensure_one()
        records = self._test_records().with_env(self.env)
        if not records:
            return 0
        records.check_access("unlink")
        runs = self.env["workflow.automation.run"].sudo().search(
            [("res_model", "=", self.target), ("res_id", "in", records.ids)]
        )
        records.unlink()
        runs.unlink()
        return len(records)

    def action_remove_test_records(self):
        self.check_access("write")
        for workflow in self:
            count = workflow._remove_test_records()
            if count:
                workflow.message_post(body=_("%s test record(s) removed, with their runs.", count))
        return True

    def action_open_test_records(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": _("Test records of “%s”", self.name),
            "res_model": self.target,
            "views": [(False, "list"), (False, "kanban"), (False, "form")],
            "domain": [("workflow_test_id", "=", self.id)],
            "context": {"active_test": False, "create": False},
        }

    # ------------------------------------------------------------------
    # Buttons
    # ------------------------------------------------------------------

    def action_use_preset(self):
        """Open the wizard making a switched-off workflow of your own from this preset."""
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": _("Use this preset"),
            "res_model": "workflow.automation.preset.wizard",
            "view_mode": "form",
            "target": "new",
            "context": {"default_preset_id": self.id},
        }

    def action_open_runs(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "crm_workflow_automation.workflow_automation_run_action"
        )
        action["domain"] = [("workflow_id", "=", self.id)]
        action["context"] = {"default_workflow_id": self.id}
        return action

    def action_open_runs_in_state(self):
        """The smart buttons of the usage report: the runs of one state."""
        action = self.action_open_runs()
        state = self.env.context.get("run_state")
        action["context"] = dict(action["context"], **{f"search_default_{state}": 1})
        return action

    # ------------------------------------------------------------------
    # Failures
    # ------------------------------------------------------------------

    def _readers_lang(self):
        """The language of who reads about this workflow's runs: most of its followers', else its
        company's (not the language of whoever happened to trigger it)."""
        langs = Counter(lang for lang in self.sudo().message_partner_ids.mapped("lang") if lang)
        return langs.most_common(1)[0][0] if langs else self.company_id.partner_id.lang or self.env.lang

    def _in_readers_lang(self):
        return self.with_context(lang=self._readers_lang())

    def _notify_failure(self, runs):
        """Tell the followers that ``runs`` failed: once per workflow and hour at most,
        with the number of failures since they were last told. The system tells them, in
        their language: not the user whose change made the action run."""
        self.ensure_one()
        now = fields.Datetime.now()
        last = self.failure_notified_at
        if last and now < last + FAILURE_NOTIFICATION_PERIOD:
            return
        workflow = self._in_readers_lang().sudo()
        env = workflow.env
        lines = [
            env._(
                "The action “%(action)s” failed on %(count)s record(s), such as “%(record)s”: %(error)s",
                action=action.with_env(env).display_name or env._("(deleted)"),
                count=len(action_runs),
                record=action_runs[0].record_name,
                error=action_runs[0].message,
            )
            for action, action_runs in runs.grouped("action_id").items()
        ]
        if last:
            failures = env["workflow.automation.run"].search_count(
                [("workflow_id", "=", self.id), ("state", "=", "failed"), ("date", ">", last)]
            )
            lines.append(env._(
                "%(count)s failure(s) since the last notification, on %(date)s.",
                count=failures,
                date=format_datetime(env, last, dt_format="short"),
            ))
        lines.append(env._("Further failures within the hour are counted in the next notification."))
        workflow.failure_notified_at = now
        workflow.message_post(
            body=Markup("<br/>").join(lines),
            subtype_xmlid="mail.mt_comment",
            author_id=env.ref("base.partner_root").id,
        )
