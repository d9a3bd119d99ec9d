"""Follow-ups: the "Add a follow-up" action, which schedules one activity or applies an
activity plan; its "When completed" effect, run when the last of its activities on a record
is marked done; and its option to complete itself when the record leaves the stage.

A feature over the engine, not part of it: it extends the action, the trigger, the runs and
the mixin here (one concern, several models), and the activities in ``mail_activity.py``.
It hooks into the engine where the engine offers it: the action's ``_effect_kinds`` and
``_required_parameters`` (checks), the trigger's ``_get_index_events`` and the mixin's
``_workflow_event_matches`` (the write); the "when completed" effect runs as actions do.
"""

from dateutil.relativedelta import relativedelta
from markupsafe import Markup

from odoo import _, api, fields, models
from odoo.exceptions import UserError
from odoo.tools import SQL
from odoo.tools.misc import format_date

from .workflow_automation_kinds import FOLLOWUP_EFFECTS, kinds_of_target, selection

# The pseudo-event of the records leaving a stage where follow-ups complete themselves on
# leaving: the trigger index lists under it the triggers having such follow-ups.
FOLLOWUP_STAGE_LEFT = "followup_stage_left"


class WorkflowAutomationAction(models.Model):
    _inherit = "workflow.automation.action"

    available_followup_effects = fields.Json(string="Effects offered", compute="_compute_available_followup_effects")
    # One activity, or an activity plan
    followup_mode = fields.Selection(
        [("activity", "Schedule one activity"), ("plan", "Apply an activity plan")],
        string="Follow-up",
        default="activity",
        required=True,
    )
    activity_plan_id = fields.Many2one(
        "mail.activity.plan",
        string="Activity plan",
        ondelete="restrict",
        domain="[('res_model', '=', target)]",
        help="Odoo's sequence of activities, applied as the “Schedule activity” dialog applies it: "
        "each activity's deadline and responsible come from the plan.",
    )
    followup_effect = fields.Selection(
        selection(FOLLOWUP_EFFECTS),
        string="When completed",
        default="none",
        required=True,
        help="Done when the last open activity of this follow-up on a record is marked done, and only "
        "if the record is still in the stage where the follow-up was added. Closing a project moves it "
        "to its first folded stage.",
    )
    followup_auto_complete = fields.Boolean(
        string="Complete when the record leaves the stage",
        help="When the record moves to another stage, the open activities of this follow-up are marked "
        "done automatically (without running the “When completed” effect).",
    )
    # Activity
    activity_type_id = fields.Many2one("mail.activity.type", ondelete="restrict")
    activity_summary = fields.Char(
        string="Summary", translate=True, help="Accepts placeholders such as {{ object.name }}."
    )
    activity_note = fields.Text(string="Note", translate=True, help="Accepts placeholders such as {{ object.name }}.")
    activity_deadline = fields.Integer(string="Deadline after", help="Deadline counted from the trigger.")
    activity_deadline_unit = fields.Selection(
        [("days", "Days"), ("weeks", "Weeks")], string="Deadline unit", default="days", required=True
    )
    activity_user_mode = fields.Selection(
        [("owner", "Record owner"), ("user", "Chosen user")],
        string="Responsible",
        default="owner",
        required=True,
        help="The owner is the salesperson (opportunities) or the project manager (projects); "
        "a record without one gets the user who triggered the workflow. For a plan, the responsible "
        "of its activities assigned “on demand”.",
    )
    activity_user_id = fields.Many2one("res.users", string="Responsible user", ondelete="restrict")

    @api.depends("target")
    def _compute_available_followup_effects(self):
        for action in self:
            action.available_followup_effects = kinds_of_target(FOLLOWUP_EFFECTS, action.target)

    # ------------------------------------------------------------------
    # Validation
    # ------------------------------------------------------------------

    def _followup_effect(self, vals=None):
        """The "when completed" effect (once ``vals`` are written): follow-ups only have one."""
        vals = vals or {}
        if vals.get("kind", self.kind) != "activity":
            return "none"
        return vals.get("followup_effect", self.followup_effect)

    def _used_parameters(self, vals):
        """A follow-up also uses the parameters of its "when completed" effect."""
        effect = FOLLOWUP_EFFECTS[self._followup_effect(vals)]
        return super()._used_parameters(vals) | self._parameter_fields(effect.parameters)

    def _effect_kinds(self):
        kinds = super()._effect_kinds()
        return (*kinds, self.followup_effect) if self.kind == "activity" else kinds

    def _required_parameters(self):
        if self.kind != "activity":
            return super()._required_parameters()
        # one activity of a type, or a plan; and what its "when completed" effect needs
        required = ["activity_plan_id" if self.followup_mode == "plan" else "activity_type_id"]
        if self.activity_user_mode == "user":
            required.append("activity_user_id")
        return required + list(self._parameter_fields(FOLLOWUP_EFFECTS[self.followup_effect].required))

    @api.constrains("kind", "trigger_id", "followup_mode", "activity_plan_id", "followup_effect")
    def _check_followup(self):
        for action in self.filtered(lambda a: a.kind == "activity"):
            if not FOLLOWUP_EFFECTS[action.followup_effect].applies_to(action.target):
                action._raise_invalid("followup_effect", _("this effect is not available for this target."))
            plan = action.activity_plan_id
            if action.followup_mode != "plan" or not plan:
                continue
            if plan.res_model != action.target:
                action._raise_invalid("activity_plan_id", _("the plan is made for another model."))
            if not plan.template_ids:
                action._raise_invalid("activity_plan_id", _("the plan has no activities."))
            if plan.company_id and plan.company_id != action.workflow_id.company_id:
                action._raise_invalid("activity_plan_id", _("the plan belongs to another company."))

    @api.constrains("activity_deadline", "activity_deadline_unit")
    def _check_activity_deadline(self):
        for action in self:
            action._check_span(
                "activity_deadline", action.activity_deadline_unit, negative=_("the deadline cannot be negative.")
            )

    # ------------------------------------------------------------------
    # Adding the follow-up
    # ------------------------------------------------------------------

    def _execute_activity(self, records):
        """Add the follow-up: one activity, or the activities of a plan."""
        if self.followup_mode == "plan":
            self._apply_activity_plan(records)
        else:
            self._schedule_activity(records)
        if self.followup_auto_complete:
            records._workflow_set_followup_pending(True)

    def _schedule_activity(self, records):
        # written for the responsible, in their language, as Odoo notifies an assigned activity
        responsibles = {record.id: self._activity_responsible(record) for record in records}
        langs = {record_id: user.lang or self.env.lang for record_id, user in responsibles.items()}
        summaries = self._render("activity_summary", records, langs)
        notes = self._render("activity_note", records, langs)
        deadline = fields.Date.context_today(self) + relativedelta(
            **{self.activity_deadline_unit: self.activity_deadline}
        )
        self.env["mail.activity"].create([
            self._followup_activity_vals(
                record, self.activity_type_id, responsibles[record.id], deadline,
                summaries[record.id], notes[record.id],
            )
            for record in records
        ])

    def _apply_activity_plan(self, records):
        """Apply the plan as Odoo's "Schedule activity" dialog does (``mail.activity.schedule``):
        each template's responsible and deadline, and a chatter line listing them; here
        with one creation and one batch of chatter lines for all the records."""
        plan = self.activity_plan_id
        vals_list = []
        bodies = {}
        langs = self._record_langs(records)
        for record in records:
            env = self.with_context(lang=langs[record.id]).env
            lines = []
            for template in plan.template_ids:
                responsible = template._determine_responsible(self._activity_responsible(record), record)
                if responsible["error"]:
                    raise UserError(responsible["error"])
                user = responsible["responsible"]
                deadline = template._get_date_deadline()
                vals_list.append(self._followup_activity_vals(
                    record, template.activity_type_id, user, deadline, template.summary, template.note
                ))
                lines.append(env._(
                    "%(activity)s, assigned to %(name)s, due on the %(deadline)s",
                    activity=template.summary or template.activity_type_id.name,
                    name=user.name,
                    deadline=format_date(env, deadline),
                ))
            bodies[record.id] = Markup("<p>%s</p><ul>%s</ul>") % (
                env._("The plan “%s” has been started", plan.name),
                Markup().join(Markup("<li>%s</li>") % line for line in lines),
            )
        self.env["mail.activity"].create(vals_list)
        records._message_log_batch(bodies)

    def _followup_activity_vals(self, record, activity_type, user, deadline, summary, note):
        """An activity of this follow-up, remembering the action and the record's stage."""
        return {
            "res_model_id": self.env["ir.model"]._get_id(record._name),
            "res_id": record.id,
            "activity_type_id": activity_type.id,
            "summary": summary,
            "note": note,
            "date_deadline": deadline,
            "user_id": user.id,
            "workflow_action_id": self.id,
            "workflow_stage_ref": record.stage_id.id,
        }

    def _activity_responsible(self, record):
        if self.activity_user_mode == "user" and self.activity_user_id:
            return self.activity_user_id
        return record.user_id or self.env.user

    # ------------------------------------------------------------------
    # Follow-ups completed: the "when completed" effect
    # ------------------------------------------------------------------

    def _complete_followup(self, records, stage_refs, user):
        """Run the effect on ``records``, whose last open activity of this follow-up ``user``
        just marked done; ``stage_refs``: ``{record id: its stage when the follow-up was added}``.

        Its runs go through the engine's one path: done, failed (the user's "mark done" stays),
        or skipped with the reason.
        """
        self.ensure_one()
        Run = self.env["workflow.automation.run"].sudo()
        vals_list = Run._prepare_vals_list(self, records, user, "scheduled", followup_effect=True)
        for vals in vals_list:
            vals["stage_ref"] = stage_refs[vals["res_id"]]
        Run._insert(vals_list)._execute_scheduled()

    def _followup_done_text(self):
        """The message of a follow-up's effect that ran, for who reads the runs."""
        readers = self.workflow_id._in_readers_lang().env
        effect = dict(self._fields["followup_effect"]._description_selection(readers))[self.followup_effect]
        return readers._("Follow-up completed: %s.", effect)


