/** @odoo-module **/

import { registry } from "@web/core/registry";

// An admin adds a "Set a field to a value" action to the switched-off workflow "Tour
// set field": the field "Salesperson", then a user picked in the record field that the
// field's model (users) narrows, all from the workflow form.
const TRIGGER_DIALOG = ".modal:has(.modal-title:contains('Triggers'))";
const ACTION_DIALOG = ".modal:has(.modal-title:contains('Actions'))";

registry.category("web_tour.tours").add("crm_workflow_automation_set_field_tour", {
    steps: () => [
        {
            content: "Open the trigger of the workflow",
            trigger: ".o_field_widget[name=trigger_ids] .o_data_row .o_data_cell",
            run: "click",
        },
        {
            content: "Add an action to the trigger",
            trigger: `${TRIGGER_DIALOG} .o_field_widget[name=action_ids] .o_field_x2many_list_row_add a`,
            run: "click",
        },
        {
            content: "Choose the kind of action",
            trigger: `${ACTION_DIALOG} .o_field_widget[name=kind] select`,
            run: "selectByLabel Set a field to a value",
        },
        {
            content: "Look for the field to set",
            trigger: `${ACTION_DIALOG} .o_field_widget[name=set_field_id] input`,
            run: "edit Salesperson",
        },
        {
            content: "Pick the salesperson",
            trigger: ".o-autocomplete--dropdown-item:contains('Salesperson')",
            run: "click",
        },
        {
            content: "Look for the user among the users only",
            trigger: `${ACTION_DIALOG} .o_field_widget[name=set_value_ref] input`,
            run: "edit Tour Owner",
        },
        {
            content: "Pick the user",
            trigger: ".o-autocomplete--dropdown-item:contains('Tour Owner')",
            run: "click",
        },
        {
            content: "Save the action",
            trigger: `${ACTION_DIALOG} .o_form_button_save`,
            run: "click",
        },
        {
            content: "The trigger lists the new action",
            trigger: `${TRIGGER_DIALOG} .o_field_widget[name=action_ids] .o_data_cell:contains('Set a field to a value')`,
        },
        {
            content: "Save the trigger",
            trigger: `${TRIGGER_DIALOG} .o_form_button_save`,
            run: "click",
        },
        {
            content: "Save the workflow",
            trigger: "body:not(:has(.modal)) .o_form_button_save",
            run: "click",
        },
        {
            content: "Saved",
            trigger: ".o_form_saved",
        },
    ],
});
