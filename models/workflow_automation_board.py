"""The Automations board: triggers by the column of a pipeline where they fire, and
what each does, in short sentences (for the board's cards and the CRM kanban's columns)."""

from odoo import _, api, fields, models
from odoo.exceptions import MissingError
from odoo.osv import expression

from .workflow_automation_action import SET_FIELD_VALUE_FIELDS
from .workflow_automation_kinds import STAGE, TAGS, role_field
from .workflow_automation_trigger import STAGE_KINDS

# Trigger kind -> the board's column, for the kinds that do not fire at a stage
KIND_COLUMNS = {
    "create": "created",
    "won": "won",
    "lost": "lost",
    "restored": "restored",
    "project_closed": "closed",
    "date": "dates",
    "inactive": "dates",
    "activity_created": "activities",
    "activity_done": "activities",
}
# The kind a "+" adds in a column of events, where it is not the column's name
COLUMN_KINDS = {
    "activities": "activity_done", "dates": "date", "closed": "project_closed", "any_stage": "stage_changed",
}
# The columns after the stages, per target; "any_stage" shows only when a trigger is in it
TARGET_COLUMNS = {
    "crm.lead": ("created", "won", "lost", "restored", "dates", "activities"),
    "project.project": ("created", "closed", "dates", "activities"),
}
# The column of a stage, per target: its prefix and the stage model
STAGE_COLUMN_PREFIXES = {
    "crm.lead": ("stage_", "crm.stage"),
    "project.project": ("project_stage_", "project.project.stage"),
}
BOARD_ACTION = "crm_workflow_automation.workflow_automation_board_action"
BOARD_FORM_VIEW = "crm_workflow_automation.workflow_automation_trigger_view_form_board"
# Numbers are written as they are; other values between quotes
NUMBER_TYPES = ("integer", "float", "monetary")