class WorkflowAutomationTrigger(models.Model):
    _inherit = "workflow.automation.trigger"

    def _get_index_events(self):
        events = super()._get_index_events()
        if self.action_ids.filtered(lambda action: action.kind == "activity" and action.followup_auto_complete):
            events.append(FOLLOWUP_STAGE_LEFT)
        return events


class WorkflowAutomationRun(models.Model):
    _inherit = "workflow.automation.run"

    followup_effect = fields.Boolean(
        string="Follow-up completed",
        help="The run of a follow-up's “When completed” effect, not of the action itself.",
    )

    def _batch_key(self):
        return (*super()._batch_key(), self.followup_effect)

    def _kind_to_run(self, action):
        return action.followup_effect if self.followup_effect else super()._kind_to_run(action)

    def _done_message(self, action):
        return action._followup_done_text() if self.followup_effect else super()._done_message(action)

    def _skip_reason_on(self, record):
        if self.followup_effect:
            return self._followup_skip_reason(self.action_id, record, self.stage_ref)
        return super()._skip_reason_on(record)

    @api.model
    def _followup_skip_reason(self, action, record, stage_ref):
        """Why the effect of ``action``, a completed follow-up, must not run on ``record``, or None."""
        if not action.workflow_id.active:
            return _("The workflow was switched off.")
        if action._followup_effect() == "none":
            return _("The follow-up no longer has an effect when completed.")
        if record.stage_id.id != stage_ref:
            return _("The record left the stage it was in when the follow-up was added.")
        return None


