import contextlib
import json
import logging
import math
import re
from collections import deque
from contextlib import contextmanager
from copy import copy
from datetime import timedelta

import pytz
from dateutil.relativedelta import relativedelta
from markupsafe import Markup

from odoo import Command, _, api, fields, models, tools
from odoo.exceptions import AccessError, UserError
from odoo.service.model import PG_CONCURRENCY_EXCEPTIONS_TO_RETRY
from odoo.tools.misc import format_date

from ..services import webhook_transport
from .workflow_automation_kinds import (
    ACTION_KINDS,
    FOLLOWUP_EFFECTS,
    STAGE,
    TAGS,
    codes,
    kinds_of_target,
    selection,
)
from .workflow_automation_mixin import DEPTH_CONTEXT_KEY

_logger = logging.getLogger(__name__)

# Derived from the kinds (the run model and the engine import them)
QUEUED_KINDS = codes(ACTION_KINDS, "queued")
OUTBOUND_KINDS = frozenset(codes(ACTION_KINDS, "outbound"))
# Kinds that create records: each needs a name template ("{{ object.name }}" by default)
CREATING_KINDS = codes(ACTION_KINDS, "creates")

# The texts rendered as inline templates on the records (names, summaries and notes)
TEMPLATE_FIELDS = ("new_name", "activity_summary", "activity_note", "note_body")
TEMPLATE_EDITOR_GROUP = "mail.group_mail_template_editor"
# How Python and the ORM say that a record has no such field
MISSING_FIELD = re.compile(r"'([\w.]+)' object has no attribute '(\w+)'")

# Field type -> the action field holding the value "set a field" writes
SET_FIELD_VALUE_FIELDS = {
    "char": "set_value",
    "text": "set_value",
    "html": "set_value",
    "integer": "set_value",
    "float": "set_value",
    "monetary": "set_value",
    "boolean": "set_value_boolean",
    "date": "set_value_days",
    "datetime": "set_value_days",
    "selection": "set_selection_id",
    "many2one": "set_value_ref",
}

# What a repeat lead takes from the original: its customer
REPEAT_CUSTOMER_FIELDS = ("partner_id", "partner_name", "contact_name", "email_from", "phone")