class WorkflowAutomationTriggerBoard(models.Model):
    _inherit = "workflow.automation.trigger"

    board_column = fields.Selection(
        selection="_board_column_selection",
        string="Column",
        compute="_compute_board_column",
        store=True,
        group_expand="_board_column_expand",
        help="Where the trigger shows on the Automations board: the stage it fires at, or its event.",
    )
    workflow_name = fields.Char(related="workflow_id.name", string="Workflow name")
    # the card's switch: a live workflow's triggers are locked, its switch is not
    workflow_active = fields.Boolean(related="workflow_id.active", readonly=False, string="Workflow on")
    board_when = fields.Char(string="When (in words)", compute="_compute_board_texts")
    board_condition = fields.Char(string="Condition (in words)", compute="_compute_board_texts")
    board_actions = fields.Text(string="Actions (in words)", compute="_compute_board_texts")

    def _fields_editable_while_on(self):
        return super()._fields_editable_while_on() | {"workflow_active"}

    @api.model
    def _get_view(self, view_id=None, view_type="form", **options):
        """The board's form of a trigger is read-only while its workflow is on, as the
        workflow's form is: every field of the trigger (the actions' list included)."""
        arch, view = super()._get_view(view_id, view_type, **options)
        if view == self.env.ref(BOARD_FORM_VIEW, raise_if_not_found=False):
            for node in arch.xpath("//field[not(ancestor::field)][not(@name='workflow_active')]"):
                readonly = node.get("readonly")
                node.set("readonly", f"workflow_active or ({readonly})" if readonly else "workflow_active")
        return arch, view

    # ------------------------------------------------------------------
    # Columns
    # ------------------------------------------------------------------

    @api.model
    def _board_column_selection(self):
        columns = [
            ("created", _("Created")),
            ("won", _("Won")),
            ("lost", _("Lost")),
            ("restored", _("Restored")),
            ("closed", _("Closed")),
            ("dates", _("Dates and inactivity")),
            ("activities", _("Activities")),
            ("any_stage", _("Any stage")),
        ]
        for prefix, stage_model in STAGE_COLUMN_PREFIXES.values():
            stages = self.env[stage_model].sudo().with_context(active_test=False).search([])
            columns += [(f"{prefix}{stage.id}", stage.name) for stage in stages]
        return columns

    @api.depends("kind", "stage_id", "project_stage_id", "workflow_id.target")
    def _compute_board_column(self):
        for trigger in self:
            if trigger.kind not in STAGE_KINDS:
                trigger.board_column = KIND_COLUMNS.get(trigger.kind, "any_stage")
                continue
            stage = trigger._get_stages()[1]
            prefix = STAGE_COLUMN_PREFIXES[trigger.target][0]
            trigger.board_column = f"{prefix}{stage.id}" if stage else "any_stage"

    @api.model
    def _board_column_expand(self, values, domain):
        """The board's columns: the stages of its pipeline (or the project stages) in order,
        then the events; a column outside them (any stage) shows only when a trigger is in it."""
        target = self.env.context.get("board_target")
        target = target if target in TARGET_COLUMNS else "crm.lead"
        return self._board_stage_columns(target, self.env.context.get("board_team_id")) + list(
            TARGET_COLUMNS[target]
        )

    @api.model
    def _board_stages(self, target, team_id):
        stage_model = STAGE_COLUMN_PREFIXES[target][1]
        stage_scope = self.env[target]._workflow_stage_scope_field  # a pipeline's own stages, or none
        return self.env[stage_model].search([(stage_scope, "in", [False, team_id])] if stage_scope else [])

    @api.model
    def _board_stage_columns(self, target, team_id):
        prefix = STAGE_COLUMN_PREFIXES[target][0]
        return [f"{prefix}{stage.id}" for stage in self._board_stages(target, team_id)]

    @api.model
    def _board_column_defaults(self, column):
        """The trigger a "+" of ``column`` adds: at its stage, or of its event."""
        if not isinstance(column, str):
            return {}
        for prefix, stage_model in STAGE_COLUMN_PREFIXES.values():
            if column.startswith(prefix) and column[len(prefix):].isdigit():
                stage_field = role_field(self, STAGE, stage_model)
                return {"kind": "stage_reached", stage_field: int(column[len(prefix):])}
        kind = COLUMN_KINDS.get(column, column)
        return {"kind": kind} if kind in self._fields["kind"].get_values(self.env) else {}

    @api.model
    def default_get(self, fields_list):
        values = super().default_get(fields_list)
        column = values.pop("board_column", None) or self.env.context.get("default_board_column")
        if column:
            values.update(
                (name, value) for name, value in self._board_column_defaults(column).items() if name in fields_list
            )
        return values

    # ------------------------------------------------------------------
    # In words
    # ------------------------------------------------------------------

    @api.depends_context("lang")
    @api.depends(
        "kind", "frequency", "filter_domain", "stage_id", "from_stage_id", "project_stage_id",
        "from_project_stage_id", "action_ids",
    )
    def _compute_board_texts(self):
        for trigger in self:
            trigger.board_when = trigger._board_when()
            trigger.board_condition = trigger._board_condition()
            trigger.board_actions = " · ".join(trigger.action_ids._board_sentences())

    def _board_when(self):
        """The event, naming the origin of a stage-to-stage trigger (its column is the destination)."""
        from_stage, to_stage = self._get_stages()
        if self.kind == "stage_changed" and to_stage:
            when = _("From %s", from_stage.name or _("any stage"))
        else:
            when = self.display_name
        if self.frequency == "first_time":
            when = _("%s (the first time only)", when)
        return when

    def _board_condition(self):
        """The condition in words; empty when every record fires the trigger."""
        try:
            domain = expression.normalize_domain(self._get_condition_domain())
        except Exception:  # noqa: BLE001 - a condition broken since saved: said, not described
            return _("A condition that cannot be read: %s", self.filter_domain)
        if domain == expression.TRUE_DOMAIN:
            return ""
        return self._board_domain_words(self.env[self.target], list(domain))

    def _board_domain_words(self, model, tokens):
        """Words for a normalized domain (prefix notation), consuming ``tokens``."""
        token = tokens.pop(0)
        if token == "!":
            return _("not (%s)", self._board_domain_words(model, tokens))
        if token in ("&", "|"):
            left = self._board_domain_words(model, tokens)
            right = self._board_domain_words(model, tokens)
            return _("%(left)s and %(right)s", left=left, right=right) if token == "&" else _(
                "(%(left)s or %(right)s)", left=left, right=right
            )
        if expression.is_leaf(token) and token not in (expression.TRUE_LEAF, expression.FALSE_LEAF):
            return self._board_leaf_words(model, *token)
        return str(token)

    def _board_leaf_words(self, model, path, operator, value):
        labels = []
        field = None
        for name in str(path).split("."):
            field = model._fields.get(name)
            if not field:
                return f"{path} {operator} {value}"
            labels.append(field._description_string(self.env))
            if field.relational:
                model = self.env[field.comodel_name]
        if value is False or value is None:
            words = _("is set") if operator == "!=" else _("is not set")
            return f"{' › '.join(labels)} {words}"
        operator_words = self._board_operator_words().get(operator, operator)
        return f"{' › '.join(labels)} {operator_words} {self._board_value_words(field, model, value)}"

    def _board_operator_words(self):
        return {
            "=": _("is"),
            "!=": _("is not"),
            "in": _("is one of"),
            "not in": _("is none of"),
            "ilike": _("contains"),
            "not ilike": _("does not contain"),
            "like": _("contains"),
            "not like": _("does not contain"),
        }

    def _board_value_words(self, field, model, value):
        values = value if isinstance(value, (list, tuple)) else [value]
        if field.type in NUMBER_TYPES:
            return ", ".join(str(item) for item in values)
        if field.relational and all(isinstance(item, int) for item in values):
            names = self._board_record_names(model.sudo().browse(values))
        elif field.type == "selection":
            labels = dict(field._description_selection(self.env))
            names = [labels.get(item, item) for item in values]
        else:
            names = values
        return ", ".join(f"“{name}”" for name in names)

    @api.model
    def _board_record_names(self, records):
        """Names of ``records`` from the cache where they are (no ``exists()`` query per card)."""
        try:
            return records.mapped("display_name")
        except MissingError:  # deleted since the condition was saved
            return records.exists().mapped("display_name")

    # ------------------------------------------------------------------
    # What a drop in a CRM stage does (for every user of the kanban)
    # ------------------------------------------------------------------

    @api.model
    def get_stage_drop_hints(self, team_id=False):
        """What dropping an opportunity of the pipeline ``team_id`` (by default the user's) into
        each stage does, as ``{"hints": {stage id: [sentences]}, "team_id", "can_configure"}``.

        Any user who may read opportunities may call it: it returns text only, never the
        definitions of the workflows (webhook addresses, conditions' code), which stay with
        the workflow managers. The switched-on workflows are found in the engine's cached
        index: no query per workflow, none per card.
        """
        self.env["crm.lead"].check_access("read")
        team = self._drop_hints_team(team_id)
        triggers = self.sudo().browse(spec.id for spec in self._drop_hint_specs(team))
        hints = {}
        for trigger in triggers:
            hints.setdefault(trigger.stage_id.id, []).append(trigger._drop_hint())
        return {
            "team_id": team.id,
            "hints": hints,
            "can_configure": self.env.user.has_group("crm_workflow_automation.group_workflow_automation_manager"),
        }

    @api.model
    def _drop_hints_team(self, team_id):
        if team_id and not isinstance(team_id, int):
            raise ValueError(_("The pipeline must be given by its id, not %r.", team_id))
        team = self.env["crm.team"].browse(team_id).exists() if team_id else self.env["crm.team"]
        if team:
            team.check_access("read")
            return team
        return self.env["crm.team"]._get_default_team_id(user_id=self.env.uid)

    @api.model
    def _drop_hint_specs(self, team):
        """The index's stage triggers of switched-on workflows that fire for this user in ``team``."""
        index = self.env["workflow.automation"]._get_trigger_index("crm.lead")
        company_ids = set(self.env.companies.ids)
        specs = [
            spec
            for kind in STAGE_KINDS
            for spec in index.get(kind, ())
            if spec.to_stage_id
            and spec.only_ids is None
            and spec.company_id in company_ids
            and (spec.scope_ids is None or team.id in spec.scope_ids)
            and spec.fires_for(self.env.user, False)
        ]
        return sorted(specs, key=lambda spec: spec.rank)

    def _drop_hint(self):
        """One line of a column's tooltip: the origin, the condition, then the actions."""
        sentences = "; ".join(self.action_ids._board_sentences())
        from_stage = self._get_stages()[0]
        if self.kind == "stage_changed" and from_stage:
            sentences = _("From %(stage)s: %(actions)s", stage=from_stage.name, actions=sentences)
        if self.board_condition:
            sentences = _("If %(condition)s: %(actions)s", condition=self.board_condition, actions=sentences)
        return sentences


