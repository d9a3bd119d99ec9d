/** @odoo-module **/

import { registry } from "@web/core/registry";
import * as form from "@crm_workflow_automation/../tests/tours/workflow_form_steps";

// An admin adds a "Set a field to a value" action to the switched-off workflow "Tour
// set field": the field "Salesperson", then a user picked in the record field that the
// field's model (users) narrows, all from the workflow form.
registry.category("web_tour.tours").add("crm_workflow_automation_set_field_tour", {
    steps: () => [
        ...form.openTriggerSteps(),
        ...form.addActionSteps("Set a field to a value"),
        ...form.pickSteps(form.ACTION_DIALOG, "set_field_id", "Salesperson"),
        ...form.pickSteps(form.ACTION_DIALOG, "set_value_ref", "Tour Owner"),
        ...form.saveActionSteps("Set a field to a value"),
        ...form.saveWorkflowSteps(),
    ],
});
