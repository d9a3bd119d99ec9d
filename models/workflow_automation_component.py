from datetime import datetime

from dateutil.relativedelta import relativedelta

from odoo import _, api, models
from odoo.exceptions import ValidationError

# Delays and offsets beyond this many years are refused: dates past year 9999 cannot be computed.
MAX_SPAN_YEARS = 100


class WorkflowAutomationComponent(models.AbstractModel):
    """Triggers and actions: locked while their workflow is on, indexed by the engine,
    and refused at save with a message naming their workflow and the field."""

    _name = "workflow.automation.component"
    _description = "Workflow Automation Component"

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

    def _check_span(self, field_name, unit="days"):
        """Refuse a delay or an offset (``field_name``, counted in ``unit``) of more than
        MAX_SPAN_YEARS years, before or after."""
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
        """A CRM stage must be shared or belong to one of the workflow's pipelines."""
        stage = self[field_name]
        teams = self.workflow_id.team_ids
        if stage.team_id and teams and stage.team_id not in teams:
            self._raise_invalid(
                field_name,
                _(
                    "the stage “%(stage)s” belongs to the pipeline “%(team)s”, "
                    "which is not in this workflow's pipelines.",
                    stage=stage.name,
                    team=stage.team_id.name,
                ),
            )