class WorkflowAutomationActionBoard(models.Model):
    _inherit = "workflow.automation.action"

    def _board_sentences(self):
        return [action._board_sentence_with_delay() for action in self]

    def _board_sentence_with_delay(self):
        sentence = self._board_sentence()
        if not self.delay:
            return sentence
        unit = dict(self._fields["delay_unit"]._description_selection(self.env))[self.delay_unit].lower()
        return _("in %(delay)s %(unit)s: %(action)s", delay=self.delay, unit=unit, action=sentence)

    def _board_sentence(self):
        """What the action does, in a few words: ``_board_sentence_<kind>``, else its kind."""
        describe = getattr(self, f"_board_sentence_{self.kind}", None)
        return describe() if describe else self.display_name

    def _board_sentence_assign_user(self):
        return _("Assign to %s", self.user_id.name)

    def _board_sentence_assign_team(self):
        return _("Assign to the team %s", self.team_id.name)

    def _board_sentence_activity(self):
        if self.followup_mode == "plan":
            sentence = _("Apply the plan “%s”", self.activity_plan_id.name)
        else:
            sentence = _("Add a follow-up “%s”", self.activity_summary or self.activity_type_id.name)
            if self.activity_deadline:
                units = dict(self._fields["activity_deadline_unit"]._description_selection(self.env))
                sentence = f"{sentence} ({self.activity_deadline} {units[self.activity_deadline_unit].lower()})"
        if self.activity_user_mode == "user":
            sentence = _("%(followup)s for %(user)s", followup=sentence, user=self.activity_user_id.name)
        effect = self._followup_effect()
        if effect == "set_stage":
            return _("%(followup)s → when done: %(effect)s", followup=sentence, effect=self._board_sentence_set_stage())
        if effect != "none":
            effects = dict(self._fields["followup_effect"]._description_selection(self.env))
            return _("%(followup)s → when done: %(effect)s", followup=sentence, effect=effects[effect])
        return sentence

    def _board_sentence_email(self):
        return _("E-mail “%s”", self.mail_template_id.name)

    def _board_tag_names(self):
        return ", ".join(self[self._role_field(TAGS)].mapped("name"))

    def _board_sentence_add_tags(self):
        return _("Add the tags %s", self._board_tag_names())

    def _board_sentence_remove_tags(self):
        return _("Remove the tags %s", self._board_tag_names())

    def _board_sentence_set_stage(self):
        return _("Move to %s", self[self._role_field(STAGE)].name)

    def _board_sentence_copy_lead(self):
        return _("Copy into %s", self.new_team_id.name)

    def _board_sentence_add_followers(self):
        names = (self.follower_user_ids.partner_id | self.follower_partner_ids).mapped("name")
        return _("Add %s as followers", ", ".join(names))

    def _board_sentence_set_field(self):
        field = self.set_field_id
        value_field = SET_FIELD_VALUE_FIELDS.get(field.ttype)
        if value_field == "set_value_ref":
            value = self.set_value_ref.display_name if self.set_value_ref else _("empty")
        elif value_field == "set_selection_id":
            value = self.set_selection_id.name
        elif value_field == "set_value_boolean":
            value = _("checked") if self.set_value_boolean else _("unchecked")
        elif value_field == "set_value_days":
            value = _("today + %s days", self.set_value_days)
        else:
            value = self.set_value or _("empty")
        return _("Set %(field)s to %(value)s", field=field.field_description, value=value)