class WorkflowAutomationMixin(models.AbstractModel):
    _inherit = "workflow.automation.mixin"

    # Read with the stage, at no cost: a stage write looks for follow-ups to complete only
    # on the records that have some.
    workflow_followup_pending = fields.Boolean(
        string="Has self-completing follow-ups",
        readonly=True,
        copy=False,
        help="The record has (or had) open follow-ups that complete themselves when it leaves its stage.",
    )

    # ------------------------------------------------------------------
    # Follow-ups that complete themselves when the record leaves the stage
    # ------------------------------------------------------------------

    def _workflow_event_fields(self):
        return {**super()._workflow_event_fields(), FOLLOWUP_STAGE_LEFT: {"stage_id"}}

    def _workflow_event_matches(self, event, specs, before):
        """Complete the follow-ups left behind: no trigger fires on this event."""
        if event != FOLLOWUP_STAGE_LEFT:
            return super()._workflow_event_matches(event, specs, before)
        self._workflow_changed("stage_changed", before)._workflow_complete_left_followups()
        return []

    def _workflow_set_followup_pending(self, value):
        """Flag the records having self-completing follow-ups, in SQL: the flag is the
        engine's bookkeeping, not a change of the record (``write_date`` is what the
        inactivity trigger watches)."""
        if not self:
            return
        self.env.cr.execute(SQL(
            "UPDATE %s SET workflow_followup_pending = %s WHERE id IN %s",
            SQL.identifier(self._table), value, tuple(self.ids),
        ))
        self.invalidate_recordset(["workflow_followup_pending"])

    def _workflow_complete_left_followups(self):
        """Mark done the open self-completing follow-ups of switched-on workflows that were
        added in another stage than the record's; no query for records without any."""
        pending = self.filtered("workflow_followup_pending")
        if not pending:
            return
        activities = self.env["mail.activity"].sudo().search([
            ("res_model", "=", self._name),
            ("res_id", "in", pending.ids),
            ("workflow_action_id.followup_auto_complete", "=", True),
        ])
        stages = {record.id: record.stage_id.id for record in pending}
        left = activities.filtered(
            lambda activity: activity.workflow_stage_ref != stages[activity.res_id]
            and activity.workflow_action_id.workflow_id.active
        )
        still_pending = set((activities - left).mapped("res_id"))
        if left:
            left._workflow_complete_on_stage_leave()
        pending.filtered(lambda record: record.id not in still_pending)._workflow_set_followup_pending(False)
