import logging
import math
from datetime import timedelta

from dateutil.relativedelta import relativedelta

from odoo import Command, _, api, fields, models, tools
from odoo.exceptions import UserError

from .workflow_automation_kinds import ACTION_KINDS, STAGE, TAGS, codes, selection

_logger = logging.getLogger(__name__)

# Derived from the kinds (the run model and the engine import them)
QUEUED_KINDS = codes(ACTION_KINDS, "queued")
OUTBOUND_KINDS = frozenset(codes(ACTION_KINDS, "outbound"))
# Kinds that create records: each needs a name template ("{{ object.name }}" by default)
CREATING_KINDS = codes(ACTION_KINDS, "creates")

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
    # The record picked in the form; stored as its id (a missing record is refused, not dropped)
    set_value_ref = fields.Reference(
        selection="_selection_models",
        string="Record",
        compute="_compute_set_value_ref",
        inverse="_inverse_set_value_ref",
        help="Leave empty to clear the field.",
    )

    @api.depends("target")
    def _compute_role_fields(self):
        for action in self:
            action.stage_field = action._role_field(STAGE)
            action.tag_field = action._role_field(TAGS)

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
            if "set_stage" in action._effect_kinds():
                action._check_stage_in_scope(action._role_field(STAGE))

    def _effect_kinds(self):
        """The kinds of effect this action runs: its own (a feature may add others)."""
        return (self.kind,)

    def _required_parameters(self):
        """The parameter fields this action cannot do without."""
        return list(self._parameter_fields(self._kind().required))

    @api.constrains("delay", "delay_unit")
    def _check_delay(self):
        for action in self:
            action._check_span("delay", action.delay_unit, negative=_("the delay cannot be negative."))

    def _due_date(self, start):
        return start + relativedelta(**{self.delay_unit: self.delay})

    def _is_queued(self):
        """Delayed actions, and outbound ones, which the user must not wait for, run in the queue."""
        self.ensure_one()
        return bool(self.delay) or self.kind in QUEUED_KINDS

    @api.constrains("email_from_mode", "email_from")
    def _check_email_from(self):
        for action in self.filtered(lambda a: a.kind == "email" and a.email_from_mode == "fixed"):
            if not tools.email_normalize(action.email_from or ""):
                action._raise_invalid("email_from", _("enter a valid e-mail address."))

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

    def _describe_email(self, records):
        with self._naming_template(self.mail_template_id.name):
            subjects = self.mail_template_id._render_field("subject", records.ids)
        return {record_id: self.env._("the e-mail “%s”", subject) for record_id, subject in subjects.items()}

    # ------------------------------------------------------------------
    # Errors: one line saying what failed and why (the traceback goes to the log)
    # ------------------------------------------------------------------

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

    def _execute_kind(self, records, kind):
        """Do what ``kind`` does to ``records``; return ``{record id: note}``.

        A kind that only writes the records says what with ``_write_values_<kind>``: the engine
        may then fold it into the user's own write. Another acts with ``_execute_<kind>``.
        """
        values = self._write_values(kind)
        if values is None:
            return getattr(self, f"_execute_{kind}")(records) or {}
        for subset, vals in records._workflow_write_vals(kind, values):
            subset.with_context(**self._write_context()).write(vals)
        return {}

    def _write_values(self, kind=None):
        """What ``kind`` (by default the action's) writes on any record, in plain values and
        ids; None when the kind does more than write the records. The records' model may split
        or check them per record (``_workflow_write_vals``)."""
        write_values = getattr(self, f"_write_values_{kind or self.kind}", None)
        return write_values() if write_values else None

    def _fold_values(self):
        """``_write_values`` as the trigger index keeps them for folded writes, or None when the
        action cannot be folded: it is delayed, does more than write, writes a value that
        depends on the day, or no longer fits (its run will say why)."""
        if self.delay or self.set_field_type in ("date", "datetime"):
            return None
        try:
            return self._write_values()
        except Exception:  # noqa: BLE001 - never the index's failure: the ordinary way records why
            return None

    def _run_vals(self):
        """What the runs of this action have in common, whatever their record."""
        return {
            "workflow_id": self.workflow_id.id,
            "trigger_id": self.trigger_id.id,
            "action_id": self.id,
            "action_kind": self.kind,
            "company_id": self.trigger_id.company_id.id,
        }

    def _write_context(self):
        """Odoo's "you have been assigned" notification, only if the action asks for it."""
        return {"mail_auto_subscribe_no_notify": not self.notify_assignee} if self.kind == "assign_user" else {}

    def _write_values_assign_user(self):
        return {"user_id": self.user_id.id}

    def _write_values_assign_team(self):
        return {"team_id": self.team_id.id}

    def _write_values_add_tags(self):
        return self._tags_field_value(Command.link)

    def _write_values_remove_tags(self):
        return self._tags_field_value(Command.unlink)

    def _write_values_set_stage(self):
        return {self.env[self.target]._workflow_stage_field: self[self._role_field(STAGE)].id}

    def _write_values_set_field(self):
        return {self.set_field_id.name: self._set_field_value()}

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

    def _execute_email(self, records):
        with self._naming_template(self.mail_template_id.name):
            records.with_context(mail_create_nosubscribe=True).message_post_with_source(
                self.mail_template_id,
                message_type="auto_comment",
                subtype_xmlid="mail.mt_comment",
                **self._email_sender(),
            )

    def _execute_add_followers(self, records):
        records.message_subscribe(partner_ids=(self.follower_partner_ids | self.follower_user_ids.partner_id).ids)


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