class WorkflowAutomationBoardOpening(models.Model):
    _inherit = "workflow.automation"

    @api.model
    def _board_action(self, target, team=None, stage_id=None):
        """The Automations board of the pipeline ``team`` (opportunities) or of the projects,
        filtered on the column of the stage ``stage_id`` if given; for the workflow managers."""
        self.env["workflow.automation.trigger"].check_access("read")
        action = self.env["ir.actions.act_window"]._for_xml_id(BOARD_ACTION)
        domain = [("workflow_id.target", "=", target), ("workflow_id.is_preset", "=", False)]
        if team:
            domain += [
                "|", ("workflow_id.team_ids", "=", False), ("workflow_id.team_ids", "in", team.ids),
                "|", ("stage_id", "=", False), ("stage_id.team_id", "in", [False, team.id]),
            ]
        context = {"active_test": False, "board_target": target, "board_team_id": team.id if team else False}
        if isinstance(stage_id, int):
            context["search_default_board_column"] = f"{STAGE_COLUMN_PREFIXES[target][0]}{stage_id}"
        name = _("Automations: %s", team.name) if team else _("Automations: projects")
        action.update(
            name=name,
            display_name=name,  # the breadcrumbs'
            domain=domain,
            context=context,
        )
        return action

    def action_open_board(self):
        """From the workflow list: the board of the selected workflows' pipeline if they share
        one, else of the user's pipeline; the projects' board for project workflows."""
        target = self.env.context.get("default_target") or (self[:1].target or "crm.lead")
        if not self.env[target]._workflow_scope_field:  # projects: no pipeline
            return self._board_action(target)
        teams = self.team_ids
        team = teams if len(teams) == 1 else self.env["crm.team"]._get_default_team_id(user_id=self.env.uid)
        return self._board_action(target, team)
