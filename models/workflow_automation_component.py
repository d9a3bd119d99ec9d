from datetime import datetime

from dateutil.relativedelta import relativedelta

from odoo import _, api, models
from odoo.exceptions import ValidationError

from .workflow_automation_kinds import ROLES, kinds_of_target

# Delays and offsets beyond this many years are refused: dates past year 9999 cannot be computed.
MAX_SPAN_YEARS = 100


class WorkflowAutomationComponent(models.AbstractModel):
    """Triggers and actions: locked while their workflow is on, indexed by the engine,
    and refused at save with a message naming their workflow and the field. Their kinds
    are declared in ``workflow_automation_kinds``."""

    _name = "workflow.automation.component"
    _description = "Workflow Automation Component"
    # {code: Kind} of the ``kind`` field (set by each component)
    _workflow_kinds = {}

    def _valid_field_parameter(self, field, name):
        return name == "workflow_role" or super()._valid_field_parameter(field, name)

    def _kind(self):
        return self._workflow_kinds[self.kind]

    @api.depends("target")
    def _compute_available_kinds(self):
        """The kinds the form offers for the component's target (its ``available_kinds``)."""
        for component in self:
            component.available_kinds = kinds_of_target(self._workflow_kinds, component.target)

    # ------------------------------------------------------------------
    # Parameters: what the admin fills in for the kind
    # ------------------------------------------------------------------

    def _role_field(self, role):
        """The name of the field of this component that plays ``role`` for its target, or None."""
        return self.env[self.target]._workflow_field_of(self, role) if self.target else None

    def _parameter_fields(self, parameters):
        """The field names of ``parameters`` (fields, or roles played by a field) for the target."""
        names = {self._role_field(name) if name in ROLES else name for name in parameters}
        return names - {None}

    def _used_parameters(self, vals):
        """The parameter fields of the kind this component has once ``vals`` are written."""
        return self._parameter_fields(self._workflow_kinds[vals.get("kind", self.kind)].parameters)

    def _stale_parameters(self, vals):
        """``{field: default}`` for the parameters of other kinds than the one written in ``vals``:
        cleared, so that a link left by an old kind (a user, a stage) never blocks its deletion."""
        every = {name for kind in self._workflow_kinds.values() for name in kind.parameters if name not in ROLES}
        every |= {name for name, field in self._fields.items() if getattr(field, "workflow_role", None)}
        stale = every - self._used_parameters(vals) - set(vals)
        defaults = self.default_get(list(stale))
        return {name: defaults.get(name, False) for name in sorted(stale)}

    @api.onchange("kind")
    def _onchange_kind_clear_stale_parameters(self):
        if not self.kind:
            return
        for name, value in self._stale_parameters({}).items():
            self[name] = value

    @api.model_create_multi
    def create(self, vals_list):
        components = super().create(vals_list)
        components.workflow_id._check_editable()
        self.env["workflow.automation"]._invalidate_trigger_index()
        return components

    def _fields_editable_while_on(self):
        """Bookkeeping of the engine itself, written while the workflow runs."""
        return set()

    def write(self, vals):
        if "kind" in vals:
            groups = self.grouped(lambda component: tuple(component._stale_parameters(vals).items()))
            if len(groups) > 1:  # components of several targets or follow-up effects
                for components in groups.values():
                    components.write(vals)
                return True
            vals = {**dict(next(iter(groups), ())), **vals}
        definition_changed = bool(set(vals) - self._fields_editable_while_on())
        if definition_changed:
            self.workflow_id._check_editable()
        result = super().write(vals)
        if definition_changed:
            self.env["workflow.automation"]._invalidate_trigger_index()
        return result

    @api.ondelete(at_uninstall=False)
    def _unlink_except_workflow_on(self):
        self.workflow_id._check_editable()

    def unlink(self):
        result = super().unlink()
        self.env["workflow.automation"]._invalidate_trigger_index()
        return result

    # ------------------------------------------------------------------
    # Validation: refused at save, naming the workflow and the field
    # ------------------------------------------------------------------

    def _error_location(self):
        return _("Workflow “%s”", self.workflow_id.display_name)

    def _raise_invalid(self, field_name, message):
        self._raise_invalid_field(self, self._error_location(), field_name, message)

    @api.model
    def _raise_invalid_field(self, record, location, field_name, message):
        """Refuse a value of ``record`` (a workflow, a trigger, ...) at save, naming where and the field."""
        raise ValidationError(
            _(
                "%(location)s, field “%(field)s”: %(message)s",
                location=location,
                field=record._fields[field_name]._description_string(self.env),
                message=message,
            )
        )

    def _check_span(self, field_name, unit="days", negative=None):
        """Refuse a delay or an offset (``field_name``, counted in ``unit``) of more than
        MAX_SPAN_YEARS years, before or after, and, with the refusal ``negative``, one below 0."""
        if negative and self[field_name] < 0:
            self._raise_invalid(field_name, negative)
        origin = datetime(2000, 1, 1)
        limit = origin + relativedelta(years=MAX_SPAN_YEARS) - origin
        try:
            too_far = abs(origin + relativedelta(**{unit: self[field_name]}) - origin) > limit
        except (OverflowError, ValueError):
            too_far = True
        if too_far:
            self._raise_invalid(field_name, _("at most %s years, before or after.", MAX_SPAN_YEARS))

    def _require(self, field_name, message):
        """Refuse an empty ``field_name``, except in a preset or in a switched-off workflow
        made from one: the admin fills it in, and switching the workflow on checks it."""
        if not self[field_name] and not self.workflow_id._may_be_incomplete():
            self._raise_invalid(field_name, message)

    def _check_stage_in_scope(self, field_name):
        """A stage must fit the workflow's scope (a stage of one of its pipelines, or shared)."""
        workflow = self.workflow_id
        scope = workflow._scope()
        error = scope and self.env[self.target]._workflow_stage_scope_error(self[field_name], scope)
        if error:
            self._raise_invalid(field_name, error)