class WorkflowAutomationAction(models.Model):
    _name = "workflow.automation.action"
    _inherit = ["workflow.automation.component"]
    _description = "Workflow Automation Action"
    _order = "sequence, id"
    _workflow_kinds = ACTION_KINDS

    trigger_id = fields.Many2one("workflow.automation.trigger", required=True, ondelete="cascade", index=True)
    workflow_id = fields.Many2one(related="trigger_id.workflow_id", store=True, index=True)
    # through the trigger's own target: in a form, an unsaved trigger of an unsaved workflow knows it
    target = fields.Selection(related="trigger_id.target")
    available_kinds = fields.Json(string="Kinds offered", compute="_compute_available_kinds")
    available_followup_effects = fields.Json(string="Effects offered", compute="_compute_available_kinds")
    sequence = fields.Integer(default=10)
    kind = fields.Selection(
        selection(ACTION_KINDS),
        string="Action",
        required=True,
    )
    # When
    delay = fields.Integer(help="Run this action this long after the trigger; 0 runs it at once.")
    delay_unit = fields.Selection(
        [("minutes", "Minutes"), ("hours", "Hours"), ("days", "Days"), ("weeks", "Weeks"), ("months", "Months")],
        default="days",
        required=True,
    )
    require_same_stage = fields.Boolean(
        string="Only if still in the stage",
        default=True,
        help="For a delayed action of a stage trigger: when the delay is over, run only if the record "
        "is still in the stage where it was scheduled; otherwise the run is skipped.",
    )
    # Assign
    user_id = fields.Many2one("res.users", ondelete="restrict")
    notify_assignee = fields.Boolean(
        string="Notify the new owner",
        help="Send Odoo's \"you have been assigned\" notification for each record. Off by default, "
        "as for Odoo's own automatic lead assignment: a batch would send one message per record.",
    )
    team_id = fields.Many2one("crm.team", string="Sales team", ondelete="restrict")
    # Follow-up: one activity, or an activity plan
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
    # E-mail
    mail_template_id = fields.Many2one(
        "mail.template", string="E-mail template", ondelete="restrict", domain="[('model', '=', target)]"
    )
    email_from_mode = fields.Selection(
        [("user", "The user who triggered"), ("fixed", "A fixed address")],
        string="Send as",
        default="user",
        required=True,
        help="The user who triggered: the e-mail comes from that user's name and address (for a delayed "
        "e-mail too), whatever the template says. A fixed address: for example a shared mailbox.",
    )
    email_from = fields.Char(string="Sender address", help="For example a shared mailbox: Sales <sales@example.com>")
    # Note
    note_body = fields.Text(string="Note text", translate=True, help="Accepts placeholders such as {{ object.name }}.")
    # Tags
    tag_ids = fields.Many2many("crm.tag", string="Tags", workflow_role=TAGS)
    project_tag_ids = fields.Many2many("project.tags", string="Project tags", workflow_role=TAGS)
    tag_field = fields.Char(string="Tags field", compute="_compute_role_fields")
    # Stage and outcome
    stage_id = fields.Many2one("crm.stage", ondelete="restrict", workflow_role=STAGE)
    # also the stage of the project "create a linked project" creates
    project_stage_id = fields.Many2one(
        "project.project.stage", string="Project stage", ondelete="restrict", workflow_role=STAGE
    )
    stage_field = fields.Char(string="Stage field", compute="_compute_role_fields")
    lost_reason_id = fields.Many2one("crm.lost.reason", string="Lost reason", ondelete="restrict")
    # Webhook
    webhook_url = fields.Char(
        string="URL", help="An http:// or https:// address; the record is sent to it as JSON in a POST request."
    )
    webhook_field_ids = fields.Many2many(
        "ir.model.fields",
        "workflow_automation_action_webhook_field_rel",
        "action_id",
        "field_id",
        string="Fields to send",
        domain="[('model', '=', target), ('ttype', '!=', 'binary')]",
        help="Sent under \"record\", with the record's id and model, the workflow, the trigger and the user "
        "who triggered it.",
    )
    webhook_timeout = fields.Integer(
        string="Timeout", default=10, help="Seconds to wait for the answer to each attempt (1 to 30)."
    )
    webhook_retries = fields.Integer(
        string="Retries",
        default=2,
        help="Further attempts (0 to 5) when the endpoint does not answer, times out or answers with a "
        "server error (5xx), 408 or 429.",
    )
    webhook_sample_payload = fields.Text(string="Sample payload", compute="_compute_webhook_sample_payload")
    # Records created from the record: a linked project, a copy, a repeat lead
    new_name = fields.Char(
        string="Name of the new record",
        compute="_compute_new_name",
        store=True,
        readonly=False,
        help="Placeholders such as {{ object.name }} or {{ object.partner_id.name }} are taken from the "
        "original record.",
    )
    new_lead_type = fields.Selection(
        [("lead", "Lead"), ("opportunity", "Opportunity")], string="Create a", default="opportunity", required=True
    )
    new_team_id = fields.Many2one(
        "crm.team",
        string="Pipeline",
        ondelete="restrict",
        help="The pipeline of the new record; for a repeat, leave empty for the original's pipeline.",
    )
    new_stage_id = fields.Many2one(
        "crm.stage",
        string="Stage of the new record",
        ondelete="restrict",
        help="A stage of that pipeline or shared by all pipelines; leave empty for the pipeline's first stage.",
    )
    new_user_mode = fields.Selection(
        [("same", "Same owner"), ("user", "Chosen user")],
        string="Owner",
        default="same",
        required=True,
        help="Same owner: the original's salesperson (the project manager of a linked project).",
    )
    new_user_id = fields.Many2one("res.users", string="Chosen owner", ondelete="restrict")
    project_template_id = fields.Many2one(
        "project.project",
        string="Project to copy",
        ondelete="restrict",
        help="The new project is a copy of this one, with its tasks (it may be archived). "
        "Leave empty for an empty project.",
    )
    # Followers
    follower_user_ids = fields.Many2many(
        "res.users", "workflow_automation_action_follower_user_rel", string="Users to add as followers"
    )
    follower_partner_ids = fields.Many2many(
        "res.partner", "workflow_automation_action_follower_partner_rel", string="Contacts to add as followers"
    )
    # Set a field to a value
    set_field_id = fields.Many2one(
        "ir.model.fields", string="Field to set", ondelete="cascade", domain="[('id', 'in', set_field_allowed_ids)]"
    )
    set_field_allowed_ids = fields.Many2many(
        "ir.model.fields", string="Fields that can be set", compute="_compute_set_field_allowed_ids"
    )
    set_field_type = fields.Selection(related="set_field_id.ttype", string="Type of the field")
    set_field_comodel_id = fields.Many2one(
        "ir.model", string="Records of", compute="_compute_set_field_comodel_id"
    )
    set_value = fields.Text(string="Value", help="Text, or a number with a dot for decimals.")
    set_value_boolean = fields.Boolean(string="Checked", help="Check to set the field, leave unchecked to clear it.")
    set_value_days = fields.Integer(
        string="Days from today", help="Today plus this many days (negative: in the past); a date and time "
        "field gets the moment of the run plus this many days."
    )
    set_selection_id = fields.Many2one(
        "ir.model.fields.selection",
        string="Choice",
        ondelete="cascade",
        domain="[('field_id', '=', set_field_id)]",
    )
    set_field_relation = fields.Char(related="set_field_id.relation", string="Model of the record")
    set_value_res_id = fields.Many2oneReference(string="Record ID", model_field="set_field_relation")
    template_author_id = fields.Many2one(
        "res.users",
        string="Texts written by",
        readonly=True,
        copy=False,
        ondelete="set null",
        help="Who last wrote the name, summary or note templates: they render with that user's powers, "
        "expressions only if that user is a Mail Template Editor.",
    )
    # The record picked in the form; stored as its id (a missing record is refused, not dropped)
    set_value_ref = fields.Reference(
        selection="_selection_models",
        string="Record",
        compute="_compute_set_value_ref",
        inverse="_inverse_set_value_ref",
        help="Leave empty to clear the field.",
    )

    # ------------------------------------------------------------------
    # Texts render with their author's powers (as Odoo's mail templates)
    # ------------------------------------------------------------------

    @api.model_create_multi
    def create(self, vals_list):
        actions = super().create([self._with_template_author(vals) for vals in vals_list])
        actions._check_template_expressions()
        return actions

    def write(self, vals):
        if set(TEMPLATE_FIELDS) & vals.keys():
            self._check_template_expressions(vals)
        return super().write(self._with_template_author(vals))

    def _update_field_translations(self, field_name, translations, digest=None, source_lang=None):
        if field_name not in TEMPLATE_FIELDS:
            return super()._update_field_translations(field_name, translations, digest, source_lang)
        for text in translations.values():
            self._check_template_expressions({field_name: text})
        # the author first: the ORM writes the translations in SQL, bypassing ``write``
        self._write({"template_author_id": self.env.uid})
        return super()._update_field_translations(field_name, translations, digest, source_lang)

    def _with_template_author(self, vals):
        """``vals`` with whoever writes a text as its author: never what the client says."""
        vals = {name: value for name, value in vals.items() if name != "template_author_id"}
        if set(TEMPLATE_FIELDS) & vals.keys():
            vals["template_author_id"] = self.env.uid
        return vals

    @api.model
    def _is_template_editor(self, user):
        return user._is_superuser() or user.has_group(TEMPLATE_EDITOR_GROUP)

    def _has_unsafe_expression(self, template):
        """Whether ``template`` holds more than the placeholders Odoo lets any user write."""
        return self.env["mail.render.mixin"]._has_unsafe_expression_template_inline_template(
            template or "", self.target
        )

    def _unsafe_expression_refusal(self):
        return self.env._(
            "only members of the group “%(group)s” may write expressions here; use placeholders such as "
            "{{ object.name }} or {{ object.partner_id.name }}.",
            group=self.env.ref(TEMPLATE_EDITOR_GROUP).name,
        )

    def _check_template_expressions(self, vals=None):
        """At save, Odoo's rule for mail templates (``mail.render.mixin``): who is not a template
        editor may write field placeholders only, in all the texts of the actions they save
        (``vals``: what a write is about to change)."""
        if self.env.su or self._is_template_editor(self.env.user):
            return
        vals = vals or {}
        for action in self:
            for field_name in TEMPLATE_FIELDS:
                if action._has_unsafe_expression(vals.get(field_name, action[field_name])):
                    action._raise_invalid(field_name, action._unsafe_expression_refusal())

    def _check_author_may_render(self, template):
        """At run time, the same rule for the author: the action's elevated rights are not theirs."""
        # actions saved before their authors were recorded: their last writer
        author = self.template_author_id or self.write_uid
        if not (author and self._is_template_editor(author)) and self._has_unsafe_expression(template):
            raise AccessError(self.env._(
                "only members of the group “%(group)s” may write expressions here, and its author, "
                "%(author)s, is not one.",
                group=self.env.ref(TEMPLATE_EDITOR_GROUP).name,
                author=author.name or self.env._("unknown"),
            ))

    @api.model
    def _default_name_templates(self):
        return {
            "create_project": "{{ object.name }}",
            "copy_lead": _("%s (copy)", "{{ object.name }}"),
            "repeat_lead": "{{ object.name }}",
        }

    @api.depends("target")
    def _compute_available_kinds(self):
        for action in self:
            action.available_kinds = kinds_of_target(ACTION_KINDS, action.target)
            action.available_followup_effects = kinds_of_target(FOLLOWUP_EFFECTS, action.target)

    @api.depends("target")
    def _compute_role_fields(self):
        for action in self:
            action.stage_field = action._role_field(STAGE)
            action.tag_field = action._role_field(TAGS)

    @api.depends("kind")
    def _compute_new_name(self):
        """The kind's default template, unless the admin wrote another one."""
        defaults = self._default_name_templates()
        for action in self:
            if not action.new_name or action.new_name in defaults.values():
                action.new_name = defaults.get(action.kind, False)

    @api.depends("target")
    def _compute_set_field_allowed_ids(self):
        IrField = self.env["ir.model.fields"]
        for action in self:
            candidates = IrField.search([
                ("model", "=", action.target), ("store", "=", True), ("ttype", "in", list(SET_FIELD_VALUE_FIELDS)),
            ]) if action.target else IrField
            action.set_field_allowed_ids = candidates.filtered(lambda field, a=action: not a._unsettable_reason(field))

    @api.depends("set_field_id")
    def _compute_set_field_comodel_id(self):
        for action in self:
            relation = action.set_field_id.ttype == "many2one" and action.set_field_id.relation
            action.set_field_comodel_id = self.env["ir.model"]._get(relation) if relation else False

    @api.depends("set_field_relation", "set_value_res_id")
    def _compute_set_value_ref(self):
        for action in self:
            relation, res_id = action.set_field_relation, action.set_value_res_id
            action.set_value_ref = f"{relation},{res_id}" if relation and res_id else False

    def _inverse_set_value_ref(self):
        for action in self:
            action.set_value_res_id = action.set_value_ref.id if action.set_value_ref else 0

    @api.model
    def _selection_models(self):
        return [(model.model, model.name) for model in self.env["ir.model"].sudo().search([])]

    @api.depends("kind")
    def _compute_display_name(self):
        kinds = dict(self._fields["kind"]._description_selection(self.env))
        for action in self:
            action.display_name = kinds.get(action.kind, "")

    @api.depends("kind", "webhook_field_ids", "trigger_id", "target")
    @api.depends_context("uid")
    def _compute_webhook_sample_payload(self):
        """What would be sent for a record the admin can read (the latest one)."""
        self.webhook_sample_payload = False
        for action in self.filtered(lambda a: a.kind == "webhook" and a.target):
            Model = self.env[action.target]
            sample = Model.search([], limit=1) if Model.has_access("read") else Model
            with contextlib.suppress(AccessError):  # a field of a group the admin is not in
                action.webhook_sample_payload = sample and json.dumps(action._webhook_payload(sample), indent=4)

    # ------------------------------------------------------------------
    # Validation
    # ------------------------------------------------------------------

    def _error_location(self):
        return _(
            "Workflow “%(workflow)s”, action “%(action)s”",
            workflow=self.workflow_id.display_name,
            action=self.display_name,
        )

    @api.constrains(
        "kind", "trigger_id", "user_id", "team_id", "activity_type_id", "mail_template_id",
        "note_body", "tag_ids", "project_tag_ids", "stage_id", "project_stage_id",
        "followup_mode", "activity_plan_id", "followup_effect", "activity_user_mode", "activity_user_id",
    )
    def _check_parameters(self):
        for action in self:
            target = action.workflow_id.target
            if not action._kind().applies_to(target):
                action._raise_invalid("kind", _("this action is not available for this target."))
            for required in action._required_parameters():
                action._require(required, _("this action needs a value here."))
            if action.mail_template_id and action.mail_template_id.model != target:
                action._raise_invalid("mail_template_id", _("the template is made for another model."))
            if "set_stage" in (action.kind, action._followup_effect()):
                action._check_stage_in_scope(action._role_field(STAGE))

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

    def _required_parameters(self):
        """The parameter fields this action cannot do without."""
        if self.kind == "activity":  # a follow-up: one activity of a type, or a plan
            required = ["activity_plan_id" if self.followup_mode == "plan" else "activity_type_id"]
            if self.activity_user_mode == "user":
                required.append("activity_user_id")
        else:
            required = list(self._parameter_fields(self._kind().required))
        return required + list(self._parameter_fields(FOLLOWUP_EFFECTS[self._followup_effect()].required))

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

    @api.constrains("delay", "delay_unit")
    def _check_delay(self):
        for action in self:
            if action.delay < 0:
                action._raise_invalid("delay", _("the delay cannot be negative."))
            action._check_span("delay", action.delay_unit)

    def _due_date(self, start):
        return start + relativedelta(**{self.delay_unit: self.delay})

    def _is_queued(self):
        """Delayed actions, and outbound ones, which the user must not wait for, run in the queue."""
        self.ensure_one()
        return bool(self.delay) or self.kind in QUEUED_KINDS

    @api.constrains("activity_deadline", "activity_deadline_unit")
    def _check_activity_deadline(self):
        for action in self:
            if action.activity_deadline < 0:
                action._raise_invalid("activity_deadline", _("the deadline cannot be negative."))
            action._check_span("activity_deadline", action.activity_deadline_unit)

    @api.constrains("kind", "webhook_url", "webhook_timeout", "webhook_retries", "webhook_field_ids")
    def _check_webhook(self):
        for action in self.filtered(lambda a: a.kind == "webhook"):
            problem = webhook_transport.url_problem(action.webhook_url or "", action._webhook_allowed_hosts())
            if problem:
                action._raise_invalid("webhook_url", f"{self.env._(problem)}.")
            if not 1 <= action.webhook_timeout <= 30:
                action._raise_invalid("webhook_timeout", _("the timeout must be between 1 and 30 seconds."))
            if not 0 <= action.webhook_retries <= 5:
                action._raise_invalid("webhook_retries", _("the number of retries must be between 0 and 5."))
            wrong = action.webhook_field_ids.filtered(
                lambda f, action=action: f.model != action.target or f.ttype == "binary"
            )
            if wrong:
                action._raise_invalid(
                    "webhook_field_ids",
                    _(
                        "“%s” cannot be sent: choose fields of the target, other than files.",
                        wrong[0].field_description,
                    ),
                )

    @api.constrains("email_from_mode", "email_from")
    def _check_email_from(self):
        for action in self.filtered(lambda a: a.kind == "email" and a.email_from_mode == "fixed"):
            if not tools.email_normalize(action.email_from or ""):
                action._raise_invalid("email_from", _("enter a valid e-mail address."))

    @api.constrains(
        "kind", "trigger_id", "new_name", "new_team_id", "new_stage_id", "new_user_mode", "new_user_id",
        "project_template_id",
    )
    def _check_new_records(self):
        for action in self.filtered(lambda a: a.kind in CREATING_KINDS):
            action._require("new_name", _("this action needs a value here."))
            if action.new_user_mode == "user":
                action._require("new_user_id", _("choose the owner of the new records."))
            if action.kind == "create_project":
                action._check_same_company("project_template_id")
            else:
                action._check_new_stage()

    def _check_new_stage(self):
        """The new record's pipeline is the workflow's company's; its stage is of that pipeline or shared."""
        self._check_same_company("new_team_id")
        error = self.env[self.target]._workflow_stage_scope_error(self.new_stage_id, self.new_team_id)
        if error:
            self._raise_invalid("new_stage_id", error)

    def _check_same_company(self, field_name):
        """Records are created in the workflow's company: what they are made from must fit it."""
        company = self[field_name].company_id
        if company and company != self.workflow_id.company_id:
            self._raise_invalid(field_name, _(
                "“%(record)s” belongs to the company “%(company)s”, not to the workflow's.",
                record=self[field_name].display_name,
                company=company.name,
            ))

    @api.constrains("kind", "follower_user_ids", "follower_partner_ids")
    def _check_followers(self):
        for action in self.filtered(lambda a: a.kind == "add_followers"):
            if not action.follower_partner_ids:
                action._require("follower_user_ids", _("choose users or contacts to add as followers."))

    @api.constrains(
        "kind", "trigger_id", "set_field_id", "set_value", "set_value_boolean", "set_value_days",
        "set_selection_id", "set_value_res_id",
    )
    def _check_set_field(self):
        for action in self.filtered(lambda a: a.kind == "set_field" and a.set_field_id):
            refusal = action._unsettable_reason(action.set_field_id)
            if refusal:
                action._raise_invalid("set_field_id", refusal)
            action._check_span("set_value_days")
            try:
                action._set_field_value()
            except UserError as error:
                action._raise_invalid(SET_FIELD_VALUE_FIELDS[action.set_field_type], error.args[0])

    def _unsettable_reason(self, field):
        """Why "set a field" cannot set ``field`` (an ``ir.model.fields``), or None."""
        label = field.field_description
        model_field = self.env[self.target]._fields.get(field.name) if self.target else None
        if field.model != self.target or not model_field:
            return _("the field “%s” is not a field of the workflow's records.", label)
        if field.name in (*models.MAGIC_COLUMNS, "display_name"):
            return _("the field “%s” is maintained by Odoo itself.", label)
        if not model_field.store:
            return _("the field “%s” is not stored: it cannot be set.", label)
        if model_field.compute and model_field.readonly:
            return _("the field “%s” is computed (or related) without an inverse: it cannot be set.", label)
        if field.ttype not in SET_FIELD_VALUE_FIELDS:
            return _("the field “%(field)s” is of a type (%(type)s) that this action cannot set.",
                     field=label, type=field.ttype)
        return None

    def _set_field_value(self):
        """The value "set a field" writes: the same for every record, so one write per batch.

        Raises a UserError saying what does not fit: refused at save, or failing the run when
        it stopped fitting since (a record deleted).
        """
        ttype = self.set_field_type
        if ttype == "boolean":
            return self.set_value_boolean
        if ttype == "date":
            return fields.Date.context_today(self) + timedelta(days=self.set_value_days)
        if ttype == "datetime":
            return fields.Datetime.now() + timedelta(days=self.set_value_days)
        if ttype in ("integer", "float", "monetary"):
            return self._set_field_number()
        if ttype == "selection":
            value = self._set_field_selection()
        elif ttype == "many2one":
            value = self._set_field_record()
        else:
            value = self.set_value or False
        if not value and self.env[self.target]._fields[self.set_field_id.name].required:
            raise UserError(_("the field “%s” is required: give it a value.", self.set_field_id.field_description))
        return value

    def _set_field_number(self):
        text = (self.set_value or "").strip()
        try:
            value = int(text) if self.set_field_type == "integer" else float(text)
        except ValueError:
            value = None
        if value is None or not math.isfinite(value):
            kind = _("a whole number") if self.set_field_type == "integer" else _("a number")
            raise UserError(_(
                "“%(value)s” is not %(kind)s (field “%(field)s”).",
                value=text, kind=kind, field=self.set_field_id.field_description,
            ))
        return value

    def _set_field_selection(self):
        choice = self.set_selection_id
        if not choice:
            return False
        model_field = self.env[self.target]._fields[self.set_field_id.name]
        keys = [key for key, _label in model_field._description_selection(self.env)]
        if choice.field_id != self.set_field_id or choice.value not in keys:
            raise UserError(_(
                "“%(choice)s” is not a choice of the field “%(field)s”.",
                choice=choice.name, field=self.set_field_id.field_description,
            ))
        return choice.value

    def _set_field_record(self):
        if not self.set_value_res_id:
            return False
        if not self.env[self.set_field_relation].browse(self.set_value_res_id).exists():
            raise UserError(_(
                "the record chosen for the field “%s” no longer exists.", self.set_field_id.field_description
            ))
        return self.set_value_res_id

    # ------------------------------------------------------------------
    # Execution (DESIGN.md principles 3 and 4)
    # ------------------------------------------------------------------

    def _execute_safely(self, records, kind=None):
        """Run on the batch in a savepoint; on failure, isolate the failing records.

        ``kind`` is what to run, the action's own kind by default (or a follow-up's
        "when completed" effect). Return ``(errors, notes)``: ``{record id: error text}``
        for the records the action failed on, and ``{record id: text}`` that the action
        reported for the others (an ``_execute_<kind>`` method may return such notes).
        Webhooks do not come here: the queue sends them run by run (``_deliver_webhooks``
        of the runs), as a sent request cannot be rolled back.
        """
        self.ensure_one()
        return self._execute_isolating_failures(records, kind or self.kind)

    def _execute_isolating_failures(self, records, kind):
        """The batch at once; if it fails, record by record, to find the failing ones."""
        error, notes = self._execute_in_savepoint(records, kind)
        if not error:
            return {}, notes
        if len(records) == 1:
            return {records.id: error}, {}
        errors = {}
        for record in records:
            record_error, record_notes = self._execute_in_savepoint(record, kind)
            if record_error:
                errors[record.id] = record_error
            notes.update(record_notes)
        return errors, notes

    @contextmanager
    def _savepoint(self):
        """A savepoint that leaves the precommit hooks (mail tracking) to the commit.

        Odoo's default savepoint runs them on entering, which posts the tracking message
        of every record of the batch one by one, in the middle of the user's write. Here
        the hooks' state is put back if the action fails. Enter it with the ORM flushed.
        """
        precommit = self.env.cr.precommit
        funcs = deque(precommit._funcs)
        data = {key: copy(value) for key, value in precommit.data.items()}
        try:
            with self.env.cr.savepoint(flush=False):
                yield
                self.env.flush_all()
        except Exception:
            self.env.transaction.clear()  # the cache may hold values that were rolled back
            precommit._funcs, precommit.data = funcs, data
            raise

    def _execute_in_savepoint(self, records, kind):
        """Return ``(error text or None, notes)``.

        Only the action's own errors are caught. What was pending before it (the user's write)
        is flushed first, outside the savepoint: its errors are not the action's, and caught
        they would leave the transaction aborted. A concurrency error is not the action's
        either: it propagates, for Odoo to retry the whole request on a fresh snapshot.
        """
        self.env.flush_all()
        try:
            with self._savepoint():
                # in the records' environment: elevated rights in their company, chain depth
                notes = self.with_env(records.env)._execute(records, kind)
        except PG_CONCURRENCY_EXCEPTIONS_TO_RETRY:
            raise
        except Exception as error:  # noqa: BLE001 - any failure must spare the user's write
            _logger.warning("Workflow action %s failed on %s", self.id, records, exc_info=True)
            return self._error_text(error), {}
        return None, notes

    def _execute(self, records, kind):
        """Run ``kind`` on ``records``; return ``{record id: note}``.

        On test records, an effect that would leave the database is recorded instead.
        """
        held = records.filtered("workflow_test_id") if kind in OUTBOUND_KINDS else records.browse()
        notes = self._record_not_sent(held) if held else {}
        if records - held:
            notes.update(getattr(self, f"_execute_{kind}")(records - held) or {})
        return notes

    def _record_not_sent(self, records):
        """Say in each test record's chatter what would have been sent, in one batch.

        An outbound kind may describe its effect with ``_describe_<kind>(records)``
        (``{record id: text}``); it runs as the real action would, so that an error
        in, say, the e-mail's template fails the test run as it would fail a real one.
        """
        describe = getattr(self, f"_describe_{self.kind}", None)
        texts = describe(records) if describe else dict.fromkeys(records.ids, self.display_name)
        langs = self._record_langs(records)
        records._message_log_batch({
            record_id: Markup("<p>%s</p>") % self.with_context(lang=langs[record_id]).env._(
                "Test record, not sent: %(effect)s (workflow “%(workflow)s”).",
                effect=text,
                workflow=self.workflow_id.name,
            )
            for record_id, text in texts.items()
        })
        return dict.fromkeys(records.ids, self.workflow_id._in_readers_lang().env._("test: not sent"))

    def _describe_webhook(self, records):
        return dict.fromkeys(records.ids, _("the webhook to %s", self.webhook_url))

    def _describe_email(self, records):
        with self._naming_template(self.mail_template_id.name):
            subjects = self.mail_template_id._render_field("subject", records.ids)
        return {record_id: self.env._("the e-mail “%s”", subject) for record_id, subject in subjects.items()}

    def _render(self, field_name, records, langs):
        """``{record id: text}``: the template ``field_name`` rendered on each record in its language
        ``langs[record id]``, as ``mail.render.mixin._render_field`` renders per language, with the
        powers of the template's author."""
        texts = {}
        for lang, lang_records in records.grouped(lambda record: langs[record.id]).items():
            action = self.with_context(lang=lang)
            template = action[field_name] or ""
            with action._naming_template(self._fields[field_name]._description_string(self.env)):
                action._check_author_may_render(template)
                texts.update(action.env["mail.render.mixin"]._render_template(
                    template, records._name, lang_records.ids, engine="inline_template"
                ))
        return texts

    @api.model
    def _record_langs(self, records):
        """``{record id: language}`` of texts about each record: its customer's (an opportunity's own
        *Language*), else its owner's, else its company's."""
        return {
            record.id: (
                ("lang_id" in record and record.lang_id.code) or record.partner_id.lang or record.user_id.lang
                or record.company_id.partner_id.lang or self.env.lang
            )
            for record in records
        }

    # ------------------------------------------------------------------
    # Errors: one line saying what failed and why (the traceback goes to the log)
    # ------------------------------------------------------------------

    @contextmanager
    def _naming_template(self, name):
        """Say which template failed, and why in a line, rather than the renderer's traceback."""
        try:
            yield
        except (UserError, SyntaxError) as error:
            raise UserError(self.env._(
                "Template “%(template)s”: %(error)s", template=name, error=self._root_cause_text(error)
            )) from error

    @api.model
    def _root_cause_text(self, error):
        """What went wrong at the bottom of a failed rendering: a missing field, or the first line of
        the original error."""
        cause = error
        while cause.__cause__ is not None:
            cause = cause.__cause__
        missing = MISSING_FIELD.search(str(cause))
        if missing and missing.group(1) in self.env:
            return self.env._(
                "field “%(field)s” does not exist on %(model)s",
                field=missing.group(2),
                model=self.env["ir.model"]._get(missing.group(1)).name,
            )
        return self._error_text(cause)

    @api.model
    def _error_text(self, error):
        """An error in one line: Odoo's own message for a user error; for another, its class and
        the first line of its message (a ``KeyError`` says only the key), never a traceback."""
        if isinstance(error, UserError) and error.args:
            return " ".join(line.strip() for line in str(error.args[0]).splitlines() if line.strip())
        text = str(error).strip().split("\n", 1)[0]
        return f"{error.__class__.__name__}: {text}" if text else error.__class__.__name__

    def _tags_field_value(self, command):
        tags = self[self._role_field(TAGS)]
        return {self.env[self.target]._workflow_tag_field: [command(tag.id) for tag in tags]}

    def _execute_assign_user(self, records):
        records.with_context(mail_auto_subscribe_no_notify=not self.notify_assignee)._workflow_assign_user(
            self.user_id
        )

    def _execute_assign_team(self, records):
        records.write({"team_id": self.team_id.id})

    def _execute_add_tags(self, records):
        records.write(self._tags_field_value(Command.link))

    def _execute_remove_tags(self, records):
        records.write(self._tags_field_value(Command.unlink))

    def _execute_set_stage(self, records):
        records._workflow_set_stage(self[self._role_field(STAGE)])

    def _execute_close_project(self, records):
        records._workflow_close()

    def _execute_mark_won(self, records):
        records.action_set_won()

    def _execute_mark_lost(self, records):
        records.action_set_lost(lost_reason_id=self.lost_reason_id.id)

    def _execute_note(self, records):
        bodies = self._render("note_body", records, self._record_langs(records))
        for record in records:
            record.message_post(body=bodies[record.id], subtype_xmlid="mail.mt_note")

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

    def _execute_email(self, records):
        with self._naming_template(self.mail_template_id.name):
            records.with_context(mail_create_nosubscribe=True).message_post_with_source(
                self.mail_template_id,
                message_type="auto_comment",
                subtype_xmlid="mail.mt_comment",
                **self._email_sender(),
            )

    # ------------------------------------------------------------------
    # Records created from the records
    # ------------------------------------------------------------------

    def _render_names(self, records):
        """``{record id: name of its new record}`` from the name template."""
        names = self._render("new_name", records, self._record_langs(records))
        for record in records:
            if not names[record.id].strip():
                raise UserError(_("The name template gives an empty name for “%s”.", record.display_name))
        return names

    def _new_owner(self, record):
        if self.new_user_mode == "user":
            return self.new_user_id
        return record.user_id.filtered("active")

    def _company_vals(self, record):
        """New records belong to the original's company (or let Odoo choose when it has none)."""
        return {"company_id": record.company_id.id} if record.company_id else {}

    def _execute_create_project(self, records):
        names = self._render_names(records)
        vals_list = [
            {
                "name": names[lead.id],
                "partner_id": lead.partner_id.id,
                "user_id": self._new_owner(lead).id,
                "workflow_lead_id": lead.id,
                **self._company_vals(lead),
                **({"stage_id": self.project_stage_id.id} if self.project_stage_id else {}),
            }
            for lead in records
        ]
        Project = self.env["project.project"]
        if not self.project_template_id:
            Project.create(vals_list)
            return
        # Odoo copies a project (and its tasks) with one set of values: one copy per lead.
        # Project workflows fire once the copies are complete, for all of them at once.
        with Project._workflow_deferred():
            for vals in vals_list:
                self.project_template_id.copy(vals)

    def _execute_copy_lead(self, records):
        """``copy()`` with per-record names and links, in one create for the batch."""
        names = self._render_names(records)
        shared = {"team_id": self.new_team_id.id, "active": True, "lost_reason_id": False}
        if self.new_stage_id:
            shared["stage_id"] = self.new_stage_id.id
        vals_list = records.with_context(active_test=False).copy_data(shared)
        self.env["crm.lead"].create([
            dict(
                vals,
                name=names[lead.id],
                user_id=self._new_owner(lead).id,
                workflow_origin_id=lead.id,
                **self._company_vals(lead),
            )
            for lead, vals in zip(records, vals_list, strict=True)
        ])

    def _execute_repeat_lead(self, records):
        names = self._render_names(records)
        self.env["crm.lead"].create([
            {
                **lead._convert_to_write({name: lead[name] for name in REPEAT_CUSTOMER_FIELDS}),
                "name": names[lead.id],
                "type": self.new_lead_type,
                "team_id": (self.new_team_id or lead.team_id).id,
                "user_id": self._new_owner(lead).id,
                "workflow_origin_id": lead.id,
                **self._company_vals(lead),
                **({"stage_id": self.new_stage_id.id} if self.new_stage_id else {}),
            }
            for lead in records
        ])

    def _execute_add_followers(self, records):
        records.message_subscribe(partner_ids=(self.follower_partner_ids | self.follower_user_ids.partner_id).ids)

    def _execute_set_field(self, records):
        records.write({self.set_field_id.name: self._set_field_value()})
    # Follow-ups completed: the "when completed" effect
    # ------------------------------------------------------------------

    def _complete_followup(self, records, stage_refs, user):
        """Run the effect on ``records``, whose last open activity of this follow-up ``user``
        just marked done; ``stage_refs``: ``{record id: its stage when the follow-up was added}``.

        Return the values of the runs: done, failed (the user's "mark done" stays), or
        skipped with the reason.
        """
        self.ensure_one()
        readers = self.workflow_id._in_readers_lang().env  # who reads the runs, not who marked done
        Run = readers["workflow.automation.run"]
        skipped = {
            record.id: reason
            for record in records
            if (reason := Run._followup_skip_reason(self, record, stage_refs[record.id]))
        }
        to_run = records.filtered(lambda record: record.id not in skipped)
        errors = {}
        if to_run:
            actors = self.trigger_id._actors(to_run, self.env.context.get(DEPTH_CONTEXT_KEY, 0) + 1)
            errors, _notes = self.with_env(actors.env)._execute_safely(actors, self.followup_effect)
        effect = dict(self._fields["followup_effect"]._description_selection(readers))[self.followup_effect]
        done = readers._("Follow-up completed: %s.", effect)
        return [
            Run._prepare_followup_effect_vals(
                self, record, user, stage_refs[record.id],
                "skipped" if record.id in skipped else "failed" if record.id in errors else "done",
                skipped.get(record.id) or errors.get(record.id) or done,
            )
            for record in records
        ]
    def _email_sender(self):
        """The chosen sender, over the template's own "From" (the queue keeps the triggering user)."""
        if self.email_from_mode == "fixed":
            return {"email_from": self.email_from}
        return {"email_from": self.env.user.email_formatted, "author_id": self.env.user.partner_id.id}

    def action_preview_template(self):
        """Odoo's own preview of the e-mail template, on a record of the target."""
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id("mail.mail_template_preview_action")
        action["context"] = {"default_mail_template_id": self.mail_template_id.id}
        return action

    # ------------------------------------------------------------------
    # Webhooks
    # ------------------------------------------------------------------

    def _webhook_payload(self, record):
        """The JSON document sent for ``record``: who, what, and the chosen fields."""
        user = self.env.user
        return {
            "model": record._name,
            "id": record.id,
            # _origin: the sample payload of an action being edited, whose records are unsaved copies
            "workflow": {"id": self.workflow_id._origin.id, "name": self.workflow_id.name},
            "trigger": {"id": self.trigger_id._origin.id, "name": self.trigger_id.display_name},
            "user": {"id": user.id, "name": user.name},
            "record": {field.name: self._webhook_value(record, field.name) for field in self.webhook_field_ids},
        }

    @api.model
    def _webhook_value(self, record, field_name):
        """A field's value as JSON: a many2one as id and name, x2many as ids, dates in ISO 8601
        (date and time in UTC), an empty value as null."""
        field_type = record._fields[field_name].type
        value = record[field_name]
        if field_type in ("one2many", "many2many"):
            return value.ids
        if field_type == "many2one":
            return {"id": value.id, "name": value.display_name} if value else None
        if field_type == "reference":
            return {"model": value._name, "id": value.id, "name": value.display_name} if value else None
        if field_type == "boolean":
            return value
        if value is False:  # the empty value of the other types
            return None
        if field_type == "datetime":
            return pytz.utc.localize(value).isoformat()
        if field_type == "date":
            return value.isoformat()
        return str(value) if field_type == "html" else value

    def _webhook_allowed_hosts(self):
        """The hosts webhooks may call although they are not public (a system parameter)."""
        hosts = self.env["ir.config_parameter"].sudo().get_param(webhook_transport.ALLOWED_HOSTS_PARAMETER) or ""
        return {host.strip().strip("[]").lower() for host in hosts.split(",") if host.strip()}

    def _post_webhook(self, record, headers):
        """POST ``record``'s document once, with ``headers``; return the answer's text.

        Raise ``webhook_transport.WebhookError``: whether to try again is the queue's decision.
        """
        self.ensure_one()
        answer = webhook_transport.post(
            self.webhook_url,
            json.dumps(self._webhook_payload(record), default=str),
            {"Content-Type": "application/json", **headers},
            self.webhook_timeout,
            self._webhook_allowed_hosts(),
        )
        return self.env._(answer)
